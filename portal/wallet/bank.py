"""Paying a patient's wallet balance out by bank transfer: the clinic's bank sends it
(NEFT, IMPS, RTGS or UPI, outside the portal) and an administrator records it here with
the bank's transfer reference (UTR). It was recorded as a manual debit, which credited the
wallet-credit expense and left the money in ``bank`` though it had left the account.

A pay-out by bank is a wallet adjustment of its own kind (``BANK_PAYOUT``), as a cash
pay-out at the desk (``portal.wallet.cash``) is: the adjustments' rules hold as they are
(admin only, the note, never below zero under the wallet's lock, the 24-hour window and a
second administrator above the limit, the approvals queue, the double-submit token), and
its one posting is debit ``patient_wallet:<patient>`` / credit ``bank``
(``adjustments.POSTED``). What is its own: the UTR, its shape and that one transfer is
recorded once; the words the patient sees ("Paid to your bank account", with the UTR, the
posting's memo)."""

import re

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from portal.extensions import db
from portal.wallet import adjustments
from portal.wallet.adjustments import BANK_LEDGER_KIND as LEDGER_KIND
from portal.wallet.adjustments import COUNTED, MSG_MORE_THAN_BALANCE, AdjustmentError
from portal.wallet.models import BANK_PAYOUT, WalletAdjustment

UTR_INDEX = "uq_wallet_adjustments_bank_utr"  # models.WalletAdjustment, migration bankutr00001
MSG_UTR = "Enter the bank's transfer reference (UTR)."
MSG_UTR_FORMAT = (
    "A UTR is 12 to 22 letters and digits, as the bank's advice shows it (IMPS and UPI: "
    "12 digits; NEFT: 16 characters; RTGS: 22)."
)
MSG_UTR_USED = (
    "That UTR is already recorded (pay-out #{id}): one bank transfer is recorded once. "
    "Check the bank's advice."
)
# The shapes of India's interbank references: an IMPS or UPI reference (RRN) is 12 digits,
# a NEFT UTR 16 characters, an RTGS UTR 22 (bank code, channel, date, sequence). Letters
# and ASCII digits only, at least one digit (no word is a UTR); spaces are ignored (an
# advice may group it) and letters upper-cased, so one transfer is stored one way.
UTR_SHAPE = re.compile(r"(?=[A-Z]*[0-9])[A-Z0-9]{12,22}")


def normalise_utr(text):
    return "".join((text or "").split()).upper()


def check_request(amount, note, utr):
    """Every message for the pay-out's fields at once (``{}``: all fine). Pure: the
    amount and the note as an adjustment's (``adjustments.check_request``; its public
    reason, the ledger memo, is the UTR, checked here by its own rule)."""
    errors = adjustments.check_request(adjustments.DEBIT, amount, note, "UTR")
    typed = "".join((utr or "").split())
    if not typed:
        errors["utr"] = MSG_UTR
    elif not (typed.isascii() and UTR_SHAPE.fullmatch(typed.upper())):
        errors["utr"] = MSG_UTR_FORMAT  # ASCII before upper-casing: "ﬁ" is not "FI"
    return errors


def _recorded_once(utr):
    """The check ``adjustments.request`` runs under the wallet's lock: a UTR names one
    transfer, so one already on an applied or waiting pay-out (any wallet's) is refused;
    a rejected one moved nothing and frees it. Two admins recording one transfer for one
    wallet at once run one after the other under that lock, so the second sees the first;
    on two wallets at once, the partial unique index refuses the second (``pay_out``)."""

    def check():
        used = db.session.scalar(
            sa.select(WalletAdjustment.id)
            .where(
                WalletAdjustment.kind == BANK_PAYOUT,
                WalletAdjustment.receipt_no == utr,
                WalletAdjustment.status.in_(COUNTED),
            )
            .limit(1)
        )
        if used is not None:
            raise AdjustmentError({"utr": MSG_UTR_USED.format(id=used)})

    return check


def pay_out(admin, patient_id, amount, note, utr, *, token=None, now=None):
    """Record ``amount`` paise (> 0, at most the balance) of the patient's wallet sent to
    their bank account by the clinic's bank, the transfer's reference ``utr``. Returns the
    adjustment: APPLIED, or PENDING_APPROVAL above the limit (``adjustments.MSG_APPROVAL``)
    until a different administrator approves it in the approvals queue. A refused one
    raises ``AdjustmentError`` and writes nothing. ``token``: the form's one-time token, as
    an adjustment's. The UTR is the posting's memo: the patient's history shows it."""
    adjustments.require_admin(admin)
    errors = check_request(amount, note, utr)
    if errors:
        raise AdjustmentError(errors)
    utr = normalise_utr(utr)
    try:
        return adjustments.request(
            admin,
            patient_id,
            -amount,
            note,
            utr,
            kind=BANK_PAYOUT,
            receipt_no=utr,
            token=token,
            now=now,
            check=_recorded_once(utr),
        )
    except IntegrityError as exc:
        # Another wallet's pay-out of this UTR committed meanwhile (the check above runs
        # under one wallet's lock; the partial unique index is the database's word).
        if UTR_INDEX not in str(exc.orig):
            raise
        _recorded_once(utr)()  # raises the message, naming the pay-out now recorded
        raise


# Named here too for callers of this use case (defined beside the posting they describe).
__all__ = ["LEDGER_KIND", "MSG_MORE_THAN_BALANCE", "check_request", "normalise_utr", "pay_out"]
