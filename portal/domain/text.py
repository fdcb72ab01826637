"""Marking messages for the translation catalogue inside the pure domain, which may not import
``portal.i18n``: the same ``N_`` (``make messages`` extracts it); the page that shows the
message translates it."""


def N_(message):
    return message


class Text(str):
    """A message with values: reads as the English text (``template % values``), and keeps
    the template and values so the page that shows it can say it in the reader's language
    (the ``t`` filter looks the template up and fills in the same values)."""

    def __new__(cls, template, **values):
        text = super().__new__(cls, template % values)
        text.template, text.values = template, values
        return text
