"""Finding English left on a page rendered in Hindi: every text node (and the
user-visible attributes) with Latin words that are not data the test named, nor the few
words kept in English on purpose (brand, acronyms)."""

import re
from html.parser import HTMLParser

# Words that stay in Latin script in the Hindi interface on purpose (docs/i18n.md).
KEPT = {
    "Clinic", "Portal", "GST", "GSTIN", "CGST", "SGST", "IGST", "UPI", "OTP", "PDF", "SMS",
    "PAN", "IFSC", "TDS", "UTR", "IMPS", "NEFT", "NUL", "Razorpay", "RazorpayX", "WhatsApp", "English",
    "ID", "IST", "AM", "PM", "am", "pm", "ICS", "CSV", "Google", "Meet", "Zoom", "Jitsi",
}  # fmt: skip
_WORD = re.compile(r"[A-Za-z][A-Za-z'’]+")
_VISIBLE_ATTRS = ("placeholder", "title", "aria-label", "alt", "hx-confirm")


class _Text(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.skip = 0
        self.texts = []

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "code", "title"):
            self.skip += 1
        attrs = dict(attrs)
        for name in _VISIBLE_ATTRS:
            if attrs.get(name):
                self.texts.append(attrs[name])
        if tag == "input" and attrs.get("type") in ("submit", "button") and attrs.get("value"):
            self.texts.append(attrs["value"])

    def handle_endtag(self, tag):
        if tag in ("script", "style", "code", "title") and self.skip:
            self.skip -= 1

    def handle_data(self, data):
        if not self.skip and data.strip():
            self.texts.append(data.strip())


def untranslated(html, data=()):
    """The text pieces of ``html`` that still hold English words."""
    parser = _Text()
    parser.feed(html)
    found = []
    for text in parser.texts:
        rest = text
        for value in sorted(data, key=len, reverse=True):
            rest = rest.replace(value, " ")
        words = [w for w in _WORD.findall(rest) if w not in KEPT]
        if words:
            found.append(text)
    return found
