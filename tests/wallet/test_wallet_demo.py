"""The demo adjustments: one applied, one waiting for the second demo admin; twice is once."""

import sqlalchemy as sa

from portal.catalog.demo import load_demo
from portal.extensions import db
from portal.wallet import demo
from portal.wallet.models import WalletAdjustment


def test_demo_adjustments_load_once(ctx):
    load_demo(echo=lambda *_: None)
    lines = []
    demo.load_demo(echo=lines.append)
    demo.load_demo(echo=lines.append)
    statuses = db.session.scalars(
        sa.select(WalletAdjustment.status).order_by(WalletAdjustment.id)
    ).all()
    assert statuses == ["APPLIED", "PENDING_APPROVAL"] and len(lines) == 1
