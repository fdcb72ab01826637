"""The TDS report: per provider per quarter of a financial year — PAN, section, gross paid,
TDS deducted, payouts covered. Read from the ledger's payout postings of the year's payouts
(``Payout.financial_year``, the year the TDS was deducted in): a payout counts in the
quarter it was made (``payout_initiated``) and is taken back in the quarter it failed for
good or was reversed, as ``tds_payable`` moved; one that comes back after its year ended is
taken back in that year's Q4, never in the next year (the rule: docs/payouts.md, "TDS")."""

from types import SimpleNamespace

import sqlalchemy as sa

from portal.catalog.models import Provider
from portal.config import policy
from portal.db import db, utcnow
from portal.domain.ids import parse_id
from portal.domain.rates import financial_year
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
        .group_by(Provider.id, Provider.display_name, Provider.pan)
        .order_by(Provider.display_name, Provider.id)
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
                provider=None,
                pan="",
                section=None,
                gross=self.gross,
                tds=self.tds,
                payouts=self.payouts,
            )  # fmt: skip
        ]


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
            money("Gross paid", lambda r: r.gross),
            money("TDS deducted", lambda r: r.tds),
            number("Payouts covered", lambda r: r.payouts),
        ],
        rows=lambda: rows(f),
        filters=describe(f),
        totals=Totals,
    )
