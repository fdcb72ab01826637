"""Onboarding: a provider's bank account (IFSC + account number) or UPI id becomes a
RazorpayX contact, fund account and fund account validation. Payouts are enabled only when
the validation says the account is active (webhook ``fund_account.validation.completed``,
or polling). Changing the account makes a new row that must validate again; until it
does, payouts go to the last validated account (``common.payout_fund_account``). Only
masked details are stored (IFSC, last 4 digits, a masked VPA). Statuses move only through
``FUND_ACCOUNT`` (PENDING → VALIDATED | FAILED)."""

from __future__ import annotations

import re
from contextlib import contextmanager
from typing import NamedTuple

import sqlalchemy as sa

from portal.accounts.models import ADMIN, PROVIDER
from portal.audit.service import record
from portal.catalog.models import Provider
from portal.db import clinic_today, unit_of_work, utcnow
from portal.domain.bank_details import account_last4, mask_vpa, masked_in_text
from portal.domain.states import FUND_ACCOUNT, FundAccountStatus
from portal.extensions import db
from portal.gateway import errors as gw_errors
from portal.i18n import N_
from portal.payouts import models as m
from portal.payouts.alerts import (
    FUND_ACCOUNT_REFUSED,
    HIGH,
    MEDIUM,
    raise_payout_alert,
    tell_validation,
)
from portal.payouts.common import lock_fund_account, lock_provider
from portal.payouts.gateway import gateway

IFSC_RE = re.compile(r"^[A-Z]{4}0[A-Z0-9]{6}$")
ACCOUNT_RE = re.compile(r"^[0-9]{9,18}$")
VPA_RE = re.compile(r"^[A-Za-z0-9.\-_]{2,256}@[A-Za-z]{2,64}$")
# The account holder's name by RazorpayX's documented rule for a bank account's name:
# a–z, A–Z, 0–9, space and ’ - _ / ( ) , . only (the typed ' too: its documents print ’),
# not ending in one of those signs but "." (review finding: a name in Devanagari or with
# "&" passed our check and went to RazorpayX and back for a generic refusal). The length
# is ours, 3–50 (RazorpayX takes 120).
NAME_CHARACTERS_RE = re.compile(r"[A-Za-z0-9 '’\-_/(),.]+")
NAME_END_RE = re.compile(r"[A-Za-z0-9.]")
NAME_MIN, NAME_MAX = 3, 50
# The longest UPI id taken (decision): the pattern, as RazorpayX's, admits 256 + 64
# characters, but UPI apps give a mobile number or a short name and a handle (well under
# 50), and the masked id (as long as the id, ``mask_vpa``) is kept in ``vpa_masked``, 120
# characters: a longer one passed every check and failed the save after RazorpayX had
# made the contact, fund account and ₹1 validation (review finding). MSG_VPA_LONG says it.
VPA_MAX = 100

