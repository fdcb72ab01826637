"""The invariants the simulation checks after every step. Each is a small function that
returns a list of problems (empty when it holds), phrased so a failure explains itself.

``EVERY_STEP`` run after each step; ``AT_REST`` only once the system is quiet (no webhook,
job or gateway step in flight), where the portal must agree with the gateway."""

from collections import defaultdict

import sqlalchemy as sa

from portal.booking.models import IndividualBooking, Reschedule, SlotClaim
from portal.domain.states import PayoutStatus, RefundStatus
from portal.extensions import db
from portal.ledger import accounts as chart
from portal.ledger.check import SETTLEMENT_ADJUSTMENTS_KIND, SETTLEMENT_KIND, verify_ledger
from portal.ledger.models import LedgerAccount, LedgerEntry, LedgerTransaction
from portal.payments.models import Payment, PaymentAttempt
from portal.payouts.models import Payout
from portal.refunds.models import GATEWAY, Refund

LIVE_REFUND = (RefundStatus.PENDING, RefundStatus.PROCESSED)
LIVE_PAYOUT = (PayoutStatus.QUEUED, PayoutStatus.PROCESSING, PayoutStatus.PROCESSED)


def _balances(prefix):
    """{code: balance in the account's normal direction} for per-owner accounts."""
    rows = db.session.execute(
        sa.select(LedgerAccount.code, LedgerAccount.kind, sa.func.sum(LedgerEntry.amount))
        .join(LedgerEntry, LedgerEntry.account_id == LedgerAccount.id)
        .where(LedgerAccount.code.startswith(prefix + ":"))
        .group_by(LedgerAccount.code, LedgerAccount.kind)
    )
    return {code: int(raw) if kind in chart.DEBIT_NORMAL else -int(raw) for code, kind, raw in rows}


def balance(code):
    kind = chart.describe(code)[0]
    raw = db.session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(LedgerEntry.amount), 0))
        .join(LedgerAccount, LedgerEntry.account_id == LedgerAccount.id)
        .where(LedgerAccount.code == code)
    )
    return int(raw) if kind in chart.DEBIT_NORMAL else -int(raw)


def ledger_balances():
    """The ledger balances and is sound (portal.ledger.check.verify_ledger)."""
    return [f"ledger: {p}" for p in verify_ledger()]


# What may take a provider's payable below zero (POLICY.md: "Penalties and reversals reduce
# the payable; a payout never takes it below zero"): a penalty, and a reschedule fee's share
# given back when the booking is cancelled by the clinic after that share was paid out.
TAKEN_BACK = ("provider_penalty", "reschedule_fee_refund")


def _taken_back():
    """{payable code: what penalties and give-backs debited to it} (either may take a
    payable below zero: docs/ledger.md, the provider then owes us and payouts wait)."""
    rows = db.session.execute(
        sa.select(LedgerAccount.code, sa.func.sum(LedgerEntry.amount))
        .join(LedgerEntry, LedgerEntry.account_id == LedgerAccount.id)
        .join(LedgerTransaction, LedgerEntry.transaction_id == LedgerTransaction.id)
        .where(
            LedgerAccount.code.startswith(chart.PROVIDER_PAYABLE + ":"),
            LedgerTransaction.kind.in_(TAKEN_BACK),
        )
        .group_by(LedgerAccount.code)
    )
    return {code: int(total) for code, total in rows}


def _payouts_into_debt():
    """Payouts after which their payable was below zero: the allowance above is for what
    penalties and give-backs took, in any order, so a payout that overpaid by as much
    would pass it; each payout is checked against the balance it left."""
    rows = db.session.execute(
        sa.select(
            LedgerAccount.code, LedgerTransaction.id, LedgerTransaction.kind, LedgerEntry.amount
        )
        .join(LedgerEntry, LedgerEntry.account_id == LedgerAccount.id)
        .join(LedgerTransaction, LedgerEntry.transaction_id == LedgerTransaction.id)
        .where(LedgerAccount.code.startswith(chart.PROVIDER_PAYABLE + ":"))
        .order_by(LedgerTransaction.id)
    )
    left, problems = defaultdict(int), []
    for code, txn_id, kind, amount in rows:
        left[code] -= int(amount)  # a liability: credits (negative amounts) raise it
        if kind == "payout_initiated" and left[code] < 0:
            problems.append(f"payout posting {txn_id} left {code} at {left[code]} paise")
    return problems


