"""An administrator deactivating a patient's account (admin/users,
``accounts.deactivate_user``): refused while the patient has business running: an
appointment held, confirmed or started, or a visit waiting for payment (theirs or a
dependent's: a dependent's visits are the guardian's). The rule is the one a patient's
own closure refuses by (``queries.open_business``, ``privacy.closure``): deactivated,
they could not sign in to see, move or cancel those, no reminder would reach them
(``notify.recipients``), and the doctor would still expect them. Money alone (a wallet
balance, a refund on its way, an adjustment awaiting approval) does not stop it: a
deactivation is undone by a reactivation (docs/decisions.md).

A desk hold for the same patient at the same moment: the receiver takes the account's row
``FOR UPDATE`` before it reads what is booked, and the person's claim's trigger takes it
``FOR KEY SHARE`` and refuses a claim of an account deactivated by then
(``claims``: ``AccountDeactivated``): a hold being written is waited for and then read (the
deactivation refused), and a hold after waits for this commit and is refused. SQLite: the
claims' process-wide lock from this check to the account's commit (``hold_to_end``), under
which a hold reads the account afresh (``claims.add_claims``)."""

import sqlalchemy as sa

from portal import events
from portal.accounts.models import PATIENT, User
from portal.accounts.service import FORM, ValidationError
from portal.booking.queries import open_business
from portal.catalog import time_lock
from portal.extensions import db

# Admin pages are English only: not in the catalogue. Said by the number of visits (one
# visit may hold several appointments).
LIVE_BUSINESS = (
    "{name} has {count} with appointments held, booked or under way, or waiting for "
    "payment ({numbers}). Deactivated, they could not sign in to see, move or cancel "
    "them and would get no reminders, while the doctor still expects them. Cancel them "
    "for the clinic from the visit's page (the refund follows the policy), complete any "
    "already under way, then deactivate."
)


class DeactivationRefused(ValidationError):
    """A patient's deactivation refused over their visits: ``numbers`` (the visits'
    numbers, for the Users page to link), the message under ``FORM``."""

    def __init__(self, patient, numbers):
        self.numbers = list(numbers)
        count = len(self.numbers)
        message = LIVE_BUSINESS.format(
            name=patient.name,
            count=f"{count} visit" if count == 1 else f"{count} visits",
            numbers=("visit " if count == 1 else "visits ") + ", ".join(self.numbers),
        )
        super().__init__({FORM: message})


def refusal(patient):
    """The refusal of deactivating ``patient`` (their running visits), or None."""
    live, unpaid = open_business(patient.id)
    numbers = sorted(set(live) | set(unpaid))
    return DeactivationRefused(patient, numbers) if numbers else None


@events.account_deactivating.connect
def _refuse_over_live_business(sender, *, user_id, actor_id, role, **_):
    """Runs inside the account's unit of work, before it writes; a refusal raises and
    nothing changes. A patient closing their own account (``actor_id == user_id``: an
    administrator cannot deactivate their own) has been refused by the same rule, under
    the same locks, by ``privacy.closure`` already."""
    if role != PATIENT or actor_id == user_id:
        return
    time_lock.hold_to_end()  # SQLite: from this check to the account's commit
    patient = db.session.scalar(
        sa.select(User)
        .where(User.id == user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    refused = refusal(patient)
    if refused:
        raise refused