MSG_IFSC = N_("Enter a valid IFSC: 4 letters, 0, then 6 letters or digits (e.g. HDFC0001234).")
MSG_ACCOUNT = N_("Enter the account number: 9 to 18 digits.")
MSG_ACCOUNT_MATCH = N_("The account numbers do not match.")
MSG_NAME = N_("Enter the account holder's name (3 to 50 characters).")
MSG_NAME_CHARACTERS = N_(
    "Use English letters (A–Z), digits, spaces and . - ' ( ) / , _ only, as on your bank account."
)
MSG_NAME_END = N_(
    "End the name with a letter, a digit or a full stop (.), as on your bank account."
)
MSG_VPA = N_("Enter a UPI id like name@bank.")
MSG_VPA_LONG = N_("Enter a UPI id of at most 100 characters.")
MSG_GATEWAY = N_("RazorpayX could not be reached. Nothing was changed; please try again.")
MSG_REFUSED = N_(
    "RazorpayX did not take the account, for a reason on the clinic's side, not in your "
    "details. Nothing was changed; the clinic has been told. Please try again later."
)
# RazorpayX's fields of a fund account that are the form's own, by the account's kind
# (a dotted field, ``vpa.address``, by its last part): its refusal of one is said beside
# the field. Anything else it refuses (the API key, the clinic's RazorpayX account, the
# contact, the validation) is nothing the provider can fix: MSG_REFUSED and an admin alert
# (review finding: a rotated key's "The api key provided is invalid" was said beside the
# doctor's account number, in English on a Hindi page).
FORM_FIELDS = {
    m.BANK_ACCOUNT: {"ifsc": "ifsc", "account_number": "account_number", "name": "holder_name"},
    m.VPA: {"vpa": "vpa", "address": "vpa"},
}
# What the form says beside a field RazorpayX refused: our own words, in the reader's
# language, never RazorpayX's English description (review finding: "Invalid IFSC Code in
# Bank Account" on the doctor's Hindi page). Its description goes to the audit
# (``fund_account.field_refused``), for the clinic. What RazorpayX checks beyond our own
# rules: the IFSC against the bank network's directory, a UPI id's form and anything it
# adds to its documented rules (the name's and the account number's are within ours).
MSG_IFSC_REFUSED = N_(
    "The bank network does not know this IFSC. Check it on your cheque book or passbook "
    "and enter it again."
)
MSG_ACCOUNT_REFUSED = N_(
    "This account number was not accepted for payouts. Check it and enter it again."
)
MSG_NAME_REFUSED = N_(
    "This name was not accepted for payouts. Enter it as your bank has it, in English "
    "letters (A–Z)."
)
MSG_VPA_REFUSED = N_(
    "This UPI id was not accepted for payouts. Check it in your UPI app and enter it again."
)
FIELD_REFUSED = {
    "ifsc": MSG_IFSC_REFUSED,
    "account_number": MSG_ACCOUNT_REFUSED,
    "name": MSG_NAME_REFUSED,
    "vpa": MSG_VPA_REFUSED,
    "address": MSG_VPA_REFUSED,
}
# Why a validation failed: stored as the catalogue's English (status_reason), so the bank
# page says it in the doctor's language (`t`) and a page in English reads it as is.
MSG_NOT_ACTIVE = N_("The bank says this account is not active.")
MSG_NOT_VALIDATED = N_("The account could not be validated. Check the details.")
# What the provider's pages say of a failed validation: what is wrong, then what to do, once
# each (review finding: the stored "… Check the details." beside the page's own "Enter the
# details again below.", and "failed validation: … could not be validated"). RazorpayX's
# "failed" is the ₹1 check not going through: the details are the likely cause.
MSG_BANK_UNCHECKED = N_("The ₹1 check to this account did not go through.")
MSG_VPA_UNCHECKED = N_("The ₹1 check to this UPI id did not go through.")
MSG_CHECK_BANK = N_("Check the IFSC and the account number, and enter them again.")
MSG_CHECK_VPA = N_("Check the UPI id and enter it again.")
MSG_ACTIVE_BANK = N_("Enter an account that is active.")
MSG_ACTIVE_VPA = N_("Enter a UPI id that is active.")


class Failure(NamedTuple):
    """Why a fund account failed validation and what the provider can do about it: two
    catalogue messages (or RazorpayX's own words as stored, for ``problem``), each said by
    the page in the reader's language (``t``)."""

    problem: str
    remedy: str


def failure(row):
    """:class:`Failure` of a FAILED fund account, by its stored reason and its kind."""
    vpa = row.kind == m.VPA
    if row.status_reason == MSG_NOT_ACTIVE:
        return Failure(MSG_NOT_ACTIVE, MSG_ACTIVE_VPA if vpa else MSG_ACTIVE_BANK)
    remedy = MSG_CHECK_VPA if vpa else MSG_CHECK_BANK
    if row.status_reason and row.status_reason != MSG_NOT_VALIDATED:
        return Failure(row.status_reason, remedy)  # words of RazorpayX's own, as stored
    return Failure(MSG_VPA_UNCHECKED if vpa else MSG_BANK_UNCHECKED, remedy)


