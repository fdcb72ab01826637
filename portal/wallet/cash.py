"""Paying a patient's wallet balance out in cash at the desk: a refund of a desk-paid
visit the patient wants in cash (docs/refunds.md), a closing account's balance
(docs/privacy.md). Review finding: the desk did it with a manual debit, which credited the
wallet-credit expense and left the cash in ``cash_desk`` (offline money not yet banked)
though it had left the drawer, and the console's net cash still counted it.

A pay-out is a wallet adjustment of its own kind (``CASH_PAYOUT``): the adjustments'
rules hold as they are (admin only, the note, never below zero under the wallet's lock,
the 24-hour window and a second administrator above the limit, the approvals queue), and
its one posting is debit ``patient_wallet:<patient>`` / credit ``cash_desk``
(``adjustments.POSTED``). What is its own: an amount in paise within the balance, the desk
receipt's number, and the words the patient sees (their wallet history names the ledger
kind: "Paid to you in cash at the desk")."""

from portal.wallet import adjustments
from portal.wallet.adjustments import CASH_LEDGER_KIND as LEDGER_KIND
from portal.wallet.adjustments import MSG_MORE_THAN_BALANCE, AdjustmentError
from portal.wallet.models import CASH_PAYOUT

MSG_RECEIPT = "Enter the desk receipt number."
MSG_RECEIPT_LONG = "Keep the receipt number to 64 characters."
RECEIPT_MAX = 64  # payments' receipt_no, as a desk payment's
# The ledger memo (the internal note stays internal; the patient's page names the kind).
MEMO = "Paid out in cash at the desk"


def check_request(amount, note, receipt_no):
    """Every message for the pay-out's fields at once (``{}``: all fine). Pure: the
    amount and the note as an adjustment's (``adjustments.check_request``)."""
    errors = adjustments.check_request(adjustments.DEBIT, amount, note, MEMO)
    receipt = " ".join((receipt_no or "").split())
    if not receipt:
        errors["receipt_no"] = MSG_RECEIPT
    elif len(receipt) > RECEIPT_MAX:
        errors["receipt_no"] = MSG_RECEIPT_LONG
    return errors


def pay_out(admin, patient_id, amount, note, receipt_no, *, token=None, now=None):
    """Hand ``amount`` paise (> 0, at most the balance) of the patient's wallet to them in
    cash at the desk, against the desk receipt ``receipt_no``. Returns the adjustment:
    APPLIED, or PENDING_APPROVAL above the limit (``adjustments.MSG_APPROVAL``) until a
    different administrator approves it in the approvals queue. A refused one raises
    ``AdjustmentError`` (``MSG_MORE_THAN_BALANCE`` beyond the balance) and writes nothing.
    ``token``: the form's one-time token, as an adjustment's."""
    adjustments.require_admin(admin)
    errors = check_request(amount, note, receipt_no)
    if errors:
        raise AdjustmentError(errors)
    return adjustments.request(
        admin,
        patient_id,
        -amount,
        note,
        MEMO,
        kind=CASH_PAYOUT,
        receipt_no=" ".join(receipt_no.split()),
        token=token,
        now=now,
    )


# Named here too for callers of this use case (defined beside the posting they describe).
__all__ = ["LEDGER_KIND", "MSG_MORE_THAN_BALANCE", "check_request", "pay_out"]
