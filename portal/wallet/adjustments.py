"""Manual wallet adjustments (POLICY.md "Wallet and manual adjustments"): an administrator
credits or debits a patient's wallet with a note for the audit trail and a reason the
patient sees. Above the threshold (counting the same admin's adjustments to the same
wallet in the last 24 hours, so splitting does not avoid it) it waits for a different
administrator. A debit never takes the balance below zero: checked when asked and again,
under the wallet's row lock, when applied. Each use case is one unit of work. A cash
pay-out at the desk (``portal.wallet.cash``) and a pay-out by bank transfer
(``portal.wallet.bank``) are adjustments of their own kinds, made by the same ``request``
and decided by the same approve / reject; only their posting's other account differs
(``POSTED``)."""

from datetime import timedelta

import sqlalchemy as sa

from portal import events
from portal.accounts.models import ADMIN, PATIENT, User
from portal.accounts.service import NotFound, PermissionDenied, ValidationError
from portal.audit.service import record
from portal.config import policy
from portal.db import unit_of_work, utcnow
from portal.domain.rates import format_inr
from portal.domain.states import ADJUSTMENT, AdjustmentStatus
from portal.extensions import db
from portal.ledger import accounts as chart
from portal.ledger import service as ledger
from portal.ledger.models import LedgerAccount
from portal.wallet.models import BANK_PAYOUT, CASH_PAYOUT, KINDS, MANUAL, PAYOUTS, WalletAdjustment

# POLICY.md's messages, word for word.
TOKEN_MAX = 64  # the form's one-time token (request_token's width)
MSG_ADMIN_ONLY = "Only administrators can create manual adjustments"
MSG_NOTE = "Detailed note required for audit trail (at least {n} characters)."
MSG_APPROVAL = "Large adjustments require additional approval"
MSG_INSUFFICIENT = "Insufficient wallet balance for negative adjustment"
# Where POLICY.md is silent.
MSG_SECOND_ADMIN = "A different administrator must approve this adjustment"
MSG_DECIDED = "This adjustment has already been decided"
MSG_AMOUNT = "Enter an amount above ₹0."
MSG_TOO_LARGE = "That amount is too large."
MSG_DIRECTION = "Choose credit or debit."
MSG_REASON = "Enter the reason the patient will see in the wallet history."
MSG_REASON_LONG = "Keep the reason the patient sees to 200 characters."
MSG_NOTE_LONG = "Keep the note to 2,000 characters."
MSG_NOT_PATIENT = "Only a patient account has a wallet."
MSG_CLOSED = (
    "This patient closed their account: their wallet cannot be credited (no one can spend "
    "it or be told of it). A debit, to record money paid out to them, is still allowed."
)

CREDIT, DEBIT = "credit", "debit"
DIRECTIONS = (CREDIT, DEBIT)
WINDOW = timedelta(hours=24)
MAX_AMOUNT = 10**12  # paise (₹1,000 crore): beyond it is a typing slip, not an adjustment
LEDGER_KIND = "wallet_adjustment"
AUDIT_TYPE = "wallet_adjustment"
CASH_LEDGER_KIND = "wallet_cash_payout"
BANK_LEDGER_KIND = "wallet_bank_payout"
# Each kind's other side of the wallet's posting, and the posting's kind: a manual
# adjustment moves the clinic's wallet-credit expense; a cash pay-out the desk's cash,
# which left it (review finding: booked as a manual debit, ``cash_desk`` kept it); a bank
# transfer the clinic's bank account, which it left.
POSTED = {
    MANUAL: (chart.WALLET_ADJUSTMENTS, LEDGER_KIND),
    CASH_PAYOUT: (chart.CASH_DESK, CASH_LEDGER_KIND),
    BANK_PAYOUT: (chart.BANK, BANK_LEDGER_KIND),
}
MSG_MORE_THAN_BALANCE = "That is more than the wallet holds: pay out at most its balance."
# A debit the balance does not cover, in each kind's words.
SHORT = {
    MANUAL: MSG_INSUFFICIENT,
    CASH_PAYOUT: MSG_MORE_THAN_BALANCE,
    BANK_PAYOUT: MSG_MORE_THAN_BALANCE,
}