class FundAccountError(Exception):
    def __init__(self, errors):
        self.errors = dict(errors)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.errors.items()))


class NotFound(Exception):
    pass


def razorpayx_words(error, sent=None):
    """RazorpayX's answer as the audit and alerts keep it: the account number or UPI id
    sent (``sent``, the fund account's details) masked, and anything shaped like one
    (review rv_audit: "Invalid account number 50100012345678" was kept in full, though
    only the masked form is ever stored)."""
    sent = sent or {}
    return masked_in_text(
        str(error),
        numbers=[(sent.get("bank_account") or {}).get("account_number")],
        vpas=[sent.get("vpa")],
    )


class Refused(Exception):
    """RazorpayX refused a request of the save for no field of the form; ``step`` names
    the request (contact, fund account, validation); ``words``, its answer as kept
    (``razorpayx_words`` of what was sent)."""

    def __init__(self, error, step, sent=None):
        self.error, self.step, self.words = error, step, razorpayx_words(error, sent)
        super().__init__(self.words)


class FieldRefused(Exception):
    """RazorpayX refused the fund account for one of the form's fields (``field``, the
    form's name; ``error``, RazorpayX's answer; ``words``, as kept)."""

    def __init__(self, error, field, sent=None):
        self.error, self.field, self.words = error, field, razorpayx_words(error, sent)
        super().__init__(self.words)


def _provider_for(actor, provider_id, *, lock=False):
    provider = lock_provider(provider_id) if lock else db.session.get(Provider, provider_id)
    if provider is None:
        raise NotFound("provider")
    role = getattr(actor, "role", None)
    if role == ADMIN or (role == PROVIDER and provider.user_id == actor.id):
        return provider
    raise NotFound("provider")


def _clean_name(name, errors):
    """The name with its spaces collapsed; one message beside it for the first rule it
    breaks: the length, the characters, the last character."""
    name = " ".join((name or "").split())
    if not NAME_MIN <= len(name) <= NAME_MAX:
        errors["holder_name"] = MSG_NAME
    elif not NAME_CHARACTERS_RE.fullmatch(name):
        errors["holder_name"] = MSG_NAME_CHARACTERS
    elif not NAME_END_RE.fullmatch(name[-1]):
        errors["holder_name"] = MSG_NAME_END
    return name


def check_bank(holder_name, ifsc, account_number, confirm_number=None):
    errors = {}
    name = _clean_name(holder_name, errors)
    ifsc = (ifsc or "").strip().upper()
    number = re.sub(r"\s", "", account_number or "")
    if not IFSC_RE.match(ifsc):
        errors["ifsc"] = MSG_IFSC
    if not ACCOUNT_RE.match(number):
        errors["account_number"] = MSG_ACCOUNT
    elif confirm_number is not None and re.sub(r"\s", "", confirm_number) != number:
        errors["confirm_account_number"] = MSG_ACCOUNT_MATCH
    if errors:
        raise FundAccountError(errors)
    return name, ifsc, number


def check_vpa(vpa):
    vpa = (vpa or "").strip()
    if len(vpa) > VPA_MAX:
        raise FundAccountError({"vpa": MSG_VPA_LONG})
    if not VPA_RE.match(vpa):
        raise FundAccountError({"vpa": MSG_VPA})
    return vpa


def _contact_name(provider):
    name = " ".join((provider.display_name or "").split())[:50]
    return name if len(name) >= 3 else f"Provider {provider.id}"


def _stored_contact_id(provider):
    """The provider's RazorpayX contact, as their newest account at RazorpayX names it."""
    return db.session.scalar(
        sa.select(m.FundAccount.razorpay_contact_id)
        .where(
            m.FundAccount.provider_id == provider.id, m.FundAccount.razorpay_contact_id.is_not(None)
        )
        .order_by(m.FundAccount.id.desc())
        .limit(1)
    )


