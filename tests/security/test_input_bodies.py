"""Issue #15, finding 3: request bodies are bounded, chunked ones too.

A chunked body has no Content-Length; a server that de-chunks sets
``wsgi.input_terminated`` and the app reads until the stream ends. These tests drive the
WSGI callable with such a stream and count what the app pulled from it: the body must be
cut off at the limit with a 413, not read whole (what is read is what is held in memory)."""

import io

import pytest
from werkzeug.test import EnvironBuilder

from portal.config import TUNABLES

LIMIT = 1024 * 1024
SLACK = 64 * 1024  # one read buffer beyond the limit at most
BODY = 8 * LIMIT  # finite, so the code before the fix reads it all and the test ends


class CountingStream(io.RawIOBase):
    """``size`` bytes of b"a", counting what was read."""

    def __init__(self, size):
        self.left = size
        self.read_total = 0

    def readable(self):
        return True

    def readinto(self, buffer):
        n = min(len(buffer), self.left)
        buffer[:n] = b"a" * n
        self.left -= n
        self.read_total += n
        return n


def send_chunked(app, path, content_type, size=BODY):
    environ = EnvironBuilder(path=path, method="POST").get_environ()
    stream = CountingStream(size)
    environ.pop("CONTENT_LENGTH", None)
    environ["CONTENT_TYPE"] = content_type
    environ["HTTP_TRANSFER_ENCODING"] = "chunked"
    environ["wsgi.input"] = stream
    environ["wsgi.input_terminated"] = True
    status = []
    body = b"".join(app(environ, lambda s, h, e=None: status.append(s)))
    return int(status[0].split()[0]), stream.read_total, body


def test_the_limit_is_a_setting_with_a_default(app):
    assert TUNABLES["MAX_CONTENT_LENGTH"].default_value == LIMIT
    assert app.config["MAX_CONTENT_LENGTH"] == LIMIT


@pytest.mark.parametrize(
    "path, content_type",
    [
        ("/auth/login", "application/x-www-form-urlencoded"),
        ("/auth/register", "multipart/form-data; boundary=xyz"),
        ("/webhooks/razorpay", "application/json"),
        ("/webhooks/razorpayx", "application/json"),
    ],
)
def test_a_chunked_body_is_cut_off_at_the_limit(app, path, content_type):
    status, read, _ = send_chunked(app, path, content_type)
    assert status == 413
    assert read <= LIMIT + SLACK, f"read {read} bytes of an {BODY}-byte chunked body"


def test_a_declared_length_over_the_limit_is_refused_unread(client):
    response = client.post(
        "/auth/login", data=b"a" * (LIMIT + 1), content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 413


def test_a_chunked_body_under_the_limit_still_works(app):
    status, read, _ = send_chunked(
        app, "/auth/login", "application/x-www-form-urlencoded", size=2000
    )
    assert status != 413 and read == 2000


def test_the_mounted_sandbox_is_bounded_too(app):
    status, read, _ = send_chunked(app, "/sandbox/v1/orders", "application/json")
    assert status in (401, 413)  # no key: refused before or while reading
    assert read <= LIMIT + SLACK
