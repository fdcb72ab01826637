"""The TDS report: per provider per quarter of a financial year and per rate applied —
PAN, section, rate (a row at section 206AA's rate, no PAN on file when its payouts were
made, is marked "206AA"), gross paid, TDS deducted, payouts covered. Read from the ledger's
payout postings of the year's payouts (``Payout.financial_year``, the year the TDS was
deducted in): a payout counts in the quarter it was made (``payout_initiated``) and is
taken back in the quarter it failed for good or was reversed, as ``tds_payable`` moved;
one that comes back after its year ended is taken back in that year's Q4, never in the
next year (the rule: docs/payouts.md, "TDS").

A doctor's or a lab's own "TDS by quarter" (their page and its CSV) is this report's query
with the provider filter (``for_provider``): each of their quarters is the admin report's
rows for them added up (one per rate applied), the part of it in a row the report marks
(section 206AA's rate) kept apart for their page and file to mark too (and added up for
the year under their Total, ``ProviderTotals``), and a quarter without one is a nil row."""

from dataclasses import dataclass
from types import SimpleNamespace

import sqlalchemy as sa

from portal.catalog.models import Provider
from portal.config import policy
from portal.db import db, utcnow
from portal.domain.ids import parse_id
from portal.domain.rates import financial_year, format_inr, percent_text
from portal.domain.tax_ids import mask_pan
from portal.domain.text import N_, Text
from portal.exports import ExportError, ExportSpec, money, number, register, text
from portal.ledger.models import LedgerTransaction
from portal.payouts.models import Payout

from . import periods

TAKEN_BACK = ("payout_failed", "payout_reversed")
MSG_PROVIDER = "Choose a provider from the list"


def parse(params):
    fy = periods.parse_financial_year(params.get("fy") or financial_year(utcnow()))
    quarters = periods.parse_quarters(params.get("quarter"))
    provider_text = (params.get("provider_id") or "").strip()
    provider = None
    if provider_text:
        provider_id = parse_id(provider_text)
        provider = db.session.get(Provider, provider_id) if provider_id else None
        if provider is None:
            raise ExportError(MSG_PROVIDER, field="provider_id")
    return {"fy": fy, "quarters": quarters, "provider": provider}


def resolved(f):
    """``f`` as filter values with the default written out (an empty year: the financial
    year it was when parsed): a background export keeps these (``ExportSpec.params``)."""
    return {
        "fy": f["fy"],
        "quarter": f["quarters"][0] if len(f["quarters"]) == 1 else "",
        "provider_id": str(f["provider"].id) if f["provider"] else "",
    }


def provider_choices():
    return db.session.execute(
        sa.select(Provider.id, Provider.display_name).order_by(Provider.display_name, Provider.id)
    ).all()


def describe(f):
    return [
        ("Financial year", f["fy"]),
        ("Quarter", ", ".join(f["quarters"]) if len(f["quarters"]) < 4 else "all"),
        ("Provider", f["provider"].display_name if f["provider"] else "all"),
    ]


def _quarter_query(f, quarter, section):
    low, high = periods.quarter_bounds(f["fy"], quarter)
    sign = sa.case((LedgerTransaction.kind.in_(TAKEN_BACK), -1), else_=1)
    q = (
        sa.select(
            sa.literal(quarter).label("quarter"),
            Provider.id.label("provider_id"),
            Provider.display_name.label("provider"),
            Provider.pan.label("pan"),
            # Form 26Q reports every payment under its section, tax deducted or not:
            # below the threshold (no payout's ``tds_section``) the policy's for the year.
            sa.func.coalesce(sa.func.max(Payout.tds_section), sa.literal(section)).label("section"),
            # Each rate applied is a row of its own (Form 26Q states the rate of each
            # deduction, and flags one at section 206AA's for want of a PAN).
            Payout.tds_rate_bps.label("rate_bps"),
            Payout.tds_higher_section.label("higher_section"),
            sa.cast(sa.func.sum(sign * Payout.gross), sa.BigInteger).label("gross"),
            sa.cast(sa.func.sum(sign * Payout.tds), sa.BigInteger).label("tds"),
            sa.cast(sa.func.sum(sign), sa.BigInteger).label("payouts"),
        )
        .select_from(LedgerTransaction)
        .join(Payout, Payout.id == sa.cast(LedgerTransaction.reference_id, sa.Integer))
        .join(Provider, Provider.id == Payout.provider_id)
        .where(
            LedgerTransaction.reference_type == "payout",
            LedgerTransaction.kind.in_(("payout_initiated", *TAKEN_BACK)),
            Payout.financial_year == f["fy"],
            LedgerTransaction.created_at >= low,
        )
        .group_by(
            Provider.id,
            Provider.display_name,
            Provider.pan,
            Payout.tds_rate_bps,
            Payout.tds_higher_section,
        )
        .order_by(
            Provider.display_name,
            Provider.id,
            sa.func.coalesce(Payout.tds_higher_section, ""),
            Payout.tds_rate_bps,
        )
    )
    if quarter != periods.QUARTERS[-1]:
        q = q.where(LedgerTransaction.created_at < high)
    # else Q4 has no end: a take-back after the year ended still belongs to the year.
    if f["provider"]:
        q = q.where(Provider.id == f["provider"].id)
    return q


