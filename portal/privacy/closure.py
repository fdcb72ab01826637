"""A patient closes their own account (docs/privacy.md).

One unit of work, with the patient's row locked (``FOR UPDATE``) so two closes, or a
close and a password change, run one after the other; a hold at the same moment too: the
claims' trigger takes that row ``FOR KEY SHARE`` and refuses a claim of a closed account
(``booking.claims``), so the lock is taken before anything booked is read. On SQLite the
closure holds the claims' process-wide lock from its checks to its commit, as a hold does:
one runs after the other there as well.

1. the current password (a wrong one counts toward the account's lockout, as in a
   password change: ``accounts.service.check_own_password``);
2. nothing may still be owed either way, each refusal saying what to do: appointments
   held, confirmed or started (cancel them first, or ask the clinic); a visit waiting for
   payment (a checkout, a payment link, a reschedule fee); a refund not finished (or a
   further refund awaiting approval); money in the wallet, or an adjustment of it
   awaiting approval (the portal sends no wallet money by itself: the clinic pays it,
   in cash at the desk or by its bank, and records the pay-out, docs/wallet.md);
3. ``accounts.service.close_own_account``: personal data erased, the account deactivated
   through the one deactivation path (every session ends);
4. ``notify.closure``: nothing more sent to them; copies of what was sent lose their
   address and words;
   what was sent to others about them (notices, mails, texts about their visits,
   bookings and wallet) has the old names and e-mail replaced by the closed ones, each
   name they or a family member had (``former_names``: a child renamed since);
5. ``transactions.closure``: the console's rows of theirs show the closed name (but for
   a name an issued invoice carries);
6. ``gateway.scrub``: the stored Razorpay webhooks of their payments lose what they say
   of the payer (``scrub.PERSONAL``: e-mail, mobile, UPI id, the name on the card, a
   link's customer).

Visits, payments, refunds, the ledger, invoices and credit notes and the audit are kept,
referring to the user id (the audit rows about the user and their dependents lose the
personal fields they held: ``accounts.service.close_own_account``)."""

from portal.accounts import service as accounts
from portal.audit.service import record
from portal.booking import claims, prices
from portal.booking import queries as booking_queries
from portal.db import unit_of_work
from portal.domain.rates import format_inr
from portal.domain.text import PluralText, Text
from portal.gateway import scrub
from portal.i18n import N_, Nn_
from portal.notify import closure as notify_closure
from portal.privacy import former_names, gateway_ids
from portal.refunds import queries as refund_queries
from portal.transactions import closure as transactions_closure
from portal.wallet import queries as wallet_queries

# Said by the number of visits (one visit may hold several appointments).
LIVE_BOOKINGS = Nn_(
    "You have appointments that are booked or under way (visit %(visits)s). Cancel the "
    "ones ahead from the visit's page first; for one that has already begun, ask the clinic.",
    "You have appointments that are booked or under way (visits %(visits)s). Cancel the "
    "ones ahead from each visit's page first; for one that has already begun, ask the clinic.",
)
UNPAID = Nn_(
    "Visit %(visits)s is waiting for payment. Open it and cancel it (or pay for it) first.",
    "Visits %(visits)s are waiting for payment. Open each one and cancel it (or pay for it) first.",
)
REFUNDS = N_(
    "A refund to you is not finished yet. Close your account once it has reached you; the "
    "visit's page shows where it is."
)
WALLET = N_(
    "Your wallet holds %(amount)s. Ask the clinic to pay it out to you before you close "
    "your account: the portal cannot send wallet money back by itself."
)
WALLET_PENDING = N_(
    "A change to your wallet is waiting for the clinic's approval. Close your account once "
    "it has been decided."
)


class ClosureRefused(accounts.ValidationError):
    """Something is still owed either way: ``reasons`` says each thing and what to do."""

    def __init__(self, reasons):
        self.reasons = list(reasons)
        super().__init__({accounts.FORM: self.reasons[0]})


def blockers(patient_id):
    """What stands in the way of closing the account, as messages (empty: nothing)."""
    reasons = []
    live, unpaid = booking_queries.open_business(patient_id)
    # A visit waiting for payment holds its times too: it is said once, as unpaid.
    live = [n for n in live if n not in unpaid]
    if live:
        reasons.append(PluralText(*LIVE_BOOKINGS, len(live), visits=", ".join(live)))
    if unpaid:
        reasons.append(PluralText(*UNPAID, len(unpaid), visits=", ".join(unpaid)))
    if refund_queries.refunds_in_flight(patient_id):
        reasons.append(Text(REFUNDS))
    balance = prices.wallet_balance(patient_id)
    if balance:
        reasons.append(Text(WALLET, amount=format_inr(balance)))
    if wallet_queries.pending_adjustments(patient_id):
        reasons.append(Text(WALLET_PENDING))
    return reasons


def close_account(user_id, current_password, confirmed):
    """Close the signed-in patient's account (see the module). Returns the closed user.
    Raises ``accounts.ValidationError`` (the confirmation, the password: a wrong one is
    counted and kept), ``accounts.AccountLocked`` (the guess that locked it: its sessions
    ended), ``ClosureRefused`` (something still owed; nothing changed)."""
    if not confirmed:
        raise accounts.ValidationError({"confirm": accounts.CLOSE_CONFIRM_MESSAGE})
    refusal = None
    # The password is checked (argon2) before the locks are taken; applied under them.
    checked = accounts.verify_own_password(user_id, current_password)
    with claims.serialized(), unit_of_work():
        user, refusal = accounts.check_own_password(user_id, checked, "user.close_failed")
        if refusal is None:
            reasons = blockers(user.id)
            if reasons:
                record(
                    user,
                    "user.close_refused",
                    "user",
                    user.id,
                    after={"reasons": [r.template[:60] for r in reasons]},
                )
                refusal = ClosureRefused(reasons)
        if refusal is None:
            old_email = user.email
            # Every name they were known by, read before the audit rows lose them.
            pairs = former_names.replacements(user)
            accounts.close_own_account(user)
            withdrawn = notify_closure.withdraw_and_erase(user.id, old_email, user.email)
            record(None, "notify.withdrawn_for_closed_account", "user", user.id, after=withdrawn)
            about = notify_closure.erase_about_them(user.id, pairs)
            record(None, "notify.erased_about_closed_account", "user", user.id, after=about)
            renamed = transactions_closure.rename_closed_party(user.id, user.name)
            record(
                None,
                "transactions.renamed_for_closed_account",
                "user",
                user.id,
                after={"rows": renamed},
            )
            webhooks = scrub.erase_contact_details(**gateway_ids.of_patient(user.id))
            record(
                None,
                "gateway.webhooks_scrubbed_for_closed_account",
                "user",
                user.id,
                after={"events": webhooks},
            )
    if refusal:
        raise refusal
    return user
