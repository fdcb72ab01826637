"""Marking messages for the translation catalogue inside the pure domain, which may not import
``portal.i18n``: the same ``N_`` (``make messages`` extracts it); the page that shows the
message translates it."""


def N_(message):
    return message


class Text(str):
    """A message with values: reads as the English text (``template % values``), and keeps
    the template and values so the page that shows it can say it in the reader's language
    (the ``t`` filter looks the template up and fills in the same values; a value that is
    itself a ``Text``, a ``Label`` or a ``DateText`` is said in that language too)."""

    def __new__(cls, template, **values):
        text = super().__new__(cls, template % values)
        text.template, text.values = template, values
        return text


class PluralText(Text):
    """A ``Text`` said in the singular or the plural by ``num`` (``ngettext``): reads as
    the English form for ``num``; the ``t`` filter looks the pair up in the catalogue and
    lets the language's Plural-Forms choose. ``template`` is the singular, ``plural`` the
    plural; ``num`` is a value too (``%(num)s``)."""

    def __new__(cls, singular, plural, num, **values):
        values.setdefault("num", num)
        text = str.__new__(cls, (singular if num == 1 else plural) % values)
        text.template, text.plural, text.num, text.values = singular, plural, num, values
        return text


class Label(Text):
    """A catalogue label set inside a sentence, such as a status ("Partially cancelled"):
    reads in lower case ("This appointment is partially cancelled …"); the ``t`` filter
    looks the label up and lower-cases it alike (a no-op in Hindi)."""

    def __new__(cls, label):
        text = str.__new__(cls, label.lower())
        text.template, text.values = label, {}
        return text


def status_label(status):
    """``PARTIALLY_CANCELLED`` as the label the catalogue holds ("Partially cancelled"),
    the same words as the pages' ``status_label`` filter."""
    return Label(str(status).replace("_", " ").capitalize())


class DateText(str):
    """A date written by strftime in the C locale ("07 Dec 2026, 10:00"): the ``t`` filter
    says its day and month names in the reader's language, as the pages' dates do."""


def in_hours(span):
    """A policy's duration as its texts say it, in hours: ``"24"``, ``"1.5"`` (never a
    figure typed into the text: the policy's own, whatever an admin set)."""
    return f"{span.total_seconds() / 3600:g}"
