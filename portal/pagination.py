"""Keyset pagination for the read modules (``<capability>/queries.py``).

A list is ordered by a few columns ending in a unique one (the tie-breaker), so every row has
one place. A page is the ``per_page`` rows after (or before) a cursor: the sort values of the
row the previous page ended on, JSON in URL-safe base64. Unlike OFFSET, a page costs the
same however deep it is, and rows added meanwhile neither repeat nor skip a row.

A cursor that does not decode, or whose values do not fit the columns, is ignored: the
first page is shown (an old bookmark must not give a 500).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from threading import Lock
from typing import Any

import sqlalchemy as sa

from portal.db import db
from portal.domain.dates import in_span

DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 50
_BIG = 2**63
_INT = 2**31  # a 32-bit INTEGER column (every id): beyond it PostgreSQL refuses the bind


@dataclass(frozen=True)
class Order:
    """One sort column: ``column`` (a mapped attribute or SQL expression), newest first when
    ``descending``. ``key`` reads the value from a result row (default: the attribute of the
    row's entity named like the column)."""

    column: Any
    descending: bool = False
    key: Callable[[Any], Any] | None = None

    def value(self, row):
        if self.key is not None:
            return self.key(row)
        return getattr(row, self.column.key)


@dataclass(frozen=True)
class Page:
    items: list
    per_page: int
    next_cursor: str | None = None  # the rows after the last item, when there are any
    prev_cursor: str | None = None  # the rows before the first item, when there are any
    total: int | None = None  # only when asked for (one COUNT query)
    extra: dict = field(default_factory=dict)

    @property
    def has_next(self):
        return self.next_cursor is not None

    @property
    def has_prev(self):
        return self.prev_cursor is not None

    def __iter__(self):
        return iter(self.items)

    def __len__(self):
        return len(self.items)


def per_page_from(value, default=DEFAULT_PER_PAGE):
    """A requested page size, bounded to 1 … MAX_PER_PAGE; anything unreadable: ``default``."""
    try:
        n = int(value)
    except (TypeError, ValueError):
        return min(default, MAX_PER_PAGE)
    return max(1, min(n, MAX_PER_PAGE))


# --- cursors ---------------------------------------------------------------------------------


def encode_cursor(values: Sequence) -> str:
    def one(v):
        if isinstance(v, datetime):
            return {"dt": v.isoformat()}
        if isinstance(v, date):
            return {"d": v.isoformat()}
        return v

    raw = json.dumps([one(v) for v in values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, orders: Sequence[Order]):
    """The cursor's values, checked against the sort columns' types; None when unusable."""
    if not cursor or len(cursor) > 512:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(values, list) or len(values) != len(orders):
        return None
    out = []
    for value, order in zip(values, orders):
        value = _typed(value, _python_type(order.column), _int_limit(order.column))
        if value is _BAD:
            return None
        out.append(value)
    return tuple(out)


_BAD = object()


def _python_type(column):
    """The Python type a sort column holds, for checking a cursor's values. A
    ``TypeDecorator`` (``UTCDateTime``) says ``object``: its ``impl`` says ``datetime``
    (review finding: a date in a time's place got through and was a 500 at the bind)."""
    col_type = getattr(column, "type", None)
    for candidate in (col_type, getattr(col_type, "impl", None)):
        try:
            python_type = candidate.python_type
        except (AttributeError, NotImplementedError):
            continue
        if python_type is not object:
            return python_type
    return None


def _int_limit(column):
    col_type = getattr(column, "type", None)
    if isinstance(col_type, sa.Integer) and not isinstance(col_type, sa.BigInteger):
        return _INT
    return _BIG


def _typed(value, expected, limit=_BIG):
    if isinstance(value, dict) and len(value) == 1:
        ((kind, text),) = value.items()
        if not isinstance(text, str):
            return _BAD
        try:
            parsed = (
                datetime.fromisoformat(text)
                if kind == "dt"
                else date.fromisoformat(text)
                if kind == "d"
                else _BAD
            )
        except ValueError:
            return _BAD
        if parsed is _BAD or (expected is not None and not isinstance(parsed, expected)):
            return _BAD
        if isinstance(parsed, datetime) and parsed.tzinfo is None:
            return _BAD  # every stored time is aware (portal.db.UTCDateTime refuses naive)
        if not in_span(parsed):
            return _BAD  # the years 0001 and 9999 overflow on the way to UTC
        return parsed
    if isinstance(value, bool) or value is None:
        return _BAD  # sort columns are never NULL; booleans are not sort keys here
    if isinstance(value, int):
        if not -limit < value < limit or (expected is not None and expected is not int):
            return _BAD
        return value
    if isinstance(value, str):
        if "\x00" in value or len(value) > 200 or (expected is not None and expected is not str):
            return _BAD
        return value
    return _BAD


# --- the query -------------------------------------------------------------------------------


def _beyond(orders, values, forward):
    """Rows strictly after ``values`` in the list's order (before it when not ``forward``)."""
    clauses = []
    for i, order in enumerate(orders):
        equal = [o.column == v for o, v in zip(orders[:i], values[:i])]
        later = order.descending == forward  # descending and forward: smaller values
        step = order.column < values[i] if later else order.column > values[i]
        clauses.append(sa.and_(*equal, step))
    return sa.or_(*clauses)


def _ordered(query, orders, forward):
    return query.order_by(
        *[(o.column.desc() if o.descending == forward else o.column.asc()) for o in orders]
    )


# Page statements of queries built once (``keyset_page(…, params=…)``), by the query, the
# orders, the direction and the options (each held, so an id is not reused meanwhile).
_BUILT = OrderedDict()
_BUILT_MAX = 256
_built_lock = Lock()


def _page_statement(query, orders, direction, options):
    """The page statement of a query built once, itself built once: the cursor's values
    and the limit as bind parameters (``_cursor_<i>``, ``_page_limit``). Building it and
    its cache key for every request cost about as much CPU as running it."""
    key = (id(query), id(orders), direction, id(options))
    with _built_lock:
        entry = _BUILT.get(key)
        if entry is not None and entry[0] is query and entry[1] is orders and entry[2] is options:
            _BUILT.move_to_end(key)
            return entry[3]
    statement = query
    if direction is not None:
        values = [sa.bindparam(f"_cursor_{i}", type_=o.column.type) for i, o in enumerate(orders)]
        statement = statement.where(_beyond(orders, values, direction))
    statement = _ordered(statement, orders, direction is not False)
    statement = statement.limit(sa.bindparam("_page_limit", type_=sa.Integer))
    if options:
        statement = statement.options(*options)
    with _built_lock:
        _BUILT[key] = (query, orders, options, statement)
        while len(_BUILT) > _BUILT_MAX:
            _BUILT.popitem(last=False)
    return statement


def keyset_page(
    query,
    orders: Sequence[Order],
    *,
    after=None,
    before=None,
    per_page=DEFAULT_PER_PAGE,
    scalars=True,
    count=False,
    options=(),
    params=None,
):
    """One page of ``query`` (a ``select()`` without ``order_by``) in ``orders``' order.

    ``after`` / ``before``: cursors from a previous page (``after`` wins when both are
    given). ``scalars``: the query selects one entity. ``count``: also count every row the
    query matches (``Page.total``). ``options``: loader options (eager loading) for the rows.
    ``params``: the values of ``query``'s bind parameters, for a query built once (a
    module's ``@cache``); its page statements are then built once too.
    """
    per_page = per_page_from(per_page)
    after_values = decode_cursor(after, orders)
    before_values = None if after_values else decode_cursor(before, orders)
    forward = before_values is None
    if params is not None:
        values = after_values or before_values or ()
        direction = True if after_values else False if before_values else None
        page_query = _page_statement(query, orders, direction, options)
        bound = {**params, "_page_limit": per_page + 1}
        bound.update((f"_cursor_{i}", value) for i, value in enumerate(values))
        result = db.session.execute(page_query, bound)
    else:
        page_query = query
        if after_values:
            page_query = page_query.where(_beyond(orders, after_values, True))
        elif before_values:
            page_query = page_query.where(_beyond(orders, before_values, False))
        page_query = _ordered(page_query, orders, forward).limit(per_page + 1)
        if options:
            page_query = page_query.options(*options)
        result = db.session.execute(page_query)
    rows = list(result.scalars().unique().all() if scalars else result.all())
    more = len(rows) > per_page
    rows = rows[:per_page]
    if not forward:
        rows.reverse()

    def cursor(row):
        return encode_cursor([o.value(row) for o in orders])

    if forward:
        next_cursor = cursor(rows[-1]) if more and rows else None
        prev_cursor = cursor(rows[0]) if after_values and rows else None
    else:
        prev_cursor = cursor(rows[0]) if more and rows else None
        next_cursor = cursor(rows[-1]) if rows else None
    total = None
    if count:
        total = db.session.scalar(
            sa.select(sa.func.count()).select_from(query.order_by(None).subquery()),
            params or {},
        )
    return Page(
        items=rows, per_page=per_page, next_cursor=next_cursor, prev_cursor=prev_cursor, total=total
    )