class AdjustmentError(ValidationError):
    """A refused adjustment: ``errors`` maps the form's field names to messages."""


def require_admin(actor, message=MSG_ADMIN_ONLY):
    if getattr(actor, "role", None) != ADMIN:
        raise PermissionDenied(message)


def check_request(direction, amount, note, public_reason):
    """Every message for the request's fields at once (``{}``: all fine). Pure."""
    errors = {}
    if direction not in DIRECTIONS:
        errors["direction"] = MSG_DIRECTION
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        errors["amount"] = MSG_AMOUNT
    elif amount > MAX_AMOUNT:
        errors["amount"] = MSG_TOO_LARGE
    note = (note or "").strip()
    minimum = policy().note_min_length
    if len(note) < minimum:
        errors["note"] = MSG_NOTE.format(n=minimum)
    elif len(note) > 2000:
        errors["note"] = MSG_NOTE_LONG
    reason = (public_reason or "").strip()
    if not reason:
        errors["public_reason"] = MSG_REASON
    elif len(reason) > 200:
        errors["public_reason"] = MSG_REASON_LONG
    return errors


def needs_approval(window_total, pol=None):
    """|amounts| in the window above the threshold wait for a second administrator."""
    return window_total > (pol or policy()).adjustment_approval_threshold


def lock_wallet(patient_id):
    """The patient's wallet account, row-locked (``SELECT … FOR UPDATE`` on PostgreSQL;
    SQLite serialises writers): adjustments to one wallet run one after another, so the
    24-hour window and the balance are read with nothing changing them underneath."""
    code = chart.patient_wallet(patient_id)
    account = ledger.ensure_account(code)
    db.session.execute(
        sa.select(LedgerAccount.id).where(LedgerAccount.id == account.id).with_for_update()
    )
    return code


# The adjustments that moved or may move money (a rejected one moved nothing).
COUNTED = (AdjustmentStatus.APPLIED, AdjustmentStatus.PENDING_APPROVAL)


def window_total(admin_id, patient_id, until, *, statuses=COUNTED, exclude_id=None):
    """|amounts| of this admin's adjustments to this wallet made in the 24 hours up to
    ``until`` (inclusive), in ``statuses``, ``exclude_id`` left out: the one sum the
    approval rule (when an adjustment is asked) and its reason (what of it still waits)
    both read. The upper bound is new to the rule (it had none) and changes nothing there:
    ``until`` is now, under the wallet's lock, so no adjustment of the window is later."""
    query = sa.select(sa.func.coalesce(sa.func.sum(sa.func.abs(WalletAdjustment.amount)), 0)).where(
        WalletAdjustment.created_by_id == admin_id,
        WalletAdjustment.patient_id == patient_id,
        WalletAdjustment.created_at > until - WINDOW,
        WalletAdjustment.created_at <= until,
        WalletAdjustment.status.in_(statuses),
    )
    if exclude_id is not None:
        query = query.where(WalletAdjustment.id != exclude_id)
    return int(db.session.scalar(query) or 0)


def approval_reason(adjustment):
    """Why ``adjustment`` waits for a second administrator, in figures: what the 24-hour
    window counted (its total, what of it still waits) and the threshold. The page said
    only ``MSG_APPROVAL``."""
    waiting = window_total(
        adjustment.created_by_id,
        adjustment.patient_id,
        adjustment.created_at,
        statuses=(AdjustmentStatus.PENDING_APPROVAL,),
        exclude_id=adjustment.id,
    )
    return approval_text(adjustment.window_total, waiting, policy())


def approval_text(window_total, waiting, pol):
    """The words of ``approval_reason`` (plain: testable without a database)."""
    text = f"{format_inr(window_total)} credited or debited to this patient by you in 24 hours"
    if waiting:
        text += f", including {format_inr(waiting)} still waiting for approval"
    threshold = format_inr(pol.adjustment_approval_threshold)
    return f"{text}; above {threshold} a second administrator must approve it."


