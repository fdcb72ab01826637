"""What happened, told to whoever listens (blinker signals).

Capabilities send these inside their unit of work; they never import the listeners.
``portal.notify`` (and anything else above the capabilities) connects to them, usually to
record follow-up work in the outbox, so nothing leaves before the commit. Receivers take
``sender`` (the sending capability's name) and keyword arguments of plain ids and values.

Receivers run synchronously inside the sender's transaction: a receiver that raises rolls
the use case back, which is what we want for the outbox rows they write."""

from blinker import Namespace

_signals = Namespace()

# --- booking and payments ------------------------------------------------------------

visit_confirmed = _signals.signal(
    "visit-confirmed",
    doc="""A visit was paid and its items
confirmed (once per visit): ``visit_id``.""",
)

visit_needs_attention = _signals.signal(
    "visit-needs-attention",
    doc="""A visit needs an
administrator for a payment reason (``booking.models.ATTENTION_*``): ``visit_id``,
``reason``.""",
)

booking_rescheduled = _signals.signal(
    "booking-rescheduled",
    doc="""An individual booking
moved to a new time: ``booking_id``, ``reschedule_id``, ``old_start`` (aware datetime).""",
)

meet_link_changed = _signals.signal(
    "meet-link-changed",
    doc="""An online booking's meeting
link was set, changed or removed (``visits.set_meet_link``): ``booking_id``.""",
)

reschedule_failed = _signals.signal(
    "reschedule-failed",
    doc="""A reschedule fee was paid
but the booking could not move (slot gone, no longer confirmed); the money went to the
wallet: ``reschedule_id``.""",
)

reschedule_fee_unapplied = _signals.signal(
    "reschedule-fee-unapplied",
    doc="""A reschedule fee was
paid for a request no longer waiting for it (replaced by a move made meanwhile, expired,
paid twice): the money went to the wallet: ``reschedule_id``, ``razorpay_payment_id``,
``amount`` (paise).""",
)

paid_for_closed_account = _signals.signal(
    "paid-for-closed-account",
    doc="""A payment was captured
(a visit's checkout or link, a reschedule fee) after its patient closed the account: it
paid for nothing, was posted as owed back (``gateway_clearing`` → ``refunds_payable``) and
is to be refunded in full to its source (``portal.refunds.unapplied``): ``visit_id``,
``patient_id``, ``booking_id``, ``payment_id`` (the visit payment row, or None),
``reschedule_id`` (or None), ``razorpay_payment_id``, ``amount`` (paise).""",
)

payment_link_expired = _signals.signal(
    "payment-link-expired",
    doc="""A visit's payment
link expired: ``visit_id``, ``payment_id``, ``renewed`` (a new link is being issued, the
hold kept) or not (the visit lapsed).""",
)

payment_link_issued = _signals.signal(
    "payment-link-issued",
    doc="""A replacement payment
link was issued for an expired one: ``visit_id``, ``payment_id`` (the new link).""",
)

payment_link_lapsed = _signals.signal(
    "payment-link-lapsed",
    doc="""No new link could be
issued for an expired one and the visit lapsed: ``visit_id``, ``payment_id`` (the old
link), ``reason``.""",
)

# --- refunds, payouts, accounts ------------------------------------------------------
# Payouts: an admin must look at a payout (failed for good, reversed). Keyword arguments:
# severity ("HIGH" | "MEDIUM" | "LOW"), kind (e.g. "PAYOUT_FAILED"), title, message,
# link (the admin page or None), dedupe_key (or None). notify connects raise_alert to it;
# what the receivers return (the notices made) is handed back to the sender.
payout_alert = _signals.signal("payout-alert")
payout_status_changed = _signals.signal(
    "payout-status-changed",
    doc="""A payout's current attempt
moved the payout to a new status (``PayoutStatus``: QUEUED, PROCESSING, PROCESSED, FAILED,
REVERSED): ``payout_id``, ``status``, ``attempt`` (the attempt's number). Sent in the
status change's transaction; a repeated or stale status sends nothing.""",
)
payout_hold_changed = _signals.signal(
    "payout-hold-changed",
    doc="""An admin held a payout
(``held`` True) or lifted its hold (False; also a hold RazorpayX overtook, the payout
already there): ``payout_id``, ``held``, ``step`` (``payouts.status.NextStep``: what the
hold stops, or what lifting it starts; None when overtaken), ``episode`` (new for each
hold or release). Sent in the action's transaction.""",
)
fund_account_checked = _signals.signal(
    "fund-account-checked",
    doc="""RazorpayX's validation of a
provider's bank account or UPI id came back and moved it (``FundAccountStatus``:
VALIDATED or FAILED, once per account): ``fund_account_id``, ``status``.""",
)
# Gateway: a money-moving webhook did not match the gateway's own record and was parked
# (no money moved). Same keyword arguments as payout_alert.
gateway_alert = _signals.signal("gateway-alert")
# Gateway: a verified webhook event was stored (row_id = WebhookEvent.id); whoever runs
# jobs records its processing in the outbox, in the same transaction.
webhook_stored = _signals.signal("webhook-stored")

