"""The languages the portal speaks. English is the source language of every message;
Hindi comes from the catalogue in ``portal/translations/hi`` (docs/i18n.md)."""

LANGUAGES = {"en": "English", "hi": "हिन्दी"}
DEFAULT_LANGUAGE = "en"
#: the cookie that remembers the choice of a visitor who is not signed in
LANGUAGE_COOKIE = "lang"


def N_(message):
    """Marks ``message`` for the catalogue (``make messages`` extracts ``N_``) without
    translating it here: the page that shows it translates it (the ``t`` filter)."""
    return message


def known_language(code):
    """``code`` when the portal speaks it, else None (``hi-IN`` counts as ``hi``)."""
    if not code:
        return None
    code = code.strip().lower().replace("_", "-").split("-")[0]
    return code if code in LANGUAGES else None


def compile_catalogues(directory):
    """Compile each ``<lang>/LC_MESSAGES/messages.po`` under ``directory`` into its ``.mo``
    when the ``.mo`` is missing or older, so a fresh checkout needs no build step. The
    file is written aside and renamed, so processes starting together never read half."""
    import os

    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    if not os.path.isdir(directory):
        return
    for language in os.listdir(directory):
        po = os.path.join(directory, language, "LC_MESSAGES", "messages.po")
        mo = po[:-2] + "mo"
        if not os.path.exists(po):
            continue
        if os.path.exists(mo) and os.path.getmtime(mo) >= os.path.getmtime(po):
            continue
        with open(po, "rb") as source:
            catalogue = read_po(source, locale=language)
        partial = f"{mo}.{os.getpid()}"
        with open(partial, "wb") as target:
            write_mo(target, catalogue)
        os.replace(partial, mo)