def rows(f):
    """The report's rows, quarter by quarter (small: one per provider paid), each with its
    section (the page and the file show the same)."""
    section = policy().tds_rule_for(f["fy"]).section
    for quarter in f["quarters"]:
        yield from db.session.execute(_quarter_query(f, quarter, section))


class Totals:
    """The total of the rows read so far (integer paise): the page's, and the file's
    (``ExportSpec.totals``: fed the file's own rows as they are written, so its Total row
    is the sum of the rows above it, with no second read of the quarters)."""

    def __init__(self):
        self.gross = self.tds = self.payouts = 0

    def add(self, row):
        self.gross += int(row.gross)
        self.tds += int(row.tds)
        self.payouts += int(row.payouts)

    def rows(self):
        return [
            SimpleNamespace(
                quarter="Total",
                months="",
                provider=None,
                pan="",
                section=None,
                rate_bps=None,
                higher_section=None,
                gross=self.gross,
                tds=self.tds,
                payouts=self.payouts,
            )  # fmt: skip
        ]


def higher_rate_column(sections):
    """The files' "Higher rate" column, the admin's and a provider's, written once: why a
    row's TDS was deducted above the rule's rate, the sections ``sections(row)`` gives
    ("206AA": no PAN on file when its payouts were made), empty at the rule's own rate."""
    return text("Higher rate", lambda r: "; ".join(dict.fromkeys(s for s in sections(r) if s)))


def report(f):
    data, total = [], Totals()
    for row in rows(f):
        data.append(row)
        total.add(row)
    return {"rows": data, "gross": total.gross, "tds": total.tds, "payouts": total.payouts}


@register("tds")
def export(params):
    f = parse(params)
    return ExportSpec(
        name=f"tds-{f['fy']}",
        title="TDS per provider per quarter",
        columns=[
            text("Financial year", lambda r: f["fy"]),
            text("Quarter", lambda r: r.quarter),
            text("Provider", lambda r: r.provider),
            text("PAN", lambda r: r.pan or ("" if r.quarter == "Total" else "not on file")),
            text("Section", lambda r: r.section),
            text("Rate (%)", lambda r: "" if r.rate_bps is None else percent_text(r.rate_bps)),
            higher_rate_column(lambda r: (r.higher_section,)),
            money("Gross paid", lambda r: r.gross),
            money("TDS deducted", lambda r: r.tds),
            number("Payouts covered", lambda r: r.payouts),
        ],
        rows=lambda: rows(f),
        filters=describe(f),
        totals=Totals,
        params=resolved(f),
    )


# --- one provider's own quarters (their page, docs/payouts.md "Pages") -----------------------

MSG_NOT_A_YEAR_OF_YOURS = N_("Choose a financial year from the list. Showing %(fy)s.")


@dataclass(frozen=True)
class HigherRate:
    """The part of a provider's quarter the admin report marks: its row at a higher rate
    (``section`` "206AA": no PAN on file when those payouts were made)."""

    section: str
    rate_bps: int
    tds: int

    def said(self) -> Text:
        """The part as the provider's page says it under the TDS it is part of; a part
        below nothing (a 206AA payout taken back in a later quarter) as TDS given back."""
        return Text(
            MSG_HIGHER_PART if self.tds >= 0 else MSG_HIGHER_PART_BACK,
            tds=format_inr(abs(self.tds), always_show_paise=True),
            rate=f"{percent_text(self.rate_bps)}%",
            section=self.section,
        )


# Under a quarter's (or the year's) TDS on the provider's page: said of the deduction, so
# it stays true once a PAN is on file (later payouts deduct the rule's rate).
MSG_HIGHER_PART = N_(
    "%(tds)s of it at %(rate)s (section %(section)s: no PAN on file when it was deducted)"
)
MSG_HIGHER_PART_BACK = N_(
    "%(tds)s of it given back, deducted at %(rate)s (section %(section)s: no PAN on file"
    " when it was deducted)"
)


@dataclass(frozen=True)
class ProviderQuarter:
    """One quarter of a provider's year, as the admin report's row for them (or nil)."""

    quarter: str  # "Q1"
    months: str  # "Apr–Jun 2026"
    section: str
    gross: int
    tds: int
    payouts: int
    # Of ``tds``, what was deducted at a higher rate: one per rate, none when nothing was.
    higher: tuple[HigherRate, ...] = ()


