"""The web layer: one blueprint per audience. Views parse, call one service, render."""

import io

from flask import Request, abort, request
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.routing import IntegerConverter
from werkzeug.utils import cached_property
from werkzeug.wsgi import get_input_stream

from portal.domain.ids import MAX_ID  # a bigger number in a URL names no row (portal.domain.ids)


def bounded_int(text):
    """``int`` for request values: a ValueError (so ``args.get(type=int)`` falls back to
    its default) for anything beyond the database's integers, and for huge digit strings
    before int() spends time on them."""
    if isinstance(text, str) and len(text.strip()) > 12:
        raise ValueError("number too long")
    value = int(text)
    if not -MAX_ID <= value <= MAX_ID:
        raise ValueError("number out of range")
    return value


class BoundedIntConverter(IntegerConverter):
    """``<int:…>`` in every route: ids above the database's range are a 404."""

    def __init__(self, map, fixed_digits=0, min=None, max=MAX_ID, signed=False):  # noqa: A002
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


class BoundedArgs(ImmutableMultiDict):
    """Query-string and form values whose ``type=int`` conversions are bounded."""

    def get(self, key, default=None, type=None):  # noqa: A002 (werkzeug's own signature)
        return super().get(key, default, bounded_int if type is int else type)

    def getlist(self, key, type=None):  # noqa: A002
        return super().getlist(key, bounded_int if type is int else type)


class CappedStream(io.RawIOBase):
    """A body stream that raises 413 once more than ``limit`` bytes come out of it.

    werkzeug stops a chunked body (no Content-Length) at ``max_content_length`` but hands
    back the first ``limit`` bytes as if they were the whole body: a truncated form or
    webhook instead of a refusal. Reading one byte past the limit tells the two apart."""

    def __init__(self, stream, limit):
        self.stream, self.limit, self.pos = stream, limit, 0

    def readable(self):
        return True

    def readinto(self, buffer):
        data = self.stream.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.pos += n
        if self.pos > self.limit:
            raise RequestEntityTooLarge()
        return n


class PortalRequest(Request):
    parameter_storage_class = BoundedArgs

    @cached_property
    def stream(self):
        limit = self.max_content_length
        if limit is None or self.content_length is not None or self.shallow:
            return super().stream  # a declared length: werkzeug refuses it up front
        inner = get_input_stream(self.environ, max_content_length=limit + 1)
        return io.BufferedReader(CappedStream(inner, limit))


def refuse_nul_in_query():
    """A NUL in a query string or path is never a search or a filter, and PostgreSQL
    refuses it in any text parameter (a 500 from the database): 400 at the door. Form
    fields get a message beside them instead (``PortalForm``)."""
    if "\x00" in request.path or any("\x00" in v for v in request.args.values()):
        abort(400)


def init_request_handling(app):
    """Bounded ints for URL converters and ``request.args/form.get(type=int)``, and the
    session cookie opened without work when absent (``web.sessions``). Runs
    before any blueprint (or the mounted sandbox) adds a rule, so every rule uses it."""
    from portal.web.sessions import CookieSessions

    app.url_map.converters["int"] = BoundedIntConverter
    app.request_class = PortalRequest
    app.session_interface = CookieSessions()
    app.before_request(refuse_nul_in_query)


def register_blueprints(app):
    from portal.extensions import csrf
    from portal.web import (
        admin,
        auth,
        language,
        notifications,
        ops,
        patient,
        provider,
        public,
        webhooks,
    )

    init_request_handling(app)
    for module in (public, auth, language, patient, provider, admin, notifications, ops):
        app.register_blueprint(module.bp)
    # Webhooks prove themselves by signature, not by a session's CSRF token.
    csrf.exempt(webhooks.bp)
    app.register_blueprint(webhooks.bp)
