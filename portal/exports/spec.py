"""What an export is: its columns (a header and how to read the cell from a row), the rows
(a SQLAlchemy select streamed from a server-side cursor, or a function yielding rows for a
small computed report) and the filters it honours, written at the top of the file.

A capability registers a builder once (``@register("audit")``) that turns the screen's
filter values (a dict of strings) into an :class:`ExportSpec`; the page and the background
job both build it from the same values. A filter left to a default that depends on the
day ("this month") is written out by the builder (``ExportSpec.params``): a background
export keeps those, so its job reads the period it was asked for, not the job's own
"this month" (docs/reports.md, "The period asked for is the period written")."""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

import sqlalchemy as sa

from portal.db import db, utcnow
from portal.domain.timezone import CLINIC_TIMEZONE

from . import cells

YIELD_PER = 2000  # rows fetched per round trip from the server-side cursor
CHUNK_CHARS = 64 * 1024  # text handed to the response (or the file) at a time

BUILDERS: dict[str, Callable[[dict], ExportSpec]] = {}


class ExportError(ValueError):
    """Filters an export cannot honour (the page shows the message)."""

    def __init__(self, message, field=None):
        super().__init__(message)
        self.message, self.field = message, field


@dataclass(frozen=True)
class Column:
    header: str
    read: Callable  # row -> value
    fmt: Callable = cells.neutralise  # value -> cell text


def text(header, read):
    """Free text: neutralised if it would start a formula."""
    return Column(header, read, cells.neutralise)


def money(header, read):
    """Integer paise shown as rupees with two decimals."""
    return Column(header, read, cells.rupees)


def when(header, read):
    """An aware datetime shown in clinic time with its offset."""
    return Column(header, read, cells.clinic_time)


def date(header, read):
    return Column(header, read, cells.day)


def number(header, read):
    return Column(header, read, cells.whole)


def _column(c):
    return c if isinstance(c, Column) else text(*c)


class Summary(Protocol):
    """Totals kept while the file's rows are written (``ExportSpec.totals``)."""

    def add(self, row) -> None: ...

    def rows(self) -> Iterable: ...


@dataclass
class ExportSpec:
    """``name``: the file name's stem; ``title``: what the file is; ``columns``: Column or
    ``(header, read)`` pairs (plain text); ``query``: a select (streamed) *or* ``rows``: a
    function returning an iterable of rows; ``filters``: ``[(label, value)]`` used;
    ``totals``: a function returning a fresh summary, an object with ``add(row)`` (called
    for every data row as it is written) and ``rows()`` (the summary rows written after the
    data, below an empty line, read by the same columns; a value None is an empty cell):
    the page's totals, summed from the file's own rows, so they agree with the rows above
    them by construction and the data is read once (a second read could see a row
    committed meanwhile; docs/reports.md); ``params``: the filter values this spec stands
    for with every default resolved (``month`` "2026-06" for an empty month), set by a
    builder whose defaults depend on the day, else (``build``) the values it was given."""

    name: str
    title: str
    columns: list
    query: sa.Select | None = None
    rows: Callable[[], Iterable] | None = None
    filters: list = field(default_factory=list)
    totals: Callable[[], Summary] | None = None
    params: dict | None = None

    def __post_init__(self):
        self.columns = [_column(c) for c in self.columns]
        if (self.query is None) == (self.rows is None):
            raise TypeError("an ExportSpec needs exactly one of query= or rows=")

    @property
    def filters_text(self):
        return "; ".join(f"{label}: {value}" for label, value in self.filters) or "none"

    def count(self):
        """How many data rows the export will have (decides download now or job)."""
        if self.query is None:
            return sum(1 for _ in self.rows())
        subquery = self.query.order_by(None).subquery()
        return db.session.scalar(sa.select(sa.func.count()).select_from(subquery))

    def iter_batches(self):
        """The rows in batches of at most ``YIELD_PER``. A select runs on a server-side
        cursor (PostgreSQL: a named cursor, one batch a round trip), so memory holds one
        batch whatever the number of rows."""
        if self.rows is not None:
            rows = iter(self.rows())
            while batch := list(itertools.islice(rows, YIELD_PER)):
                yield batch
            return
        statement = self.query.execution_options(yield_per=YIELD_PER, stream_results=True)
        if any(isinstance(d["type"], type) for d in self.query.column_descriptions):
            result = db.session.execute(statement)  # ORM entities: the session loads them
        else:
            # Plain columns: rows straight from the session's connection, without the
            # ORM's result layer (two to four times cheaper per row).
            result = db.session.connection().execute(statement)
        try:
            yield from result.partitions()
        finally:
            result.close()

    def iter_rows(self):
        for batch in self.iter_batches():
            yield from batch

    def row_formatter(self):
        """One function turning a row into its cells, built once per export: for a million
        rows the per-row cost is then the cells' own (no loop over the columns in Python).
        The generated code names only this spec's own read and format functions."""
        scope = {}
        calls = []
        for i, column in enumerate(self.columns):
            scope[f"read{i}"], scope[f"fmt{i}"] = column.read, column.fmt
            calls.append(f"fmt{i}(read{i}(row))")
        exec(f"def format_row(row):\n    return ({', '.join(calls)},)\n", scope)  # noqa: S102
        return scope["format_row"]

    def preamble(self, now=None):
        """The lines above the header row: what, which filters, when, which time zone."""
        return [
            [cells.neutralise(f"Report: {self.title}")],
            [cells.neutralise(f"Filters: {self.filters_text}")],
            [f"Generated: {cells.clinic_time(now or utcnow())}"],
            [f"Times in clinic time ({CLINIC_TIMEZONE}); money in rupees (INR)"],
            [],
        ]

    def iter_csv(self, progress=None, every=5000, now=None):
        """The whole file as text chunks (a batch of rows, or ``CHUNK_CHARS`` of small
        rows, at a time); ``progress(rows)`` is called every ``every`` rows or so and at
        the end."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
        buffer.write("\ufeff")  # a BOM: spreadsheets then read the file as UTF-8
        writer.writerows(self.preamble(now))
        writer.writerow([cells.neutralise(c.header) for c in self.columns])
        format_row = self.row_formatter()
        summary = self.totals() if self.totals is not None else None
        n, reported = 0, 0
        for batch in self.iter_batches():
            writer.writerows(map(format_row, batch))
            if summary is not None:
                for row in batch:
                    summary.add(row)
            n += len(batch)
            if buffer.tell() >= CHUNK_CHARS:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
            if progress is not None and n - reported >= every:
                progress(n)
                reported = n
        if summary is not None:
            writer.writerow([])
            for row in summary.rows():
                writer.writerow(
                    ["" if (v := c.read(row)) is None else c.fmt(v) for c in self.columns]
                )
        yield buffer.getvalue()
        if progress is not None:
            progress(n)


def register(name):
    """Register a builder ``fn(params: dict) -> ExportSpec`` under ``name``."""

    def decorate(fn):
        BUILDERS[name] = fn
        return fn

    return decorate


def build(name, params):
    """The spec for ``name`` with these filter values; ``ExportError`` for bad ones,
    ``KeyError`` for an unknown name."""
    params = dict(params or {})
    spec = BUILDERS[name](params)
    if spec.params is None:
        spec.params = params
    return spec
