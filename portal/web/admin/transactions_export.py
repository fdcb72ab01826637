"""The transactions console's CSV: the same filters as the page (its query string), every
row with its fee breakup (less discount and wallet part: it adds up to the amount), a
payout's gross and TDS withheld (and whether it was given back), gateway fee, net,
reference and reconciliation status; the filters used in the file's header lines, and the
filtered set's summary after the rows, added up from them (docs/transactions.md)."""

from operator import itemgetter

import sqlalchemy as sa
from flask import request
from werkzeug.datastructures import MultiDict

from portal.db import clinic_today
from portal.exports import ExportError, ExportSpec, money, number, register, text, when
from portal.reconcile.queries import UNCHECKED, status_of
from portal.transactions import queries
from portal.transactions.models import PAYOUT, PAYOUT_REVERSAL
from portal.transactions.models import MoneyMovement as M
from portal.web.admin import bp
from portal.web.admin.transactions import LIST, PRESETS, TYPES, recon_clause
from portal.web.exporting import csv_download
from portal.web.forms.transactions import TransactionFilterForm, unknown_keys
from portal.web.htmx import render

# A payout's gross is its row's amount; a column of its own beside the TDS withheld, so a
# payout reads gross − TDS = net across its row (empty on other rows). Its reversal's row
# too, each figure negative: the column adds up to the period's payouts.
PAYOUT_GROSS = sa.case((M.type.in_((PAYOUT, PAYOUT_REVERSAL)), M.amount)).label("payout_gross")

GIVEN_BACK = sa.case((queries.tds_given_back(), "yes"), else_="").label("tds_given_back")

# (header, money_movements column name or expression, cell kind), in the file's order; the
# reconciliation status comes last, from its own subquery.
COLUMNS = (
    ("Id", "id", number),
    ("Time", "occurred_at", when),
    ("Type", "type", text),
    ("Status", "status", text),
    ("Patient or provider", "party_name", text),
    ("Visit", "visit_number", text),
    ("Amount", "amount", money),
    ("Fee", "fee", money),
    ("Platform fee", "platform_fee", money),
    ("GST", "gst", money),
    ("Discount", "discount", money),
    ("From wallet", "wallet", money),
    ("Payout gross", PAYOUT_GROSS, money),
    ("TDS withheld", "tds", money),
    # "yes" when that TDS was given back (the payout failed for good or was reversed): the
    # status cannot tell, a FAILED payout may still wait for its retry.
    ("TDS given back", GIVEN_BACK, text),
    ("Gateway fee", "gateway_fee", money),
    ("Net", "net", money),
    ("Gateway reference", "reference", text),
)


# Where a row's summary terms (``queries.summary_terms``) start: after the file's columns
# and the reconciliation status. Read beside the row, not written.
TERMS_AT = len(COLUMNS) + 1
ID, TYPE, AMOUNT = ([h for h, _, _ in COLUMNS].index(h) for h in ("Id", "Type", "Amount"))


class Totals:
    """The console's summary of the rows the file holds, added up as they are written
    (``ExportSpec.totals``), and written after them as the GST and TDS files' totals are:
    a row per line of the console's summary (``Summary.lines()``, after the count), its
    label in the Type column and its figure in the Amount column, or, a count, in the Id
    column. It was read in a statement of its own before the rows, and a refund committed
    between the two was in the rows and not in the summary (re-read finding)."""

    def __init__(self):
        self.tally = queries.Tally()

    def add(self, row):
        self.tally.add(row[TERMS_AT:])

    def rows(self):
        s = self.tally.summary()
        lines = [("Count", s.count, None)]
        lines += [(line.label, line.count, line.paise) for line in s.lines()]
        rows = []
        for label, count, paise in lines:
            row = [None] * TERMS_AT
            row[ID], row[TYPE], row[AMOUNT] = count, label, paise
            rows.append(row)
        return rows


def _filter(params):
    form = TransactionFilterForm(formdata=MultiDict(params))
    unknown = unknown_keys(params)
    form.validate()
    f = None if unknown else form.to_filter(clinic_today())
    if f is None:
        field, message = next(
            ((name, errors[0]) for name, errors in form.errors.items() if errors),
            (None, f"Unknown filter: {', '.join(sorted(unknown))}" if unknown else "Bad filter"),
        )
        raise ExportError(str(message), field=field)
    return form, f


# The query keys of the period: the file's "Period" entry says the dates they stand for.
PERIOD_KEYS = ("preset", "from", "to")


def _resolved(form, f):
    """The filter values with the period written out as its dates ("the last 7 days" or a
    start alone, up to today: the days they were when read), for a background export to
    keep (``ExportSpec.params``); a reference without dates stays every date."""
    values = {k: v for k, v in form.args().items() if k not in PERIOD_KEYS}
    if not f.every_date:
        values["from"], values["to"] = f.start.isoformat(), f.end.isoformat()
    return values


@register("transactions")
def export(params):
    form, f = _filter(params)
    clause = recon_clause(f.recon)
    # The status the console's rows show (portal.reconcile.queries.SEVERITY), per row in
    # the one statement.
    recon = status_of(M.reference)
    # Plain columns, not the entity: a year is a million rows, and rows straight from the
    # connection cost a quarter of ORM objects (portal.exports.spec.iter_batches).
    query = (
        sa.select(
            *(getattr(M, c) if isinstance(c, str) else c for _, c, _ in COLUMNS),
            sa.func.coalesce(recon, UNCHECKED),
            *queries.summary_terms().values(),
        )
        .where(*queries.conditions(f, recon_clause=clause))
        .order_by(M.occurred_at.desc(), M.id.desc())
    )
    used = [(k, v) for k, v in form.args().items() if v and k not in PERIOD_KEYS]
    return ExportSpec(
        name="transactions",
        title="Transactions",
        columns=[
            *(kind(header, itemgetter(i)) for i, (header, _, kind) in enumerate(COLUMNS)),
            text("Reconciliation", itemgetter(len(COLUMNS))),
        ],
        query=query,
        filters=[
            ("Period", "every date" if f.every_date else f"{f.start} to {f.end}"),
            *used,
        ],
        totals=Totals,
        params=_resolved(form, f),
    )


@bp.get("/transactions.csv")
def transactions_csv():
    params = request.args.to_dict()
    try:
        return csv_download("transactions", params)
    except ExportError:
        # The console with the same messages beside its fields (422), no file.
        form = TransactionFilterForm(formdata=request.args)
        form.validate()
        form.to_filter(clinic_today())
        unknown = unknown_keys(request.args)
        context = {"form": form, "types": TYPES, "presets": PRESETS, "unknown": unknown}
        return render(LIST, block="console", status=422, rows=None, **context)