def _new_contact_id(provider):
    contact = _asked(
        "contact",
        gateway().create_contact,
        _contact_name(provider),
        email=getattr(provider.user, "email", None),
        type="vendor",
        reference_id=f"provider-{provider.id}",
        notes={"provider_id": str(provider.id)},
    )
    return contact["id"]


def _asked(step, call, *args, **kwargs):
    """RazorpayX's answer to one request of a save; its refusal a :class:`Refused` naming
    the request."""
    try:
        return call(*args, **kwargs)
    except gw_errors.BadRequest as exc:
        raise Refused(exc, step) from None


def _razorpayx_field(error):
    """The field RazorpayX's refusal names, a dotted one by its last part."""
    return (error.field or "").rsplit(".", 1)[-1]


def _form_field(kind, error):
    """The form's field RazorpayX's refusal of a fund account names, or None."""
    return FORM_FIELDS[kind].get(_razorpayx_field(error))


def _fund_account(kind, contact_id, fund_account_kwargs):
    try:
        return gateway().create_fund_account(contact_id, **fund_account_kwargs)
    except gw_errors.BadRequest as exc:
        field = _form_field(kind, exc)
        if field is None:
            raise Refused(exc, "fund account", fund_account_kwargs) from None
        raise FieldRefused(exc, field, fund_account_kwargs) from None


def _contact_gone(refused):
    """RazorpayX does not have the contact the fund account was asked under (the only id
    of that request)."""
    error = refused.error
    return isinstance(error, gw_errors.NotFound) and error.field in (None, "contact_id")


def _at_razorpayx(actor, provider, kind, fund_account_kwargs):
    """The contact (the stored one, else a new one), the fund account and its validation
    at RazorpayX: ``(contact id, account, validation)``.

    A stored contact RazorpayX no longer has (the clinic moved from test to live keys, or
    to another RazorpayX account: contacts are per account and mode) is made anew and the
    fund account asked for once more (review finding: it was reused for ever, so every
    later save was refused and the provider could never change their account); audited
    ``fund_account.contact_made_anew``."""
    stored = _stored_contact_id(provider)
    contact_id = stored or _new_contact_id(provider)
    try:
        account = _fund_account(kind, contact_id, fund_account_kwargs)
    except Refused as refused:
        if not (stored and _contact_gone(refused)):
            raise
        contact_id = _new_contact_id(provider)
        record(
            actor,
            "fund_account.contact_made_anew",
            "provider",
            provider.id,
            before={"razorpay_contact_id": stored, "refused": refused.words[:255]},
            after={"razorpay_contact_id": contact_id},
        )
        account = _fund_account(kind, contact_id, fund_account_kwargs)
    validation = _asked(
        "validation",
        gateway().validate_fund_account,
        account["id"],
        notes={"provider_id": str(provider.id)},
    )
    return contact_id, account, validation


def _register(actor, provider, row, fund_account_kwargs):
    """Create contact, fund account and validation at RazorpayX, then keep the row as the
    provider's current account (the previous one stops being current)."""
    try:
        contact_id, account, validation = _at_razorpayx(
            actor, provider, row.kind, fund_account_kwargs
        )
    except gw_errors.GatewayError:
        raise FundAccountError({"form": MSG_GATEWAY}) from None
    previous = db.session.scalars(
        sa.select(m.FundAccount).where(
            m.FundAccount.provider_id == provider.id, m.FundAccount.current.is_(True)
        )
    ).all()
    for old in previous:
        old.current = False
    row.provider_id = provider.id
    row.razorpay_contact_id = contact_id
    row.razorpay_fund_account_id = account["id"]
    row.razorpay_validation_id = validation["id"]
    row.current = True
    db.session.add(row)
    db.session.flush()
    record(
        actor,
        "fund_account.created",
        "fund_account",
        row.id,
        before={"previous": [o.id for o in previous]},
        after={
            "provider_id": provider.id,
            "kind": row.kind,
            "masked": row.masked,
            "razorpay_fund_account_id": row.razorpay_fund_account_id,
            "validation_id": row.razorpay_validation_id,
        },
    )
    _apply_validation(row, validation)
    return row


