"""Online meet-link validation: ``https`` only, host on the allow-list, matched as the
host name itself or a sub-domain of it (label boundary), never a substring.

``https://us02web.zoom.us/j/1`` passes; ``https://zoom.us.evil.com``, ``https://evilzoom.us``,
``https://zoom.us@evil.com``, ``http://zoom.us`` and ``https://evil.com\\@zoom.us`` do not.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from portal.domain.text import N_, Text

from .policy import DEFAULT_POLICY, Policy

MAX_LENGTH = 2048
MSG_INVALID = N_("Enter a valid meeting link")
MSG_HTTPS = N_("Meeting links must use https")
MSG_HOST = N_("Meeting links must be on an approved service (%(domains)s)")

# Printable ASCII without space, backslash, quotes or angle brackets: browsers "fix" a
# backslash into a slash, which would make the host the browser visits differ from ours.
_SAFE = re.compile(r"^[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+$")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")

__all__ = ["MeetLinkError", "validate_meet_link", "is_allowed_meet_link", "host_matches"]


class MeetLinkError(ValueError):
    pass


def _normalise_domain(domain: str) -> str:
    d = domain.strip().lower().rstrip(".")
    if d.startswith("*."):
        d = d[2:]
    labels = d.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise ValueError(f"not a domain name: {domain!r}")
    return d


def host_matches(host: str, domain: str) -> bool:
    """``host`` is ``domain`` or a sub-domain of it (compared label-wise)."""
    host = host.lower().rstrip(".")
    domain = _normalise_domain(domain)
    return host == domain or host.endswith("." + domain)


def validate_meet_link(
    url: str, policy: Policy = DEFAULT_POLICY, extra_domains: Iterable[str] = ()
) -> str:
    """Return the link (stripped) if acceptable, else raise :class:`MeetLinkError` with a
    message for the form. Allowed domains: the policy's list, its admin-configured
    extras, and ``extra_domains``."""
    if not isinstance(url, str):
        raise MeetLinkError(MSG_INVALID)
    url = url.strip()
    if not url or len(url) > MAX_LENGTH or not _SAFE.match(url):
        raise MeetLinkError(MSG_INVALID)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise MeetLinkError(MSG_INVALID) from None
    if parts.scheme.lower() != "https":
        raise MeetLinkError(MSG_HTTPS)
    netloc = parts.netloc
    if not netloc or "@" in netloc or parts.username is not None or parts.password is not None:
        raise MeetLinkError(MSG_INVALID)
    if port not in (None, 443):
        raise MeetLinkError(MSG_INVALID)
    host = (parts.hostname or "").rstrip(".")
    labels = host.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise MeetLinkError(MSG_INVALID)  # IP literals, empty labels, odd characters
    domains = list(policy.allowed_meet_domains) + list(extra_domains)
    if not any(host_matches(host, d) for d in domains):
        raise MeetLinkError(
            Text(MSG_HOST, domains=", ".join(_normalise_domain(d) for d in domains))
        )
    return url


def is_allowed_meet_link(
    url: str, policy: Policy = DEFAULT_POLICY, extra_domains: Iterable[str] = ()
) -> bool:
    try:
        validate_meet_link(url, policy, extra_domains)
    except MeetLinkError:
        return False
    return True
