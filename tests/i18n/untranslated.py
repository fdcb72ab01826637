"""Finding English left on a page rendered in Hindi: every text node (and the
user-visible attributes) with Latin words that are not data the test named, nor the few
words kept in English on purpose (brand, acronyms)."""

import re
from html.parser import HTMLParser

# Words that stay in Latin script in the Hindi interface on purpose (docs/i18n.md).
KEPT = {
    "Clinic", "Portal", "GST", "GSTIN", "CGST", "SGST", "IGST", "UPI", "OTP", "PDF", "SMS",
    "PAN", "IFSC", "TDS", "UTR", "IMPS", "NEFT", "NUL", "Razorpay", "RazorpayX", "WhatsApp", "English",
    "ID", "IST", "AM", "PM", "am", "pm", "ICS", "ics", "CSV", "JSON", "Google", "Meet", "Zoom", "Jitsi",
    "TAN", "AS",  # the clinic's TAN; Form 26AS (its name's letters: 26Q and 16A read as numbers)
    "AA",  # section 206AA (TDS without a PAN), as the Act numbers it
}  # fmt: skip
_WORD = re.compile(r"[A-Za-z][A-Za-z'’]+")
# Attributes a reader sees or hears: a table cell's column name (``data-label``, shown
# beside the value on a phone) and what the page's script says when a request fails.
_VISIBLE_ATTRS = (
    "placeholder", "title", "aria-label", "alt", "hx-confirm", "data-label",
    "data-400", "data-403", "data-404", "data-409", "data-413", "data-429", "data-generic",
    "data-offline", "data-reference",
)  # fmt: skip


class _Text(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.skip = 0
        self.texts = []

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "code"):
            self.skip += 1
        attrs = dict(attrs)
        for name in _VISIBLE_ATTRS:
            if attrs.get(name):
                self.texts.append(attrs[name])
        if tag == "input" and attrs.get("type") in ("submit", "button") and attrs.get("value"):
            self.texts.append(attrs["value"])

    def handle_endtag(self, tag):
        if tag in ("script", "style", "code") and self.skip:
            self.skip -= 1

    def handle_data(self, data):
        if not self.skip and data.strip():
            self.texts.append(data.strip())


def texts(html):
    """The pieces of text a reader of ``html`` sees or hears."""
    parser = _Text()
    parser.feed(html)
    return parser.texts


def untranslated(html, data=()):
    """The text pieces of ``html`` that still hold English words. A data value is masked
    only as a whole (not inside a longer word: "card" does not hide "Discard")."""
    values = sorted(data, key=len, reverse=True)
    masked = re.compile(
        "|".join(rf"(?<![A-Za-z0-9]){re.escape(v)}(?![A-Za-z0-9])" for v in values if v) or r"(?!)"
    )
    found = []
    for text in texts(html):
        rest = masked.sub(" ", text)
        words = [w for w in _WORD.findall(rest) if w not in KEPT]
        if words:
            found.append(text)
    return found
