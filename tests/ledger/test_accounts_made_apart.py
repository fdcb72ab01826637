"""Where a new ledger account is made (``ledger.service._create``): committed on a
connection of its own on PostgreSQL at READ COMMITTED, else inside the use case's own
transaction (re-read findings of the change that moved it out)."""

import os

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from portal import create_app
from portal.db import unit_of_work
from portal.extensions import db
from portal.ledger import accounts as chart
from portal.ledger.models import LedgerAccount
from portal.ledger.service import balance, credit, debit, post
from tests.plugin import DEFAULT_PG, _test_config

WALLET = chart.patient_wallet(424242)


@pytest.mark.postgres
def test_a_first_posting_works_at_a_stricter_server_isolation_level(pg_app):
    # docs/deploy.md keeps a server whose default is stricter than READ COMMITTED working.
    # There the use case's snapshot is taken at its first read: an account committed
    # elsewhere after it would not be read back (a KeyError, a 500). So it is made inside.
    url = os.environ.get("TEST_POSTGRES_URL", DEFAULT_PG)
    options = "-c default_transaction_isolation=repeatable\\ read"
    strict = create_app(
        _test_config(url, SQLALCHEMY_ENGINE_OPTIONS={"connect_args": {"options": options}})
    )
    try:
        with strict.app_context():
            assert db.session.scalar(sa.text("SHOW transaction_isolation")) == "repeatable read"
            db.session.rollback()
            with unit_of_work():
                post("seed", [debit(chart.BANK, 100), credit(chart.PENALTY_REVENUE, 100)])
            assert balance(chart.BANK) == 100
    finally:
        with strict.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.mark.rollback
def test_a_rolled_back_test_leaves_no_account_behind(ctx):
    # Tests marked ``rollback`` share one connection whose outer transaction is rolled
    # back (tests/plugin.py ``_rolled_back``): an account committed on another connection
    # outlived it, and the next such test started from a ledger not empty.
    with unit_of_work():
        post("seed", [debit(chart.BANK, 100), credit(WALLET, 100)])
    assert balance(WALLET) == 100
    outside = sa.create_engine(db.engine.url, poolclass=NullPool)
    try:
        with outside.connect() as conn:
            made = conn.scalar(
                sa.select(sa.func.count())
                .select_from(LedgerAccount)
                .where(LedgerAccount.code == WALLET)
            )
    finally:
        outside.dispose()
    assert made == 0