def no_negative_balances():
    """No patient wallet below zero; no provider payable below zero but for what penalties
    and give-backs took (``TAKEN_BACK``: a payout, a refund or a return never takes it
    there)."""
    problems = []
    for code, value in sorted(_balances(chart.PATIENT_WALLET).items()):
        if value < 0:
            problems.append(f"{code} is below zero: {value} paise")
    taken = _taken_back()
    for code, value in sorted(_balances(chart.PROVIDER_PAYABLE).items()):
        if value < 0 and value < -taken.get(code, 0):
            problems.append(
                f"{code} is below zero: {value} paise (penalties and give-backs "
                f"{taken.get(code, 0)})"
            )
    problems += _payouts_into_debt()
    return problems


def refunds_within_captured():
    """Per item, live refunds of its price never exceed what was paid for it; per
    reschedule, refunds of its fee never exceed the fee; per gateway payment, live gateway
    refunds never exceed what was captured."""
    problems = []
    of_item, of_fee = defaultdict(int), defaultdict(int)
    for booking_id, reschedule_id, amount in db.session.execute(
        sa.select(Refund.booking_id, Refund.reschedule_id, Refund.amount).where(
            Refund.status.in_(LIVE_REFUND)
        )
    ):
        if reschedule_id is None:
            of_item[booking_id] += int(amount)
        else:
            of_fee[reschedule_id] += int(amount)
    items = db.session.execute(
        sa.select(
            IndividualBooking.id, IndividualBooking.paid_amount, IndividualBooking.refunded_amount
        )
    ).all()
    for item_id, paid, _refunded in items:
        if of_item[item_id] > paid:
            problems.append(f"item {item_id}: live refunds {of_item[item_id]} > paid {paid}")
    fees = dict(db.session.execute(sa.select(Reschedule.id, Reschedule.total)).all())
    for reschedule_id, amount in sorted(of_fee.items()):
        if amount > fees.get(reschedule_id, 0):
            problems.append(
                f"reschedule {reschedule_id}: fee refunds {amount} > fee {fees.get(reschedule_id)}"
            )
    captured = defaultdict(int)
    for pay_id, amount in db.session.execute(
        sa.select(Payment.razorpay_payment_id, Payment.captured_amount).where(
            Payment.razorpay_payment_id.is_not(None), Payment.captured_amount.is_not(None)
        )
    ):
        captured[pay_id] += int(amount)
    for pay_id, amount in db.session.execute(
        sa.select(Reschedule.razorpay_payment_id, Reschedule.total).where(
            Reschedule.razorpay_payment_id.is_not(None)
        )
    ):
        captured[pay_id] += int(amount)
    out = defaultdict(int)
    for pay_id, amount in db.session.execute(
        sa.select(Refund.razorpay_payment_id, Refund.amount).where(
            Refund.destination == GATEWAY,
            Refund.status.in_(LIVE_REFUND),
            Refund.razorpay_payment_id.is_not(None),
        )
    ):
        out[pay_id] += int(amount)
    for pay_id, amount in sorted(out.items()):
        if amount > captured.get(pay_id, 0):
            problems.append(
                f"gateway payment {pay_id}: refunds {amount} > captured {captured.get(pay_id, 0)}"
            )
    return problems


def payouts_within_earnings():
    """Per provider, live payouts (gross) never exceed the earnings credited to the payable
    (a penalty after a payout is a debt the next earnings pay, not an overpayment)."""
    problems = []
    credited = defaultdict(int)
    rows = db.session.execute(
        sa.select(LedgerAccount.code, LedgerTransaction.kind, LedgerEntry.amount)
        .join(LedgerEntry, LedgerEntry.account_id == LedgerAccount.id)
        .join(LedgerTransaction, LedgerEntry.transaction_id == LedgerTransaction.id)
        .where(LedgerAccount.code.startswith(chart.PROVIDER_PAYABLE + ":"))
    )
    for code, kind, amount in rows:
        if kind.startswith("payout") or int(amount) > 0:
            continue  # payouts and their returns are what is checked; debits are penalties
        credited[int(code.partition(":")[2])] -= int(amount)  # a credit: negative amount
    paid = defaultdict(int)
    for provider_id, gross in db.session.execute(
        sa.select(Payout.provider_id, Payout.gross).where(Payout.status.in_(LIVE_PAYOUT))
    ):
        paid[provider_id] += int(gross)
    for provider_id, gross in sorted(paid.items()):
        if gross > credited[provider_id]:
            problems.append(
                f"provider {provider_id}: live payouts {gross} > net earnings {credited[provider_id]}"
            )
    return problems