class ProviderTotals(Totals):
    """A provider's year, their page's Total row and their file's: :class:`Totals`, and
    the quarters' ``higher`` parts added up per rate (the year's TDS at section 206AA's
    rate). A rate whose part nets to nothing over the year (a 206AA payout made in Q3,
    reversed in Q4) is left out, as a quarter leaves out a row that nets to nothing."""

    def __init__(self):
        super().__init__()
        self._higher: dict[tuple[str, int], int] = {}

    def add(self, row):
        super().add(row)
        for part in row.higher:
            key = (part.section, part.rate_bps)
            self._higher[key] = self._higher.get(key, 0) + part.tds

    def higher(self):
        return tuple(HigherRate(*key, tds) for key, tds in sorted(self._higher.items()) if tds)

    def rows(self):
        (row,) = super().rows()
        row.higher = self.higher()
        return [row]


def for_provider(provider, fy):
    """``provider``'s Q1–Q4 of ``fy``: the report's own rows with the provider filter (the
    dating rule is the report's, nowhere else), and a nil row, in the report's section for
    the year, for a quarter the report has no row for (the provider checks Q2 was nil).
    A row the report marks (``higher_section``) is also the quarter's ``higher`` part,
    unless its TDS nets to nothing (made and taken back in the quarter)."""
    f = {"fy": fy, "quarters": periods.QUARTERS, "provider": provider}
    found: dict[str, list] = {}
    for row in rows(f):  # a quarter's rows, one per rate applied, add up to it
        found.setdefault(row.quarter, []).append(row)
    section = policy().tds_rule_for(fy).section
    return [
        ProviderQuarter(
            quarter=quarter,
            months=periods.quarter_months(fy, quarter),
            section=quarter_rows[0].section if quarter_rows else section,
            gross=sum(int(row.gross) for row in quarter_rows),
            tds=sum(int(row.tds) for row in quarter_rows),
            payouts=sum(int(row.payouts) for row in quarter_rows),
            higher=tuple(
                HigherRate(row.higher_section, row.rate_bps, int(row.tds))
                for row in quarter_rows
                if row.higher_section and row.tds
            ),
        )
        for quarter in periods.QUARTERS
        for quarter_rows in (found.get(quarter, []),)
    ]


def provider_report(provider, fy):
    """The provider's page: the four quarters and their total, with the year's part at a
    higher rate (``higher``: the Total row marked as a quarter is)."""
    quarters, total = for_provider(provider, fy), ProviderTotals()
    for quarter in quarters:
        total.add(quarter)
    return {
        "quarters": quarters,
        "gross": total.gross,
        "tds": total.tds,
        "payouts": total.payouts,
        "higher": total.higher(),
    }


def provider_years(provider_id, current):
    """The financial years ``provider_id`` has payouts in, and ``current``, newest first:
    the years their page offers."""
    years = db.session.scalars(
        sa.select(Payout.financial_year).where(Payout.provider_id == provider_id).distinct()
    )
    return sorted({*years, current}, reverse=True)


def provider_year(text, years, current):
    """(the year to show, a notice or None) for ``?fy=`` ``text``: one of ``years`` as
    asked; nothing asked, ``current``; anything else (malformed, or a year without their
    payouts) ``current`` with a notice saying so, never an error page. The notice does
    not repeat what was typed (pages echo no request input)."""
    text = (text or "").strip()
    if not text:
        return current, None
    if text in years:
        return text, None
    return current, Text(MSG_NOT_A_YEAR_OF_YOURS, fy=current)


@register("tds_provider")
def provider_export(params):
    """One provider's TDS by quarter, their page's CSV: ``fy`` and ``provider_id``. Their
    page always sends the signed-in provider's own id, never one from the request; the
    admin's TDS export is ``tds``. The file is in English, as the tax forms are; the PAN
    masked, as on the page. Its last columns are the part of a quarter's TDS at a higher
    rate (the admin file's "Higher rate", that rate, the TDS at it; the Total row's, the
    year's): added after the others, so a spreadsheet built on the file before reads the
    columns it read where they were."""
    f = parse({"fy": params.get("fy"), "provider_id": params.get("provider_id")})
    provider, fy = f["provider"], f["fy"]
    if provider is None:
        raise ExportError(MSG_PROVIDER, field="provider_id")
    pan = mask_pan(provider.pan) or "not on file"
    return ExportSpec(
        name=f"tds-{fy}",
        title="TDS by quarter",
        columns=[
            text("Financial year", lambda r: fy),
            text("Quarter", lambda r: r.quarter),
            text("Months", lambda r: r.months),
            text("PAN", lambda r: "" if r.quarter == "Total" else pan),
            text("Section", lambda r: r.section),
            money("Gross of payouts made", lambda r: r.gross),  # the page's heading
            money("TDS deducted", lambda r: r.tds),
            number("Payouts covered", lambda r: r.payouts),
            higher_rate_column(lambda r: (part.section for part in r.higher)),
            text(
                "Higher rate (%)", lambda r: "; ".join(percent_text(h.rate_bps) for h in r.higher)
            ),
            money("TDS at the higher rate", lambda r: sum(part.tds for part in r.higher)),
        ],
        rows=lambda: for_provider(provider, fy),
        filters=[("Financial year", fy), ("Provider", provider.display_name)],
        totals=ProviderTotals,
    )
