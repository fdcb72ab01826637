"""Settlements: what Razorpay paid into the bank, with drill-down to the payments and
refunds each one covers; "fetch now" reads the last days' settlements at once; the
captures still waiting past the working days Razorpay settles by (T+2 by default)."""

from flask import abort, flash, redirect, url_for
from flask_login import current_user

from portal.db import utcnow
from portal.settlements import queries
from portal.settlements.ingest import SettlementError, ingest
from portal.settlements.overdue import overdue_unsettled, settlement_working_days
from portal.transactions.queries import movement_ids_by_reference
from portal.web.admin import bp
from portal.web.forms.base import PortalForm
from portal.web.htmx import render
from portal.web.paging import page_args


@bp.get("/settlements")
def settlements():
    return render(
        "admin/settlements/index.html",
        rows=queries.settlements_page(**page_args(20)),
        totals=queries.totals(),
        overdue=overdue_unsettled(utcnow()),
        working_days=settlement_working_days(),
        fetch_form=PortalForm(),
    )


@bp.post("/settlements/fetch")
def settlements_fetch():
    if not PortalForm().validate_on_submit():
        abort(400)
    try:
        result = ingest(actor=current_user)
    except SettlementError as exc:
        flash(exc.message, "error")
    else:
        flash(
            f"{result.new} new settlement{'s' if result.new != 1 else ''} read "
            f"({result.seen} listed by Razorpay).",
            "success",
        )
        for settlement_id, why in result.refused:
            flash(f"Settlement {settlement_id} could not be stored: {why}", "error")
    return redirect(url_for("admin.settlements"), 303)


@bp.get("/settlements/<int:settlement_id>")
def settlement_detail(settlement_id):
    s = queries.settlement(settlement_id)
    if s is None:
        abort(404)
    items = queries.items_of(s.id)
    return render(
        "admin/settlements/detail.html",
        s=s,
        items=items,
        movements=movement_ids_by_reference(
            [i.entity_id for i in items] + [s.razorpay_settlement_id]
        ),
    )