def captured_money_placed():
    """Every gateway payment the portal recorded as captured is on a confirmed visit (its
    confirmation or reschedule fee posted) or was put in the wallet (unapplied)."""
    problems = []
    keys = set(db.session.scalars(sa.select(LedgerTransaction.idempotency_key)).all())
    payments = db.session.scalars(
        sa.select(Payment).where(
            Payment.razorpay_payment_id.is_not(None), Payment.captured_amount.is_not(None)
        )
    ).all()
    for r in db.session.scalars(
        sa.select(Reschedule).where(Reschedule.razorpay_payment_id.is_not(None))
    ):
        placed = f"reschedule:{r.id}" in keys or (
            f"reschedule_unapplied:{r.id}:{r.razorpay_payment_id}" in keys
        )
        if not placed:
            problems.append(
                f"reschedule {r.id} fee {r.razorpay_payment_id} captured but neither posted "
                "as the fee nor credited to the wallet"
            )
    for p in payments:
        placed = (
            f"visit_confirm:{p.master_id}" in keys
            or f"unapplied:{p.id}" in keys
            or f"capture:{p.id}" in keys
        )
        if not placed:
            problems.append(
                f"payment {p.id} ({p.razorpay_payment_id}, {p.captured_amount} paise, "
                f"status {p.status}) captured but neither confirming visit {p.master_id} "
                "nor credited to the wallet"
            )
    return problems


def no_slot_held_twice():
    """No two live claims of one subject (provider, patient, …) overlap."""
    problems = []
    claims = db.session.execute(
        sa.select(SlotClaim.subject, SlotClaim.start_at, SlotClaim.end_at, SlotClaim.booking_id)
        .where(SlotClaim.live.is_(True))
        .order_by(SlotClaim.subject, SlotClaim.start_at)
    ).all()
    last = {}
    for subject, start, end, booking_id in claims:
        prev = last.get(subject)
        if prev is not None and start < prev[1] and prev[2] != booking_id:
            problems.append(
                f"{subject}: bookings {prev[2]} and {booking_id} both hold {start:%d %b %H:%M}"
            )
        if prev is None or end > prev[1]:
            last[subject] = (start, end, booking_id)
    return problems


def effects_once(sandbox):
    """Every effect happened once: one gateway refund per portal refund, one RazorpayX
    payout per portal payout, one confirmation posting per visit, one earning per
    booking, one processed mark per webhook event."""
    problems = []
    by_receipt = defaultdict(list)
    for refund in sandbox.store.refunds.values():
        by_receipt[
            refund.get("receipt") or (refund.get("notes") or {}).get("portal_refund")
        ].append(refund["id"])
    for key, ids in sorted(by_receipt.items(), key=lambda kv: str(kv[0])):
        if key and len(ids) > 1:
            problems.append(f"gateway made {len(ids)} refunds for one portal refund {key}: {ids}")
    by_ref = defaultdict(list)
    for payout in sandbox.store.payouts.values():
        by_ref[payout.get("reference_id")].append(payout["id"])
    for key, ids in sorted(by_ref.items(), key=lambda kv: str(kv[0])):
        if key and len(ids) > 1:
            problems.append(f"RazorpayX made {len(ids)} payouts for one reference {key}: {ids}")
    twice = db.session.execute(
        sa.select(LedgerTransaction.kind, LedgerTransaction.reference_id, sa.func.count())
        .where(LedgerTransaction.kind.in_(("visit_confirmed", "booking_completed")))
        .group_by(LedgerTransaction.kind, LedgerTransaction.reference_id)
        .having(sa.func.count() > 1)
    ).all()
    for kind, ref, n in twice:
        problems.append(f"{kind} posted {n} times for {ref}")
    refunds_per_key = db.session.execute(
        sa.select(Refund.idempotency_key, sa.func.count())
        .group_by(Refund.idempotency_key)
        .having(sa.func.count() > 1)
    ).all()
    for key, n in refunds_per_key:
        problems.append(f"{n} refunds share the idempotency key {key}")
    return problems


