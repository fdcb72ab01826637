"""Payout onboarding: the provider's bank account (IFSC + number) or UPI id, and their PAN.

Saving creates the RazorpayX contact, fund account and validation; payouts start once the
validation succeeds (webhook or the "check again" button). Changing the account validates
the new one before any payout goes to it; meanwhile payouts go to the last validated one.

The PAN (the TDS statement's, docs/payouts.md "PAN"): shown masked; while none is on file
the provider may enter it once (``catalog.pan.enter_own_pan``), after that only the
clinic changes it. Always the signed-in provider's own: no id is read from the request."""

from flask import abort, flash, redirect, url_for
from flask_login import current_user

from portal.catalog.checks import NotFound, ValidationError
from portal.catalog.pan import enter_own_pan
from portal.catalog.providers import provider_for_user
from portal.config import policy
from portal.db import utcnow
from portal.domain.payouts import rate_for_payee
from portal.domain.rates import financial_year
from portal.domain.tax_ids import mask_pan
from portal.extensions import db
from portal.i18n import N_
from portal.payouts import fund_accounts, queries
from portal.payouts.common import (
    current_fund_account,
    payout_fund_account,
    pays_earlier_account,
)
from portal.web.errors import apply_errors
from portal.web.forms.payouts import BankForm, PanForm
from portal.web.htmx import is_fragment_request, render
from portal.web.provider import bp

TEMPLATE = "provider/bank/index.html"


def _provider():
    provider = provider_for_user(current_user)
    if provider is None:
        abort(404)
    return provider


def _page(provider, form=None, status=None, block=None, pan_form=None):
    form = form or BankForm(formdata=None)
    pan_form = pan_form or PanForm(formdata=None)
    if block and not is_fragment_request():
        block = None
    history = queries.fund_account_history(provider.id)
    current, payout_account = current_fund_account(provider.id), payout_fund_account(provider.id)
    # What a missing PAN costs (section 206AA), by this year's rule: the PAN card says it.
    rule = policy().tds_rule_for(financial_year(utcnow()))
    return render(
        TEMPLATE,
        block=block,
        status=status or (422 if form.errors or pan_form.errors else 200),
        provider=provider,
        form=form,
        pan=mask_pan(provider.pan),
        pan_form=pan_form,
        no_pan_rate_bps=rate_for_payee(rule, pan_on_file=False)[0],
        pan_rate_bps=rule.rate_bps,
        fund_account=current,
        payout_account=payout_account,
        pays_earlier_account=pays_earlier_account(current, payout_account),
        history=history,
    )


@bp.get("/bank")
def bank():
    provider = provider_for_user(current_user)
    if provider is None:
        return render("provider/schedule/no_profile.html")
    return _page(provider)


@bp.post("/bank")
def bank_save():
    provider = _provider()
    form = BankForm()
    if form.validate_on_submit():
        try:
            if form.kind.data == "vpa":
                fund_accounts.save_vpa(
                    current_user,
                    provider.id,
                    vpa=form.vpa.data,
                    holder_name=form.holder_name.data or None,
                )
            else:
                fund_accounts.save_bank_account(
                    current_user,
                    provider.id,
                    holder_name=form.holder_name.data,
                    ifsc=form.ifsc.data,
                    account_number=form.account_number.data,
                    confirm_account_number=form.confirm_account_number.data,
                )
        except fund_accounts.FundAccountError as exc:
            db.session.rollback()
            apply_errors(form, {("form" if k == "form" else k): v for k, v in exc.errors.items()})
        except fund_accounts.NotFound:
            abort(404)
        else:
            flash(
                N_(
                    "Account saved. We are validating it with your bank; payouts start once "
                    "it is validated."
                ),
                "success",
            )
            return redirect(url_for("provider.bank"), 303)
    return _page(provider, form=form)


@bp.post("/bank/refresh")
def bank_refresh():
    provider = _provider()
    row = current_fund_account(provider.id)
    if row is None:
        abort(404)
    fund_accounts.refresh_validation(current_user, row.id)
    if is_fragment_request():
        return _page(provider, block="status")
    return redirect(url_for("provider.bank"), 303)


@bp.post("/bank/pan")
def bank_pan():
    """The provider's own PAN, while none is on file; refused with why once one is (the
    page then shows it)."""
    provider = _provider()
    form = PanForm()
    if form.validate_on_submit():
        try:
            enter_own_pan(current_user, form.pan.data, form.confirm_pan.data)
        except ValidationError as exc:
            db.session.rollback()
            apply_errors(form, exc.errors)
            provider = _provider()  # as it is now (a PAN the clinic added meanwhile)
        except NotFound:
            abort(404)
        else:
            flash(N_("PAN saved. The clinic reports the TDS on your payouts under it."), "success")
            return redirect(url_for("provider.bank"), 303)
    return _page(provider, pan_form=form)
