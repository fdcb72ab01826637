"""The languages the portal speaks. English is the source language of every message;
Hindi comes from the catalogue in ``portal/translations/hi`` (docs/i18n.md). Here too is
how a message made elsewhere (a ``portal.domain.text.Text``) and a strftime date are said
in the reader's language: the pages' filters ``t`` and ``day_names``, and the notices."""

import re

from flask_babel import gettext, ngettext

from portal.domain.text import DateText, Label, PluralText, Text

LANGUAGES = {"en": "English", "hi": "हिन्दी"}
DEFAULT_LANGUAGE = "en"
#: the cookie that remembers the choice of a visitor who is not signed in
LANGUAGE_COOKIE = "lang"


def babel_context():
    """Flask-Babel's per-request namespace (``g._flask_babel``: the locale, and what the
    portal keeps beside it), read through Flask's context variable: through the ``g``
    proxy the look-up cost more than a translation. None outside an app context."""
    from flask.globals import _cv_app

    app_ctx = _cv_app.get(None)
    return None if app_ctx is None else getattr(app_ctx.g, "_flask_babel", None)


def current_language():
    """The reader's language code ("en", "hi"): Flask-Babel's locale for the request,
    its text kept beside it (through ``get_locale()`` the question cost 7 µs, and a list
    asks it twice a row: its dates, its statuses). "en" outside a request."""
    from flask_babel import get_locale

    ctx = babel_context()
    locale = getattr(ctx, "babel_locale", None) if ctx is not None else None
    if locale is None:
        return str(get_locale() or DEFAULT_LANGUAGE)
    kept = getattr(ctx, "portal_language", None)
    if kept is None or kept[0] is not locale:
        kept = ctx.portal_language = (locale, str(locale))
    return kept[1]


def N_(message):
    """Marks ``message`` for the catalogue (``make messages`` extracts ``N_``) without
    translating it here: the page that shows it translates it (the ``t`` filter)."""
    return message


def Nn_(singular, plural):
    """Marks a singular and plural pair for the catalogue (``make messages`` extracts
    ``Nn_:1,2``), for a ``portal.domain.text.PluralText``; the page translates it."""
    return singular, plural


def known_language(code):
    """``code`` when the portal speaks it, else None (``hi-IN`` counts as ``hi``)."""
    if not code:
        return None
    code = code.strip().lower().replace("_", "-").split("-")[0]
    return code if code in LANGUAGES else None


def compile_catalogues(directory):
    """Compile each ``<lang>/LC_MESSAGES/*.po`` under ``directory`` (``messages.po``, and
    ``wtforms.po``: WTForms' own messages in a language WTForms does not ship) into its
    ``.mo`` when the ``.mo`` is missing or older, so a fresh checkout needs no build step.
    The file is written aside and renamed, so processes starting together never read half."""
    import os

    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    if not os.path.isdir(directory):
        return
    pos = [
        (language, os.path.join(folder, name))
        for language in os.listdir(directory)
        if os.path.isdir(folder := os.path.join(directory, language, "LC_MESSAGES"))
        for name in os.listdir(folder)
        if name.endswith(".po")
    ]
    for language, po in pos:
        mo = po[:-2] + "mo"
        if os.path.exists(mo) and os.path.getmtime(mo) >= os.path.getmtime(po):
            continue
        with open(po, "rb") as source:
            catalogue = read_po(source, locale=language)
        partial = f"{mo}.{os.getpid()}"
        with open(partial, "wb") as target:
            write_mo(target, catalogue)
        os.replace(partial, mo)


# Day and month names as strftime writes them (C locale), for pages read in Hindi; digits
# stay Latin in both languages (docs/i18n.md).
_HINDI_NAMES = {
    "Monday": "सोमवार", "Tuesday": "मंगलवार", "Wednesday": "बुधवार", "Thursday": "गुरुवार",
    "Friday": "शुक्रवार", "Saturday": "शनिवार", "Sunday": "रविवार",
    "Mon": "सोम", "Tue": "मंगल", "Wed": "बुध", "Thu": "गुरु", "Fri": "शुक्र", "Sat": "शनि",
    "Sun": "रवि",
    "January": "जनवरी", "February": "फ़रवरी", "March": "मार्च", "April": "अप्रैल", "May": "मई",
    "June": "जून", "July": "जुलाई", "August": "अगस्त", "September": "सितंबर",
    "October": "अक्टूबर", "November": "नवंबर", "December": "दिसंबर",
    "Jan": "जन॰", "Feb": "फ़र॰", "Mar": "मार्च", "Apr": "अप्रैल", "Jun": "जून", "Jul": "जुल॰",
    "Aug": "अग॰", "Sep": "सित॰", "Oct": "अक्टू॰", "Nov": "नव॰", "Dec": "दिस॰",
}  # fmt: skip
_NAME = re.compile(r"\b(" + "|".join(sorted(_HINDI_NAMES, key=len, reverse=True)) + r")\b")


def day_names(text):
    """``text`` (a strftime date) with its day and month names in the reader's language."""
    if not text or current_language() != "hi":  # "en" outside a request
        return text
    return _NAME.sub(lambda m: _HINDI_NAMES[m.group(1)], text)


def translate(message):
    """The catalogue's translation of ``message`` (itself when there is none), in the
    reader's language: a page's (its ``t`` filter) or a notice's (``speaking_to``). Unlike the
    templates' ``_()``, no %-formatting is applied, so any text is safe to pass. A ``Text``
    is looked up by its template (a ``PluralText`` by its pair and number, ``ngettext``) and
    filled with its values, each said in the reader's
    language when it is itself a ``Text`` (a ``Label`` lower-cased) or a ``DateText``."""
    if isinstance(message, Text):
        values = {name: _value(value) for name, value in message.values.items()}
        if isinstance(message, PluralText):
            values.pop("num", None)  # ngettext sets it from the number
            return ngettext(message.template, message.plural, message.num, **values)
        said = gettext(message.template, **values)
        return said.lower() if isinstance(message, Label) else said
    return gettext(str(message)) if message else message


def _value(value):
    if isinstance(value, Text):
        return translate(value)
    if isinstance(value, DateText):
        return day_names(value)
    return value