# What settlements move through clearing: their gross, and their transfers and adjustments.
_SETTLED = (SETTLEMENT_KIND, SETTLEMENT_ADJUSTMENTS_KIND)


def clearing_backed_by_gateway(sandbox):
    """Money the ledger says came in through the gateway (debits to gateway clearing) never
    exceeds what the gateway captured: no rupee is minted by an event or a callback.
    A settlement is not money coming in: a day whose refunds exceed its captures settles
    negative (the gateway takes it back from the bank), a debit to clearing that only
    returns what the refunds took out (``gateway_agrees`` checks settlements at rest)."""
    # Entry amounts are signed: debits positive (portal.ledger.service.debit).
    came_in = db.session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(LedgerEntry.amount), 0))
        .join(LedgerAccount, LedgerEntry.account_id == LedgerAccount.id)
        .join(LedgerTransaction, LedgerEntry.transaction_id == LedgerTransaction.id)
        .where(
            LedgerAccount.code == chart.GATEWAY_CLEARING,
            LedgerEntry.amount > 0,
            LedgerTransaction.kind.not_in(_SETTLED),
        )
    )
    came_in = int(came_in)
    captured = sum(int(p["amount"]) for p in sandbox.store.payments.values() if p.get("captured"))
    if came_in > captured:
        return [
            f"gateway clearing was debited {came_in} paise, the gateway captured only {captured}"
        ]
    return []


def gateway_agrees(sandbox):
    """At rest: every payment the gateway captured is known to the portal, and gateway
    clearing holds what the gateway holds for us (captured − processed refunds), less the
    settlements the portal has read and posted (the daily ``settlements.fetch`` reads the
    days the sandbox settled)."""
    problems = []
    store = sandbox.store
    captured = {p["id"]: p for p in store.payments.values() if p.get("captured")}
    known = set()
    for column in (
        Payment.razorpay_payment_id,
        PaymentAttempt.razorpay_payment_id,
        Reschedule.razorpay_payment_id,
    ):
        known.update(db.session.scalars(sa.select(column).where(column.is_not(None))).all())
    for key in db.session.scalars(
        sa.select(LedgerTransaction.idempotency_key).where(
            LedgerTransaction.idempotency_key.startswith("reschedule_unapplied:")
        )
    ):
        known.add(key.rsplit(":", 1)[1])
    for pay_id in sorted(set(captured) - known):
        problems.append(
            f"gateway captured {pay_id} ({captured[pay_id]['amount']} paise) "
            "but the portal has no record of it"
        )
    refunded = sum(
        int(r["amount"]) for r in store.refunds.values() if r.get("status") == "processed"
    )
    holds = sum(int(p["amount"]) for p in captured.values()) - refunded
    settled = -int(
        db.session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(LedgerEntry.amount), 0))
            .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
            .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
            .where(
                LedgerAccount.code == chart.GATEWAY_CLEARING,
                LedgerTransaction.kind.in_(_SETTLED),
            )
        )
    )
    clearing = balance(chart.GATEWAY_CLEARING) + settled
    in_flight = balance(chart.REFUNDS_PAYABLE)
    if clearing != holds:
        problems.append(
            f"gateway clearing is {clearing} paise, the gateway holds {holds} "
            f"(refunds payable {in_flight})"
        )
    return problems


EVERY_STEP = (
    ledger_balances,
    no_negative_balances,
    refunds_within_captured,
    payouts_within_earnings,
    captured_money_placed,
    no_slot_held_twice,
)
WITH_SANDBOX = (effects_once, clearing_backed_by_gateway)
AT_REST = (gateway_agrees,)
NAMES = [f.__name__ for f in EVERY_STEP + WITH_SANDBOX + AT_REST]


def check(sandbox, at_rest=False):
    problems = []
    for fn in EVERY_STEP:
        problems += fn()
    for fn in WITH_SANDBOX + (AT_REST if at_rest else ()):
        problems += fn(sandbox)
    db.session.rollback()
    return problems