booking_cancelled = _signals.signal(
    "booking-cancelled",
    doc="""An individual booking was
cancelled: ``booking_id``, ``by`` ("patient" | "provider" | "clinic"), ``refund`` (paise
given back, fees included), ``reason`` (or None).""",
)

refund_processed = _signals.signal(
    "refund-processed",
    doc="""Money that was on its way
reached the patient: Razorpay confirmed a refund, or a failed one was sent to the wallet
instead: ``refund_id``. A cancellation's or an approved further refund's wallet part is
in the wallet at once and is told with ``booking_cancelled`` /
``refund_override_approved`` (whose receivers read the refund rows), not sent here.""",
)

refund_failed = _signals.signal(
    "refund-failed",
    doc="""A gateway refund needs a person
(retry it or send it to the wallet): ``refund_id``, ``episode`` (its count of failures: a
refund found at Razorpay or retried may fail again, and each time is news).""",
)

refund_override_requested = _signals.signal(
    "refund-override-requested",
    doc="""A refund
above the calculated amount awaits a second administrator: ``approval_id``.""",
)

refund_override_approved = _signals.signal(
    "refund-override-approved",
    doc="""A second
administrator approved a refund override: ``approval_id``, ``booking_id``, ``amount``
(the extra paise refunded now).""",
)

password_reset_requested = _signals.signal(
    "password-reset-requested",
    doc="""An active user
asked for a password reset link: ``user_id``, ``link`` (absolute), ``minutes`` (how long
it works).""",
)

registration_for_existing_account = _signals.signal(
    "registration-for-existing-account",
    doc="""Someone
registered with an address that already has an account (the visitor was told nothing):
``user_id`` (the owner), ``reset_link`` (absolute, the forgot-password page).""",
)

user_invited = _signals.signal(
    "user-invited",
    doc="""An administrator invited a provider or
an administrator: ``user_id``, ``invited_by_id``, ``link`` (absolute), ``days`` (how long
it works).""",
)

account_deactivating = _signals.signal(
    "account-deactivating",
    doc="""An administrator is
deactivating an account, inside the use case's unit of work, before it writes: ``user_id``,
``actor_id``, ``role`` (the account's). A receiver that raises ``ValidationError`` refuses
the deactivation (the catalog: a provider's profile is deactivated with their account,
refused over bookings ahead; ``booking.deactivation``: a patient's is refused over their
visits running). A patient's own closure sends it too (``actor_id == user_id``).""",
)

provider_pan_clearing = _signals.signal(
    "provider-pan-clearing",
    doc="""An administrator is clearing a
provider's PAN (the profile form's field left blank), inside the use case's unit of work,
before it writes: ``provider_id``. A receiver returns the message refusing it, or None (the
payouts: TDS was deducted under that PAN, and the TDS records keep it, docs/privacy.md).""",
)

provider_pan_writing = _signals.signal(
    "provider-pan-writing",
    doc="""A provider's PAN is about to be
written (entered by the provider, or set, corrected or cleared by an administrator), first
of all in the use case's unit of work, before the catalog's locks: ``provider_id``, ``pan``
(as typed; None or blank: cleared). A receiver may wait there (the payouts: for a payout of
the profile, or of either PAN, being made: TDS is counted per PAN).""",
)

patient_added = _signals.signal(
    "patient-added",
    doc="""An administrator added a patient (a walk-in or
phone booking): ``user_id``, ``added_by_id``, ``link`` (absolute, to choose a password),
``days`` (how long it works).""",
)

wallet_adjustment_requested = _signals.signal(
    "wallet-adjustment-requested",
    doc="""A manual wallet
adjustment above the threshold awaits a second administrator: ``adjustment_id``.""",
)

admin_access_requested = _signals.signal(
    "admin-access-requested",
    doc="""An administrator's
invitation, or an administrator account's reactivation, awaits a second administrator
(``accounts.admin_access``): ``request_id``.""",
)

policy_change_requested = _signals.signal(
    "policy-change-requested",
    doc="""A policy change
touching money or a control awaits a second administrator (PENDING): ``version_id``.""",
)

wallet_adjusted = _signals.signal(
    "wallet-adjusted",
    doc="""A manual wallet adjustment
was applied (posted to the ledger): ``adjustment_id``, ``patient_id``.""",
)
# Reconciliation: a run found new discrepancies (one alert per run). Same keyword arguments
# as payout_alert.
reconciliation_alert = _signals.signal("reconciliation-alert")
# Settlements: a settlement whose header does not add up to its (complete) recon rows.
# Same keyword arguments as payout_alert.
settlement_alert = _signals.signal("settlement-alert")