@contextmanager
def _refusal_told(actor, provider_id, kind):
    """Around a save's unit of work, once the save is rolled back (each in a unit of work
    of its own, so it stays): RazorpayX's refusal for no field of the form is an admin
    alert and the form's MSG_REFUSED; its refusal of a field is our message beside the
    field (FIELD_REFUSED) and its words in the audit (the provider can fix it: no alert).
    Its words are kept masked (``razorpayx_words``)."""
    actor_id = getattr(actor, "id", None)  # read now: the rollback expires the user
    try:
        yield
    except Refused as refused:
        with unit_of_work():
            _alert_refusal(provider_id, kind, refused)
        raise FundAccountError({"form": MSG_REFUSED}) from None
    except FieldRefused as refused:
        with unit_of_work():
            record(
                actor_id,
                "fund_account.field_refused",
                "provider",
                provider_id,
                after={
                    "kind": kind,
                    "field": refused.error.field,
                    "refused": refused.words[:255],
                },
            )
        message = FIELD_REFUSED[_razorpayx_field(refused.error)]
        raise FundAccountError({refused.field: message}) from None


def _alert_refusal(provider_id, kind, refused):
    """HIGH for a refused API key (payouts are refused too), else MEDIUM; once a day per
    provider (the audit keeps every one)."""
    provider = db.session.get(Provider, provider_id)
    what = "UPI id" if kind == m.VPA else "bank account"
    key_refused = isinstance(refused.error, gw_errors.AuthenticationFailed)
    advice = (
        "RazorpayX refused the portal's API key: check RAZORPAY_KEY_ID and RAZORPAY_KEY_SECRET "
        "(rotated?). Payouts are refused too."
        if key_refused
        else "Nothing in the details they typed was named: check the RazorpayX account and "
        "the portal's RazorpayX settings."
    )
    raise_payout_alert(
        HIGH if key_refused else MEDIUM,
        f"RazorpayX refused {_contact_name(provider)}'s {what}",
        f"Provider {provider.id} ({_contact_name(provider)}) saved a {what} and RazorpayX "
        f"refused the {refused.step} request: {refused.words}. Nothing was saved; they were "
        f"asked to try again later. {advice}",
        kind=FUND_ACCOUNT_REFUSED,
        provider_id=provider.id,
        link="/admin/payouts/accounts",
        dedupe_key=f"{FUND_ACCOUNT_REFUSED}:{provider.id}:{clinic_today().isoformat()}",
    )


def save_bank_account(
    actor, provider_id, *, holder_name, ifsc, account_number, confirm_account_number=None
):
    with _refusal_told(actor, provider_id, m.BANK_ACCOUNT), unit_of_work():
        # Locked: a second save at once (a double-clicked Save) waits, then replaces this
        # one's account and reuses its contact, instead of making a second current account.
        provider = _provider_for(actor, provider_id, lock=True)
        name, ifsc, number = check_bank(holder_name, ifsc, account_number, confirm_account_number)
        row = m.FundAccount(
            kind=m.BANK_ACCOUNT,
            holder_name=name,
            ifsc=ifsc,
            account_last4=account_last4(number),
            status=FundAccountStatus.PENDING,
        )
        return _register(
            actor,
            provider,
            row,
            {"bank_account": {"name": name, "ifsc": ifsc, "account_number": number}},
        )


