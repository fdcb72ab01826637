"""Marking messages for the translation catalogue inside the pure domain, which may not import
``portal.i18n``: the same ``N_`` (``make messages`` extracts it); the page that shows the
message translates it."""


def N_(message):
    return message