def create_adjustment(
    admin, patient_id, direction, amount, note, public_reason, *, token=None, now=None
):
    """Credit or debit ``amount`` paise (> 0) on the patient's wallet. Returns the
    adjustment: APPLIED, or PENDING_APPROVAL (tell the person ``MSG_APPROVAL``).
    ``token``: the form's one-time token; the same token again returns the first one."""
    require_admin(admin)
    errors = check_request(direction, amount, note, public_reason)
    if errors:
        raise AdjustmentError(errors)
    signed = amount if direction == CREDIT else -amount
    return request(admin, patient_id, signed, note, public_reason, token=token, now=now)


def request(
    admin,
    patient_id,
    signed,
    note,
    public_reason,
    *,
    kind=MANUAL,
    receipt_no=None,
    token=None,
    now=None,
    check=None,
):
    """The maker's half of every kind of adjustment (its fields already checked): one unit
    of work that locks the patient and the wallet, answers a token seen before with its
    adjustment, runs the kind's own ``check`` (no arguments; raises ``AdjustmentError``:
    a bank transfer's UTR recorded once), refuses a debit the balance does not cover,
    counts the 24-hour window and either applies the adjustment or leaves it waiting for a
    second administrator."""
    require_admin(admin)
    if not isinstance(token, str) or len(token) > TOKEN_MAX:
        token = None  # not a token the form made (tampered): no double-submit guard
    with unit_of_work():
        # Locked: a closure (which locks the row too) and a credit run one after the other.
        patient = db.session.get(User, patient_id, with_for_update=True)
        if patient is None:
            raise NotFound("patient")
        if patient.role != PATIENT:
            raise AdjustmentError({"form": MSG_NOT_PATIENT})
        if signed > 0 and patient.is_closed:
            raise AdjustmentError({"form": MSG_CLOSED})
        code = lock_wallet(patient.id)
        if token:
            earlier = db.session.scalar(
                sa.select(WalletAdjustment).where(
                    WalletAdjustment.created_by_id == admin.id,
                    WalletAdjustment.request_token == token,
                )
            )
            if earlier is not None:
                return earlier
        if check is not None:
            check()  # under the wallet's lock: two requests for one wallet, one at a time
        now = now or utcnow()
        if signed < 0 and ledger.balance(code) + signed < 0:
            raise AdjustmentError({"amount": SHORT[kind]})
        total = window_total(admin.id, patient.id, now) + abs(signed)
        adjustment = WalletAdjustment(
            patient_id=patient.id,
            created_by_id=admin.id,
            kind=kind,
            amount=signed,
            note=note.strip(),
            public_reason=public_reason.strip(),
            receipt_no=receipt_no,
            status=AdjustmentStatus.PENDING_APPROVAL,
            window_total=total,
            needs_approval=needs_approval(total),
            request_token=token or None,
            created_at=now,
        )
        db.session.add(adjustment)
        db.session.flush()
        if adjustment.needs_approval:
            record(
                admin,
                _action(adjustment, "requested"),
                AUDIT_TYPE,
                adjustment.id,
                after=_facts(adjustment),
            )
            events.wallet_adjustment_requested.send("wallet", adjustment_id=adjustment.id)
        else:
            _apply(adjustment, now)
            record(
                admin,
                _action(adjustment, "applied"),
                AUDIT_TYPE,
                adjustment.id,
                before={"balance": adjustment.balance_before},
                after=_facts(adjustment),
            )
    return adjustment


def audit_action(kind, step):
    """The audit action: ``wallet.adjustment_<step>``, ``wallet.cash_payout_<step>``,
    ``wallet.bank_payout_<step>``."""
    return f"wallet.{kind if kind in PAYOUTS else 'adjustment'}_{step}"


def _action(adjustment, step):
    return audit_action(adjustment.kind, step)


