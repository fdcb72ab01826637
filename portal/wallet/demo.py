"""Demo wallet adjustments for the embedded mode (after the catalog's demo logins): a
small goodwill credit already applied, and one above the threshold waiting for the
second admin, so the approvals queue has something to show. Safe to run twice."""

import sqlalchemy as sa

from portal.accounts.models import User
from portal.extensions import db
from portal.wallet import adjustments
from portal.wallet.models import WalletAdjustment

DEMO = (
    (500_00, "Goodwill credit for the delayed lab report", "Sorry for the delayed report"),
    (12_000_00, "Refund of a package paid twice at the desk (receipt 114)", "Double payment"),
)


def load_demo(echo=print):
    admin = db.session.scalar(sa.select(User).where(User.email == "admin@demo.clinic"))
    patient = db.session.scalar(sa.select(User).where(User.email == "patient@demo.clinic"))
    if admin is None or patient is None:
        return
    if db.session.scalar(sa.select(WalletAdjustment.id).limit(1)) is not None:
        return
    for amount, note, reason in DEMO:
        adjustments.create_adjustment(admin, patient.id, adjustments.CREDIT, amount, note, reason)
    echo("Demo wallet adjustments: ₹500 applied, ₹12,000 waiting for admin2@demo.clinic.")
