import pytest

from portal.domain.meetlinks import (
    MeetLinkError,
    host_matches,
    is_allowed_meet_link,
    validate_meet_link,
)
from portal.domain.policy import DEFAULT_POLICY


@pytest.mark.parametrize(
    "url",
    [
        "https://zoom.us/j/123456789?pwd=abc",
        "https://us02web.zoom.us/j/123",
        "https://meet.google.com/abc-defg-hij",
        "https://teams.microsoft.com/l/meetup-join/19%3ameeting",
        "HTTPS://Zoom.US/j/1",
        "https://zoom.us./j/1",
        "https://zoom.us:443/j/1",
        "  https://zoom.us/j/1  ",
    ],
)
def test_allowed(url):
    assert is_allowed_meet_link(url)
    assert validate_meet_link(url) == url.strip()


@pytest.mark.parametrize(
    "url,message",
    [
        ("http://zoom.us/j/1", "https"),
        ("ftp://zoom.us/j/1", "https"),
        ("javascript:alert(1)//zoom.us", "https"),
        ("//zoom.us/j/1", "https"),
        ("zoom.us/j/1", "https"),
        ("https://zoom.us.evil.com/j/1", "approved"),
        ("https://evilzoom.us/j/1", "approved"),
        ("https://evil.com/zoom.us", "approved"),
        ("https://evil.com/?u=https://zoom.us", "approved"),
        ("https://meet.google.com.evil.com/x", "approved"),
        ("https://google.com/x", "approved"),
        ("https://microsoft.com/x", "approved"),
        ("https://zoom.us@evil.com/j/1", "valid"),
        ("https://user:pw@zoom.us/j/1", "valid"),
        ("https://evil.com\\@zoom.us/j/1", "valid"),
        ("https://evil.com\\.zoom.us/j/1", "valid"),
        ("https://zoom.us:8443/j/1", "valid"),
        ("https://zoom.us:abc/j/1", "valid"),
        ("https://1.2.3.4/j/1", "approved"),
        ("https://[::1]/j/1", "valid"),
        ("https://zoom..us/j/1", "valid"),
        ("https://zoom.us /j/1", "valid"),
        ("https://zoom.us/j/1\n", None),  # trailing whitespace is stripped: fine
        ("https://zo\u043em.us/j/1", "valid"),  # Cyrillic o
        ("https://xn--zom-ked.us/j/1", "approved"),
        ("", "valid"),
        ("https://", "valid"),
        ("https://" + "a" * 2100 + ".zoom.us", "valid"),
    ],
)
def test_rejected(url, message):
    if message is None:
        assert is_allowed_meet_link(url)
        return
    assert not is_allowed_meet_link(url)
    with pytest.raises(MeetLinkError, match=message):
        validate_meet_link(url)


def test_not_a_string():
    assert not is_allowed_meet_link(None)


def test_extra_domains_from_policy_and_argument():
    policy = DEFAULT_POLICY.with_changes(extra_meet_link_domains=("webex.com",))
    assert is_allowed_meet_link("https://clinic.webex.com/meet/x", policy)
    assert not is_allowed_meet_link("https://clinic.webex.com/meet/x")
    assert is_allowed_meet_link("https://video.example.org/r/1", extra_domains=["example.org"])
    assert not is_allowed_meet_link("https://videoexample.org/r/1", extra_domains=["example.org"])


def test_host_matches():
    assert host_matches("a.b.zoom.us", "zoom.us")
    assert host_matches("zoom.us", "*.zoom.us")
    assert not host_matches("notzoom.us", "zoom.us")
    assert not host_matches("zoom.us.evil", "zoom.us")
    with pytest.raises(ValueError):
        host_matches("zoom.us", "us")