# The steps of an adjustment's maker-checker trail, of every kind: its request and its
# decision (not "applied": one below the limit has no trail). The approvals queue's source
# names them (``approvals.sources``), for the audit report's "approval steps only".
APPROVAL_STEPS = tuple(
    audit_action(kind, step) for kind in KINDS for step in ("requested", "approved", "rejected")
)


def _facts(adjustment):
    return {
        "patient_id": adjustment.patient_id,
        "kind": adjustment.kind,
        "receipt_no": adjustment.receipt_no,
        "amount": adjustment.amount,
        "note": adjustment.note,
        "public_reason": adjustment.public_reason,
        "window_total": adjustment.window_total,
        "status": str(adjustment.status),
        "balance": adjustment.balance_after,
    }


def _apply(adjustment, now):
    """Post the adjustment under the wallet's lock: the balance is read again here, so
    a debit approved later never takes it below zero."""
    code = lock_wallet(adjustment.patient_id)
    before = ledger.balance(code)
    after = before + adjustment.amount
    short = SHORT[adjustment.kind]
    if after < 0:
        raise AdjustmentError({"amount": short})
    size = adjustment.magnitude
    other, kind = POSTED[adjustment.kind]
    if adjustment.is_credit:
        lines = [ledger.debit(other, size), ledger.credit(code, size)]
    else:
        lines = [ledger.debit(code, size), ledger.credit(other, size)]
    try:
        txn = ledger.post(
            kind,
            lines,
            reference=(AUDIT_TYPE, adjustment.id),
            idempotency_key=f"adjustment:{adjustment.id}",
            memo=adjustment.public_reason,
            require_non_negative=() if adjustment.is_credit else (code,),
        )
    except ledger.InsufficientBalance:
        raise AdjustmentError({"amount": short}) from None
    adjustment.balance_before, adjustment.balance_after = before, after
    adjustment.applied_at = now
    adjustment.ledger_transaction_id = txn.id
    ADJUSTMENT.move(adjustment, AdjustmentStatus.APPLIED)
    events.wallet_adjusted.send(
        "wallet", adjustment_id=adjustment.id, patient_id=adjustment.patient_id
    )


def _decide(admin, adjustment_id):
    require_admin(admin, "Only administrators can do this.")
    query = (
        sa.select(WalletAdjustment)
        .where(WalletAdjustment.id == adjustment_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    adjustment = db.session.scalar(query)
    if adjustment is None:
        raise NotFound("adjustment")
    if adjustment.status != AdjustmentStatus.PENDING_APPROVAL:
        raise AdjustmentError({"form": MSG_DECIDED})
    if adjustment.created_by_id == admin.id:
        raise AdjustmentError({"form": MSG_SECOND_ADMIN})
    return adjustment


def approve_adjustment(admin, adjustment_id, note=None, now=None):
    """A different administrator approves: the adjustment is applied now (a debit the
    balance no longer covers is refused and stays waiting)."""
    with unit_of_work():
        adjustment = _decide(admin, adjustment_id)
        if adjustment.is_credit and adjustment.patient.is_closed:
            raise AdjustmentError({"form": MSG_CLOSED})
        now = now or utcnow()
        _apply(adjustment, now)
        adjustment.decided_by_id, adjustment.decided_at = admin.id, now
        adjustment.decision_note = (note or "").strip() or None
        record(
            admin,
            _action(adjustment, "approved"),
            AUDIT_TYPE,
            adjustment.id,
            before={"balance": adjustment.balance_before},
            after={**_facts(adjustment), "decision_note": adjustment.decision_note},
        )
    return adjustment


def reject_adjustment(admin, adjustment_id, note=None, now=None):
    with unit_of_work():
        adjustment = _decide(admin, adjustment_id)
        ADJUSTMENT.move(adjustment, AdjustmentStatus.REJECTED)
        adjustment.decided_by_id, adjustment.decided_at = admin.id, now or utcnow()
        adjustment.decision_note = (note or "").strip() or None
        record(
            admin,
            _action(adjustment, "rejected"),
            AUDIT_TYPE,
            adjustment.id,
            after={"status": str(adjustment.status), "decision_note": adjustment.decision_note},
        )
    return adjustment
