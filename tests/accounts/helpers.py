"""Small helpers shared by the accounts tests."""

import re
from urllib.parse import urlsplit


def link_path(text):
    """The path of the (only) portal link in a mail's text."""
    urls = re.findall(r"https?://\S+", text)
    assert len(urls) == 1, text
    return urlsplit(urls[0]).path