def save_vpa(actor, provider_id, *, vpa, holder_name=None):
    with _refusal_told(actor, provider_id, m.VPA), unit_of_work():
        provider = _provider_for(actor, provider_id, lock=True)  # as save_bank_account
        vpa = check_vpa(vpa)
        row = m.FundAccount(
            kind=m.VPA,
            holder_name=(holder_name or provider.display_name)[:120],
            vpa_masked=mask_vpa(vpa),
            status=FundAccountStatus.PENDING,
        )
        return _register(actor, provider, row, {"vpa": vpa})


# --- validation results -------------------------------------------------------------------


# A completed validation's word for an account that can be paid: "active" in the account
# validation entity, "valid" in the composite validation entity's sample (RazorpayX's two
# pages disagree; review rv_rzp). Anything else ("invalid", none) fails it.
GOOD_ACCOUNT = frozenset({"active", "valid"})


def _apply_validation(row, validation):
    """Apply a validation entity; only a PENDING account moves (a repeated or late event
    changes nothing). Returns True when the status changed."""
    if row.status != FundAccountStatus.PENDING or not isinstance(validation, dict):
        return False
    status = validation.get("status")
    # The documented entity names it `validation_results`; older samples say `results`.
    results = validation.get("validation_results") or validation.get("results") or {}
    if status == "completed":
        if results.get("account_status") in GOOD_ACCOUNT:
            FUND_ACCOUNT.move(row, FundAccountStatus.VALIDATED)
            row.validated_at = utcnow()
            row.registered_name = (results.get("registered_name") or "")[:120] or None
            row.status_reason = None
        else:
            FUND_ACCOUNT.move(row, FundAccountStatus.FAILED)
            row.status_reason = MSG_NOT_ACTIVE
    elif status == "failed":
        FUND_ACCOUNT.move(row, FundAccountStatus.FAILED)
        row.status_reason = MSG_NOT_VALIDATED
    else:
        return False
    record(
        None,
        f"fund_account.{row.status.lower()}",
        "fund_account",
        row.id,
        before={"status": FundAccountStatus.PENDING},
        after={
            "status": row.status,
            "reason": row.status_reason,
            "registered_name": row.registered_name,
        },
    )
    tell_validation(row)
    return True


def apply_validation_entity(validation):
    """From a webhook: find the row by validation id."""
    validation_id = (validation or {}).get("id")
    if not validation_id:
        return False
    with unit_of_work():
        row_id = db.session.scalar(
            sa.select(m.FundAccount.id).where(m.FundAccount.razorpay_validation_id == validation_id)
        )
        if row_id is None:
            return False
        # Locked and read again: a poll applying the same result at once waits, then finds
        # the account no longer PENDING (each wrote its move and audit row before).
        return _apply_validation(lock_fund_account(row_id), validation)


def refresh_validation(actor, fund_account_id):
    """Poll RazorpayX for a pending validation (the provider's "check again" button and
    the periodic poll)."""
    with unit_of_work():
        row = db.session.get(m.FundAccount, fund_account_id)
        if row is None:
            raise NotFound("fund account")
        if actor is not None:
            _provider_for(actor, row.provider_id)
        if row.status != FundAccountStatus.PENDING or not row.razorpay_validation_id:
            return row
        # Asked before the row is locked (no lock is held while RazorpayX answers), then
        # locked and checked again: the webhook may have applied the result meanwhile.
        try:
            validation = gateway().fetch_validation(row.razorpay_validation_id)
        except gw_errors.GatewayError:
            return row
        row = lock_fund_account(row.id)
        _apply_validation(row, validation)
        return row


def pending_validations(older_than_seconds=60, limit=200):
    cutoff = utcnow().timestamp() - older_than_seconds
    rows = db.session.scalars(
        sa.select(m.FundAccount)
        .where(m.FundAccount.status == FundAccountStatus.PENDING, m.FundAccount.current.is_(True))
        .order_by(m.FundAccount.id)
        .limit(limit)
    ).all()
    return [r.id for r in rows if r.created_at.timestamp() <= cutoff]
