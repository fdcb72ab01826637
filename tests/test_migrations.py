"""The migrations build the schema the models describe, on SQLite and on PostgreSQL."""

import os
import shutil
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from portal import create_app
from portal.append_only import FUNCTION_DDL as APPEND_ONLY_DDL
from portal.booking.models import ACCOUNT_OPEN_DDL, PROVIDER_PRESENT_DDL
from portal.db import UTCDateTime
from portal.extensions import db
from tests.booking.factories import quoted_desk_payment
from tests.conftest import DEFAULT_PG, _test_config


def _fresh_postgres(url):
    from sqlalchemy.engine import make_url

    target = make_url(url.replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"{target.database}_migrations"
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        pytest.fail(f"PostgreSQL is needed for this test and is not reachable: {exc}")
    finally:
        admin.dispose()
    return target.set(database=name).render_as_string(hide_password=False)


def _database_url(engine, sqlite_file):
    """The database a test parametrized by ``engine`` upgrades: a SQLite file, or a fresh
    PostgreSQL database on TEST_POSTGRES_URL's server."""
    if engine == "sqlite":
        return f"sqlite:///{sqlite_file}"
    return _fresh_postgres(os.environ.get("TEST_POSTGRES_URL", DEFAULT_PG))


def _assert_migrations_match_models(url):
    app = create_app(_test_config(url))
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), db.metadata
            )
            if conn.dialect.name == "postgresql":
                # Autogenerate cannot see exclusion constraints: check the double-booking guard.
                definition = conn.scalar(
                    sa.text(
                        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = "
                        "'ex_slot_claims_no_overlap' AND contype = 'x'"
                    )
                )
                # Same subject, overlapping time, live, and another booking (a booking's
                # held new time may overlap its old one).
                assert (
                    definition is not None
                    and "subject WITH =" in definition
                    and "booking_id WITH <>" in definition
                    and "WHERE (live)" in definition
                )
                # Nor triggers: a provider's claim over their leave, or once inactive, is
                # refused (a leave and a hold at once never both win; docs/booking.md).
                triggers = set(
                    conn.scalars(
                        sa.text(
                            "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
                            " AND tgrelid = 'slot_claims'::regclass"
                        )
                    )
                )
                # And the person's claim of a closed account (acc10sed0002, docs/privacy.md).
                assert triggers == {
                    "tg_slot_claims_provider_present",
                    "tg_slot_claims_provider_present_again",
                    "tg_slot_claims_account_open",
                    "tg_slot_claims_account_open_again",
                }, triggers
                # Their function as the models write it (over leave, inactive, outside the
                # weekly hours: wkhours00001; at a clinic inactive or closed then: clinic0open1;
                # of a service inactive or not the provider's: svcoffer0001).
                source = conn.scalar(
                    sa.text(
                        "SELECT prosrc FROM pg_proc WHERE proname = 'slot_claims_provider_present'"
                    )
                )
                assert source.strip() and source.strip() in PROVIDER_PRESENT_DDL[0]
                source = conn.scalar(
                    sa.text("SELECT prosrc FROM pg_proc WHERE proname = 'slot_claims_account_open'")
                )
                assert source.strip() and source.strip() in ACCOUNT_OPEN_DDL[0]
                # The append-only history's triggers (audit log: aud1t0nly0001; ledger:
                # ledg0nly0001, which gave every table the one function; docs/security.md).
                for table in ("audit_log", "ledger_transactions", "ledger_entries"):
                    triggers = set(
                        conn.scalars(
                            sa.text(
                                "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
                                " AND tgrelid = CAST(:table AS regclass)"
                            ),
                            {"table": table},
                        )
                    )
                    assert triggers == {f"tg_{table}_append_only", f"tg_{table}_not_truncated"}
                functions = conn.scalars(
                    sa.text("SELECT prosrc FROM pg_proc WHERE proname LIKE '%append_only'")
                ).all()
                assert len(functions) == 1, "audit_log_append_only() outlived ledg0nly0001"
                assert functions[0].strip() and functions[0].strip() in APPEND_ONLY_DDL
        assert diff == [], f"models and migrations disagree: {diff}"
        downgrade(revision="base")
        upgrade()
        db.engine.dispose()


def test_migrations_match_models_on_sqlite(tmp_path):
    _assert_migrations_match_models("sqlite:///" + str(tmp_path / "migrated.sqlite3"))


@pytest.mark.postgres
def test_migrations_match_models_on_postgres():
    url = _fresh_postgres(os.environ.get("TEST_POSTGRES_URL", DEFAULT_PG))
    _assert_migrations_match_models(url)


def test_a_table_rebuilt_on_sqlite_keeps_the_rows_pointing_at_it(tmp_path):
    """SQLite alters a table by rebuilding it (copy, DROP, rename): with foreign keys on,
    dropping policy_versions while a visit points at it failed, so `make run` on an
    existing embedded install could not upgrade (po11c1e50002)."""
    import time_machine

    from portal.accounts.models import User
    from portal.booking import visits
    from portal.booking.models import IndividualBooking
    from portal.db import unit_of_work
    from portal.policies.service import ensure_first_version
    from tests.booking.factories import NOW, at, build_world

    app = create_app(_test_config("sqlite:///" + str(tmp_path / "kept.sqlite3")))
    with app.app_context(), time_machine.travel(NOW, tick=False):
        upgrade()
        w = build_world()
        with unit_of_work():
            ensure_first_version()  # as `flask demo load` makes version 1
        patient = db.session.get(User, w.patients[0])
        item = visits.add_item(
            patient,
            patient_id=patient.id,
            service_id=w.consult,
            provider_ids=[w.doctors[0]],
            clinic_id=w.clinic,
            start_at=at(1, 10),
        )
        item_id = item.id
        version = db.session.get(IndividualBooking, item_id).policy_version_id
        assert version is not None
        db.session.remove()
        downgrade(revision="wh0e1d0c0001")  # both ways rebuild policy_versions
        upgrade()
        assert db.session.get(IndividualBooking, item_id).policy_version_id == version
        with db.engine.connect() as conn:  # the pool's connections enforce them again
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        db.engine.dispose()


# --- SQLite: an upgrade is one transaction, checked before it commits -------------------


def _head():
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", "migrations")
    return ScriptDirectory.from_config(config).get_current_head()


HEAD = _head()  # the last revision: the tests' own revisions follow it


def _migrations_with(tmp_path, *revisions):
    """A copy of migrations/ with extra revision files ``(rev, down, body)``."""
    target = tmp_path / "migrations"
    shutil.copytree("migrations", target, ignore=shutil.ignore_patterns("__pycache__"))
    for rev, down, body in revisions:
        body_lines = "".join("    " + line + "\n" for line in body.strip().splitlines())
        source = (
            '"""a test\'s revision"""\n'
            "from alembic import op\n"
            "import sqlalchemy as sa\n\n"
            f'revision = "{rev}"\n'
            f'down_revision = "{down}"\n'
            "branch_labels = None\n"
            "depends_on = None\n\n\n"
            "def upgrade():\n"
            f"{body_lines}\n\n"
            "def downgrade():\n"
            "    pass\n"
        )
        (target / "versions" / f"{rev}_test.py").write_text(source)
    return str(target)


def _tables(app):
    with app.app_context(), db.engine.connect() as conn:
        return set(sa.inspect(conn).get_table_names())


def _version(app):
    with app.app_context(), db.engine.connect() as conn:
        return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()


def test_a_failing_second_migration_leaves_nothing_half_built(tmp_path, capfd):
    """Two revisions pending; the second creates a table, then fails. Alembic commits after
    each revision on SQLite unless told its DDL is transactional (the explicit BEGIN
    makes it so): the failed revision's table was kept, and the next upgrade failed on it."""
    directory = _migrations_with(
        tmp_path,
        (
            "rv0000000001",
            HEAD,
            'op.create_table("made_one", sa.Column("id", sa.Integer, primary_key=True))\n',
        ),
        (
            "rv0000000002",
            "rv0000000001",
            'op.create_table("made_two", sa.Column("id", sa.Integer, primary_key=True))\n'
            'raise RuntimeError("second migration fails half way")\n',
        ),
    )
    app = create_app(_test_config("sqlite:///" + str(tmp_path / "m.sqlite3")))
    with app.app_context():
        upgrade(directory=directory, revision=HEAD)
        with pytest.raises(SystemExit):  # flask_migrate logs "Error: ..." and exits
            upgrade(directory=directory)
        db.engine.dispose()
    assert "second migration fails half way" in "".join(capfd.readouterr())  # that failure
    # One transaction for both revisions: the first's table and version went back too.
    assert "made_two" not in _tables(app), "half-built table of the failed migration kept"
    assert "made_one" not in _tables(app) and _version(app) == HEAD


def test_foreign_key_check_refuses_a_migration_that_broke_references(tmp_path, capfd):
    """env.py checks every reference "before the commit": a migration (run with foreign
    keys off) that leaves a dangling reference must not be committed."""
    directory = _migrations_with(
        tmp_path,
        (
            "rv0000000003",
            HEAD,
            'op.create_table("made_child", sa.Column("id", sa.Integer, primary_key=True),'
            ' sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id")))\n'
            'op.execute("INSERT INTO made_child (id, user_id) VALUES (1, 999999)")\n',
        ),
    )
    app = create_app(_test_config("sqlite:///" + str(tmp_path / "f.sqlite3")))
    with app.app_context():
        upgrade(directory=directory, revision=HEAD)
        with pytest.raises(SystemExit):  # flask_migrate logs "Error: ..." and exits
            upgrade(directory=directory)
        db.engine.dispose()
    assert "a migration broke foreign keys" in "".join(capfd.readouterr())  # the check
    assert _version(app) == HEAD, f"alembic_version moved to {_version(app)} despite the check"
    assert "made_child" not in _tables(app)


def test_the_gst_backfill_keeps_each_past_invoice_rows_cgst_as_reported(tmp_path):
    """Before gst0a5155ued1 the report split an invoice row's tax as a whole; the backfill
    gives each line its own split, and must not move a past month's CGST and SGST (two
    lines of 91 paise: 91 / 91 as reported, not 92 / 90)."""
    import time_machine

    from portal.accounts.models import User
    from portal.booking import visits
    from tests.booking.factories import NOW, at, build_world

    app = create_app(_test_config("sqlite:///" + str(tmp_path / "gst.sqlite3")))
    with app.app_context(), time_machine.travel(NOW, tick=False):
        upgrade()
        w = build_world()
        patient, admin = db.session.get(User, w.patients[0]), db.session.get(User, w.admin)
        first = visits.add_item(
            admin,
            patient_id=patient.id,
            service_id=w.consult,
            provider_ids=[w.doctors[0]],
            clinic_id=w.clinic,
            start_at=at(1, 10),
        )
        visits.add_item(
            admin,
            patient_id=patient.id,
            service_id=w.consult,
            provider_ids=[w.doctors[1]],
            clinic_id=w.clinic,
            start_at=at(1, 11),
            visit_id=first.master_id,
        )
        quoted_desk_payment(admin, first.master_id, "R-1")
        visit_id = first.master_id
        db.session.remove()
        downgrade(revision="po11c1e50002")
        with db.engine.begin() as conn:
            conn.exec_driver_sql(
                "UPDATE bookings SET gst = 91, total = fee + platform_fee + 91"
                f" WHERE master_id = {visit_id}"
            )
        upgrade()
        with db.engine.connect() as conn:
            split = conn.exec_driver_sql(
                f"SELECT SUM(cgst), SUM(sgst), SUM(igst) FROM bookings WHERE master_id = {visit_id}"
            ).one()
        assert tuple(split) == (91, 91, 0)
        db.engine.dispose()


@pytest.mark.parametrize("engine", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_the_one_current_account_index_keeps_each_providers_newest(tmp_path, engine):
    """pay0a77e3f003: a provider left with two current accounts by a race keeps the newest
    (the one payouts used) as its current account before the unique index is made."""
    from portal.db import utcnow
    from tests.booking.factories import build_world

    url = _database_url(engine, tmp_path / "fa.sqlite3")
    app = create_app(_test_config(url))
    with app.app_context():
        upgrade()
        w = build_world()
        db.session.remove()
        downgrade(revision="pay0a77e3f002")
        rows = [(1, w.doctors[0], False), (2, w.doctors[0], True), (3, w.doctors[0], True)]
        rows += [(4, w.doctors[1], True)]
        with db.engine.begin() as conn:
            for row_id, provider_id, current in rows:
                conn.execute(
                    sa.text(
                        "INSERT INTO fund_accounts (id, provider_id, kind, holder_name, status,"
                        " current, created_at) VALUES (:id, :p, 'vpa', 'Asha Rao', 'VALIDATED',"
                        " :current, :at)"
                    ),
                    {"id": row_id, "p": provider_id, "current": current, "at": utcnow()},
                )
        upgrade()
        with db.engine.connect() as conn:
            current = conn.execute(
                sa.text("SELECT id FROM fund_accounts WHERE current ORDER BY id")
            ).scalars()
            assert list(current) == [3, 4]


def test_the_billed_names_backfill_gives_invoiced_visits_todays_names(tmp_path):
    """inv0b111ed001: a visit invoiced before it gets the holder's and the dependent's names
    of the day it runs; a visit not invoiced keeps none."""
    import time_machine

    from portal.accounts.models import User
    from portal.booking import visits
    from tests.booking.factories import NOW, at, build_world

    app = create_app(_test_config("sqlite:///" + str(tmp_path / "names.sqlite3")))
    with app.app_context(), time_machine.travel(NOW, tick=False):
        upgrade()
        w = build_world()
        patient, admin = db.session.get(User, w.patients[0]), db.session.get(User, w.admin)
        ids = []
        for hour, dependent in ((10, w.child), (11, None)):
            ids.append(
                visits.add_item(
                    admin,
                    patient_id=patient.id,
                    service_id=w.consult,
                    provider_ids=[w.doctors[0]],
                    clinic_id=w.clinic,
                    start_at=at(1, hour),
                    dependent_id=dependent,
                ).master_id
            )
        quoted_desk_payment(admin, ids[0], "R-1")  # the second stays unpaid
        holder = patient.name
        db.session.remove()
        downgrade(revision="pay0a77e3f003")
        upgrade()
        with db.engine.connect() as conn:
            names = conn.exec_driver_sql(
                f"SELECT billed_to_name, billed_for_name FROM visits WHERE id IN {tuple(ids)}"
                " ORDER BY id"
            ).all()
        assert [tuple(n) for n in names] == [(holder, "Little One"), (None, None)]
        db.engine.dispose()


@pytest.mark.parametrize("engine", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_lines_issued_before_invline00001_take_todays_clinic_and_description(tmp_path, engine):
    """invline00001: a line issued before it gets the clinic's name and its description
    (service — providers by name) of the day it runs, which is all it can know; a line
    not issued gets none; down again, the columns are gone."""
    import time_machine

    from portal.accounts.models import User
    from portal.booking import visits
    from tests.booking.factories import NOW, at, build_world

    url = _database_url(engine, tmp_path / "lines.sqlite3")
    app = create_app(_test_config(url))
    with app.app_context(), time_machine.travel(NOW, tick=False):
        upgrade()
        w = build_world()
        admin = db.session.get(User, w.admin)
        ids = []
        for hour, doctors in ((10, w.doctors[:2]), (11, w.doctors[:1])):
            ids.append(
                visits.add_item(
                    admin,
                    patient_id=w.patients[0],
                    service_id=w.consult,
                    provider_ids=doctors,
                    clinic_id=w.clinic,
                    start_at=at(1, hour),
                )
            )
        issued, unpaid = ids[0].id, ids[1].id
        quoted_desk_payment(admin, ids[0].master_id, "R-1")  # the second stays unpaid
        db.session.remove()
        downgrade(revision="audmail00001")
        with db.engine.begin() as conn:
            conn.exec_driver_sql(f"UPDATE clinics SET name = 'Renamed Care' WHERE id = {w.clinic}")
        upgrade()
        with db.engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT id, invoice_clinic_name, invoice_description FROM bookings"
                f" WHERE id IN ({issued}, {unpaid}) ORDER BY id"
            ).all()
        assert [tuple(r) for r in rows] == [
            (issued, "Renamed Care", "Consultation — Dr Doc 1, Dr Doc 2"),
            (unpaid, None, None),
        ]
        downgrade(revision="audmail00001")
        with db.engine.connect() as conn:
            columns = {c["name"] for c in sa.inspect(conn).get_columns("bookings")}
        assert not {"invoice_clinic_name", "invoice_description"} & columns
        db.engine.dispose()


@pytest.mark.parametrize("engine", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_fees_issued_before_feename00001_take_todays_clinic_and_description(tmp_path, engine):
    """feename00001: a reschedule fee's document issued before it gets the clinic's name
    and its booking's line description (service — providers by name) of the day it runs,
    as invline00001 gave the lines; a free move (no document) gets none; down again, the
    columns are gone."""
    import time_machine

    from portal.accounts.models import User
    from portal.booking import visits
    from tests.booking.factories import NOW, at, build_world
    from tests.refunds.helpers import quoted_move

    url = _database_url(engine, tmp_path / "feenames.sqlite3")
    app = create_app(_test_config(url))

    def move(admin, item_id, new_start):
        return quoted_move(admin, item_id, new_start, pay_with="desk", receipt_no="D-1").reschedule

    with app.app_context(), time_machine.travel(NOW, tick=False):
        upgrade()
        w = build_world()
        admin = db.session.get(User, w.admin)
        soon = visits.add_item(
            admin,
            patient_id=w.patients[0],
            service_id=w.consult,
            provider_ids=w.doctors[:2],
            clinic_id=w.clinic,
            start_at=at(2, 10),  # 50 h ahead: a fee to move it
        )
        later = visits.add_item(
            admin,
            patient_id=w.patients[0],
            service_id=w.consult,
            provider_ids=[w.doctors[1]],
            clinic_id=w.clinic,
            start_at=at(4, 10),  # 98 h ahead: moved for free
            visit_id=soon.master_id,
        )
        soon_id, later_id = soon.id, later.id
        quoted_desk_payment(admin, soon.master_id, "R-1")
        charged = move(admin, soon_id, at(2, 11)).id
        free = move(admin, later_id, at(4, 11)).id
        db.session.remove()
        downgrade(revision="invline00001")
        with db.engine.begin() as conn:
            conn.exec_driver_sql(f"UPDATE clinics SET name = 'Renamed Care' WHERE id = {w.clinic}")
            conn.exec_driver_sql(f"UPDATE services SET name = 'Visit' WHERE id = {w.consult}")
        upgrade()
        with db.engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT id, invoice_clinic_name, invoice_description FROM reschedules ORDER BY id"
            ).all()
        assert [tuple(r) for r in rows] == [
            (charged, "Renamed Care", "Visit — Dr Doc 1, Dr Doc 2"),
            (free, None, None),
        ]
        downgrade(revision="invline00001")
        with db.engine.connect() as conn:
            columns = {c["name"] for c in sa.inspect(conn).get_columns("reschedules")}
        assert not {"invoice_clinic_name", "invoice_description"} & columns
        db.engine.dispose()


@pytest.mark.parametrize("engine", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_the_not_completed_flag_kind_is_allowed_after_att0f1a90001(tmp_path, engine):
    """att0f1a90001: the kind check of attention_flags takes NOT_COMPLETED (a started
    booking never completed); down again, those rows go and the old check refuses them."""
    from portal.booking.attention import NO_SHOW, NOT_COMPLETED
    from tests.notify.factories import NOW, build_world, make_booking

    url = _database_url(engine, tmp_path / "flags.sqlite3")
    app = create_app(_test_config(url))
    insert = sa.text(
        "INSERT INTO attention_flags (booking_id, visit_id, kind, created_at)"
        " SELECT id, master_id, :kind, :at FROM bookings WHERE id = :id"
    )
    with app.app_context():
        upgrade()
        w = build_world()
        started = make_booking(w, NOW, status="STARTED")
        confirmed = make_booking(w, NOW + timedelta(hours=1))
        db.session.remove()
        with db.engine.begin() as conn:
            conn.execute(insert, {"kind": NOT_COMPLETED, "at": NOW, "id": started})
            conn.execute(insert, {"kind": NO_SHOW, "at": NOW, "id": confirmed})
        downgrade(revision="prc2u7r5c001")
        with db.engine.connect() as conn:
            kinds = conn.execute(sa.text("SELECT kind FROM attention_flags")).scalars().all()
            assert kinds == [NO_SHOW]
        with pytest.raises(sa.exc.IntegrityError), db.engine.begin() as conn:
            conn.execute(insert, {"kind": NOT_COMPLETED, "at": NOW, "id": started})
        upgrade()
        with db.engine.begin() as conn:
            conn.execute(insert, {"kind": NOT_COMPLETED, "at": NOW, "id": started})
        db.engine.dispose()


@pytest.mark.parametrize("engine", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_settlements_stored_before_know_whether_their_rows_are_complete(tmp_path, engine):
    """setl0c0d1b0001: a settlement stored before gets ``rows_complete`` from its rows as
    they were read then (a refund row the only debit): one whose payment less refund rows
    reach its gross is complete, one lacking a row is not (the daily job flags it once it
    is behind the lookback); their rows keep no credit or debit."""
    from portal.db import utcnow

    url = _database_url(engine, tmp_path / "setl.sqlite3")
    app = create_app(_test_config(url))
    with app.app_context():
        upgrade()
        db.session.remove()
        downgrade(revision="att0f1a90001")
        settlements = [(1, 9_000, 1_000), (2, 9_000, 1_000), (3, 0, 0)]  # id, amount, fees
        items = [  # id, settlement, type, amount: 1 adds up, 2 lacks its refund, 3 has none
            (1, 1, "payment", 15_000),
            (2, 1, "refund", 5_000),
            (3, 2, "payment", 15_000),
        ]
        with db.engine.begin() as conn:
            for sid, amount, fees in settlements:
                conn.execute(
                    sa.text(
                        "INSERT INTO settlements (id, razorpay_settlement_id, status, amount,"
                        " fees, tax, settled_at, ingested_at) VALUES (:id, :rid, 'processed',"
                        " :amount, :fees, 0, :at, :at)"
                    ),
                    {"id": sid, "rid": f"setl_{sid}", "amount": amount, "fees": fees,
                     "at": utcnow()},
                )  # fmt: skip
            for iid, sid, kind, amount in items:
                conn.execute(
                    sa.text(
                        "INSERT INTO settlement_items (id, settlement_id, entity_id,"
                        " entity_type, amount, fee, tax) VALUES (:id, :sid, :eid, :kind,"
                        " :amount, 0, 0)"
                    ),
                    {"id": iid, "sid": sid, "eid": f"x_{iid}", "kind": kind, "amount": amount},
                )
        upgrade()
        with db.engine.connect() as conn:
            complete = conn.execute(
                sa.text("SELECT id, rows_complete FROM settlements ORDER BY id")
            ).all()
            signs = conn.execute(
                sa.text("SELECT COUNT(*) FROM settlement_items WHERE credit IS NOT NULL"
                        " OR debit IS NOT NULL")
            ).scalar()  # fmt: skip
        assert [(i, bool(c)) for i, c in complete] == [(1, True), (2, False), (3, True)]
        assert signs == 0
        db.engine.dispose()


@pytest.mark.parametrize("engine", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_the_fee_captures_backfill_records_each_fee_payment_its_reschedule_does_not(
    tmp_path, engine
):
    """rfc0a7e0001: a fee payment already put in the wallet that its reschedule does not
    record (the wrong amount, a second payment) gets its ``reschedule_fee_captures`` row
    from its wallet credit; the payment a reschedule records (paid after the request
    ended) gets none. rfc0a7e0002: unless it was the wrong amount, which gets its row and
    leaves the reschedule's."""
    import time_machine

    from portal.accounts.models import User
    from portal.booking import visits
    from portal.booking.models import Reschedule
    from portal.booking.reschedule_payment import UNAPPLIED, unapplied_key
    from portal.db import unit_of_work
    from portal.ledger import accounts as chart
    from portal.ledger.service import credit, debit, post
    from tests.booking.factories import NOW, at, build_world

    url = _database_url(engine, tmp_path / "fees.sqlite3")
    app = create_app(_test_config(url))
    with app.app_context(), time_machine.travel(NOW, tick=False):
        upgrade()
        w = build_world()
        patient, admin = db.session.get(User, w.patients[0]), db.session.get(User, w.admin)
        item = visits.add_item(
            admin,
            patient_id=patient.id,
            service_id=w.consult,
            provider_ids=[w.doctors[0]],
            clinic_id=w.clinic,
            start_at=at(4, 10),
        )
        credits = {  # label: status, the payment its row records, the one paid, amount
            "wrong": ("PENDING_PAYMENT", None, "pay_wrong", 100),  # recorded now
            "late": ("EXPIRED", "pay_late", "pay_late", 6_195),  # paid late: its row's
            # The wrong amount paid late (rfc0a7e0002): its row recorded it, as the fee.
            "late_wrong": ("EXPIRED", "pay_tiny", "pay_tiny", 100),
            "second": ("DONE", "pay_first", "pay_second", 6_195),  # recorded now
        }
        ids = {}
        with unit_of_work():
            for label, (status, recorded, paid, amount) in credits.items():
                r = Reschedule(
                    booking_id=item.id,
                    visit_id=item.master_id,
                    old_start=at(4, 10),
                    old_end=at(4, 10, 30),
                    new_start=at(7, 11),
                    new_end=at(7, 11, 30),
                    notice_minutes=3_600,
                    penalty_bps=1_000,
                    penalty=5_000,
                    platform_fee=250,
                    gst=945,
                    total=6_195,
                    pay_with="GATEWAY",
                    status=status,
                    razorpay_payment_id=recorded,
                )
                db.session.add(r)
                db.session.flush()
                ids[label] = r.id
                post(
                    UNAPPLIED,
                    [
                        debit(chart.GATEWAY_CLEARING, amount),
                        credit(chart.patient_wallet(patient.id), amount),
                    ],
                    reference=("reschedule", r.id),
                    idempotency_key=unapplied_key(r.id, paid),
                )
        db.session.remove()
        downgrade(revision="wkhours00001")
        upgrade()
        with db.engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT reschedule_id, razorpay_payment_id, amount, captured_at IS NOT NULL"
                " FROM reschedule_fee_captures ORDER BY reschedule_id"
            ).all()
            recorded = dict(
                conn.exec_driver_sql("SELECT id, razorpay_payment_id FROM reschedules").all()
            )
        assert [tuple(r) for r in rows] == [
            (ids["wrong"], "pay_wrong", 100, True),
            (ids["late_wrong"], "pay_tiny", 100, True),
            (ids["second"], "pay_second", 6_195, True),
        ]
        # The fee paid late stays its row's; the wrong amount paid late is its row's no more.
        assert recorded[ids["late"]] == "pay_late" and recorded[ids["late_wrong"]] is None
        db.engine.dispose()


@pytest.mark.parametrize("engine", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_each_wrong_amount_capture_gets_a_row_of_its_own_and_the_flag(tmp_path, engine):
    """pmu0a1d0001: a capture of the wrong amount written onto its order's row moves to a
    row of its own (the order's row left uncaptured); one overwritten there by the capture
    that paid gets its row back from its timeline entry; ``unapplied`` is set on the rows
    that paid for nothing and not on the row that paid."""
    import time_machine

    from portal.accounts.models import User
    from portal.booking import visits
    from portal.db import unit_of_work
    from portal.payments.models import AttemptNote, Payment, PaymentAttempt
    from tests.booking.factories import NOW, at, build_world

    url = _database_url(engine, tmp_path / "unapplied.sqlite3")
    app = create_app(_test_config(url))
    with app.app_context(), time_machine.travel(NOW, tick=False):
        upgrade()
        w = build_world()
        admin = db.session.get(User, w.admin)
        item = visits.add_item(
            admin,
            patient_id=w.patients[0],
            service_id=w.consult,
            provider_ids=[w.doctors[0]],
            clinic_id=w.clinic,
            start_at=at(4, 10),
        )
        wrong_at = NOW - timedelta(minutes=5)

        def payment(status, ref, captured=None, method=None, attempts=()):
            row = Payment(
                master_id=item.master_id,
                kind="ORDER",
                amount=52_950,
                status=status,
                razorpay_payment_id=ref,
                captured_amount=captured,
                method=method,
                paid_at=NOW if status == "SUCCESSFUL" else None,
            )
            db.session.add(row)
            db.session.flush()
            for event, note, attempt_ref, detail in attempts:
                db.session.add(
                    PaymentAttempt(
                        payment_id=row.id,
                        event=event,
                        status=note,
                        razorpay_payment_id=attempt_ref,
                        detail=detail,
                        at=wrong_at if event == "captured_wrong_amount" else NOW,
                    )
                )
            return row.id

        wrong = ("captured_wrong_amount", AttemptNote.MISMATCH)
        with unit_of_work():
            # ₹1 captured, then the right amount overwrote the row's id (the bug)
            paid = payment(
                "SUCCESSFUL",
                "pay_right",
                52_950,
                "upi",
                [
                    (*wrong, "pay_lost", {"amount": 100, "expected": 52_950}),
                    ("webhook.captured", "SUCCESSFUL", "pay_right", {"amount": 52_950}),
                ],
            )
            # ₹2 captured on the order's row, which then expired
            expired = payment(
                "EXPIRED",
                "pay_wrong",
                200,
                "card",
                [(*wrong, "pay_wrong", {"amount": 200, "expected": 52_950})],
            )
            late = payment(
                "SUCCESSFUL",
                "pay_late",
                52_950,
                "upi",
                [("captured_unapplied", "SUCCESSFUL", "pay_late", {"reason": "LATE"})],
            )
        db.session.remove()
        downgrade(revision="mmb0d1sc0001")
        upgrade()
        with db.engine.connect() as conn:
            rows = {
                r.razorpay_payment_id: r
                for r in conn.execute(
                    sa.text(
                        "SELECT id, status, amount, captured_amount, method, late_for_id,"
                        " paid_at, unapplied, razorpay_payment_id FROM payments"
                    )
                )
            }
            moved = dict(
                conn.execute(
                    sa.text(
                        "SELECT razorpay_payment_id, payment_id FROM payment_attempts"
                        " WHERE event = 'captured_wrong_amount'"
                    )
                ).all()
            )

        def shape(ref):
            r = rows[ref]
            return (r.status, r.amount, r.captured_amount, r.method, r.late_for_id, r.unapplied)

        assert shape("pay_right") == ("SUCCESSFUL", 52_950, 52_950, "upi", None, False)
        assert rows["pay_right"].id == paid
        assert shape("pay_lost") == ("SUCCESSFUL", 100, 100, None, paid, True)
        assert shape("pay_wrong") == ("SUCCESSFUL", 200, 200, "card", expired, True)
        assert rows["pay_late"].id == late and rows["pay_late"].unapplied
        # The order's row that expired is left uncaptured, as it would be now.
        [left] = [r for r in rows.values() if r.id == expired]
        assert (left.status, left.captured_amount, left.method, left.unapplied) == (
            "EXPIRED",
            None,
            None,
            False,
        )
        assert moved == {"pay_lost": rows["pay_lost"].id, "pay_wrong": rows["pay_wrong"].id}
        assert rows["pay_lost"].paid_at is not None
        db.engine.dispose()


@pytest.mark.parametrize("engine", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_refunds_sent_before_their_request_times_were_kept_take_their_creation(tmp_path, engine):
    """rcn0a7e1001: a gateway refund already sent (an attempt made, or Razorpay's id known)
    gets its creation as its first and latest request, the time reconciliation compared
    before; one never sent and a wallet refund get none."""
    import time_machine

    from portal.accounts.models import User
    from portal.booking import visits
    from portal.db import unit_of_work
    from portal.refunds.models import Refund
    from tests.booking.factories import NOW, at, build_world

    url = _database_url(engine, tmp_path / "rq.sqlite3")
    app = create_app(_test_config(url))
    with app.app_context(), time_machine.travel(NOW, tick=False):
        upgrade()
        w = build_world()
        patient, admin = db.session.get(User, w.patients[0]), db.session.get(User, w.admin)
        item = visits.add_item(
            admin,
            patient_id=patient.id,
            service_id=w.consult,
            provider_ids=[w.doctors[0]],
            clinic_id=w.clinic,
            start_at=at(4, 10),
        )
        made = {  # label: destination, attempts, Razorpay's id, created
            "sent": ("GATEWAY", 2, "rfnd_sent", NOW - timedelta(days=2)),
            "known": ("GATEWAY", 0, "rfnd_known", NOW - timedelta(days=1)),
            "unsent": ("GATEWAY", 0, None, NOW),
            "wallet": ("WALLET", 0, None, NOW),
        }
        ids = {}
        with unit_of_work():
            for label, (destination, attempts, rid, created) in made.items():
                refund = Refund(
                    booking_id=item.id,
                    visit_id=item.master_id,
                    patient_id=patient.id,
                    amount=1_000,
                    destination=destination,
                    razorpay_payment_id="pay_1" if destination == "GATEWAY" else None,
                    razorpay_refund_id=rid,
                    idempotency_key=f"key-{label}",
                    attempts=attempts,
                    created_at=created,
                )
                db.session.add(refund)
                db.session.flush()
                ids[refund.id] = (label, created)
        db.session.remove()
        downgrade(revision="rfc0a7e0002")
        upgrade()
        with db.engine.connect() as conn:
            rows = conn.execute(
                sa.select(Refund.id, Refund.first_request_at, Refund.last_request_at).order_by(
                    Refund.id
                )
            ).all()
        got = {ids[rid][0]: (first, last) for rid, first, last in rows}
        created = {label: when for label, when in ids.values()}
        assert got == {
            "sent": (created["sent"], created["sent"]),
            "known": (created["known"], created["known"]),
            "unsent": (None, None),
            "wallet": (None, None),
        }
        db.engine.dispose()


def _name_keys(*ids):
    """{dependent id: name_key} of these rows, as the model reads them."""
    from portal.accounts.models import Dependent

    return dict(
        db.session.execute(
            sa.select(Dependent.id, Dependent.name_key).where(Dependent.id.in_(ids))
        ).all()
    )


@pytest.mark.parametrize("engine", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_dependents_duplicated_before_the_rule_survive_it(tmp_path, engine):
    """depident0001: a database holding the same child twice (a double click before the
    rule) upgrades; both rows stay (visits may name either), the first keyed, the later
    one not; the same child added again is refused, and so is the later row saved under
    its name (it is compared on every save, not only once renamed), until it is renamed.
    The downgrade keeps every row and drops the key and both indexes; upgrading again
    works on what it left."""
    from datetime import date

    from portal.accounts import dependents
    from portal.accounts.models import User
    from portal.db import utcnow
    from tests.booking.factories import build_world

    url = _database_url(engine, tmp_path / "dd.sqlite3")
    app = create_app(_test_config(url))
    with app.app_context():
        upgrade()
        patient_id = build_world().patients[1]
        db.session.remove()
        downgrade(revision="holdrsn00001")
        rows = [(901, "Diya Sharma", date(2018, 4, 1)), (902, "diya  sharma", date(2018, 4, 1))]
        rows += [(903, "Riya Sharma", None), (904, "Riya Sharma", None)]
        with db.engine.begin() as conn:
            for row_id, name, born in rows:
                conn.execute(
                    sa.text(
                        "INSERT INTO dependents (id, guardian_id, name, relationship,"
                        " date_of_birth, created_at) VALUES (:id, :g, :name, 'child', :born, :at)"
                    ),
                    {"id": row_id, "g": patient_id, "name": name, "born": born, "at": utcnow()},
                )
        upgrade()
        keys = _name_keys(901, 902, 903, 904)
        assert keys == {901: "diya sharma", 902: None, 903: "riya sharma", 904: None}
        guardian = db.session.get(User, patient_id)
        for name, born in (("Diya Sharma", date(2018, 4, 1)), ("RIYA sharma", None)):
            with pytest.raises(dependents.DuplicateDependent):
                dependents.add_dependent(guardian, name, "child", born)
        with pytest.raises(dependents.DuplicateDependent) as same:
            dependents.update_dependent(guardian, 902, "diya  sharma", "other", date(2018, 4, 1))
        assert same.value.dependent_id == 901
        db.session.remove()
        guardian = db.session.get(User, patient_id)
        renamed = dependents.update_dependent(
            guardian, 902, "Diya Rani Sharma", "child", date(2018, 4, 1)
        )
        assert renamed.name_key == "diya rani sharma"
        db.session.remove()

        downgrade(revision="holdrsn00001")
        with db.engine.connect() as conn:
            inspector = sa.inspect(conn)
            columns = {c["name"] for c in inspector.get_columns("dependents")}
            indexes = {i["name"] for i in inspector.get_indexes("dependents")}
            names = dict(
                conn.execute(
                    sa.text("SELECT id, name FROM dependents WHERE id IN (901, 902, 903, 904)")
                ).all()
            )
        assert "name_key" not in columns
        assert not indexes & {"uq_dependents_person", "uq_dependents_person_undated"}
        assert names == {
            901: "Diya Sharma",
            902: "Diya Rani Sharma",
            903: "Riya Sharma",
            904: "Riya Sharma",
        }
        upgrade()
        keys = _name_keys(901, 902, 903, 904)
        assert keys == {901: "diya sharma", 902: "diya rani sharma", 903: "riya sharma", 904: None}
        db.session.remove()
        db.engine.dispose()


def _movement_tds(conn):
    """{(source, source_id): tds} of every console row, as stored."""
    rows = conn.execute(sa.text("SELECT source, source_id, tds FROM money_movements"))
    return {(r.source, r.source_id): r.tds for r in rows}


def _covering_includes(conn):
    """The summed columns each covering index carries (PostgreSQL's INCLUDE)."""
    found = conn.execute(
        sa.text(
            "SELECT indexname, indexdef FROM pg_indexes WHERE indexname IN"
            " ('ix_money_movements_time', 'ix_money_movements_type_time')"
        )
    ).all()
    return {name: definition.split("INCLUDE", 1)[1].strip() for name, definition in found}


@pytest.mark.parametrize("engine", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_payout_rows_written_before_the_tds_column_get_their_payouts_tds(tmp_path, engine):
    """mmtds0a10001: payout rows of the console written before ``money_movements.tds``
    take their payout's TDS (0 where none was withheld); other rows none. On PostgreSQL
    the summed indexes carry it. Downgrade drops it and puts the indexes back; upgrading
    again fills it again."""
    from portal.payouts import models as pm
    from tests.booking.factories import build_world

    url = _database_url(engine, tmp_path / "tds.sqlite3")
    app = create_app(_test_config(url))
    with app.app_context():
        upgrade()
        doctor = build_world().doctors[0]
        account = pm.FundAccount(
            provider_id=doctor, kind=pm.VPA, holder_name="Asha Rao", status="VALIDATED"
        )
        db.session.add(account)
        db.session.flush()
        made = {}
        for n, (gross, tds) in enumerate([(6_000_005, 600_001), (40_000, 0)]):
            payout = pm.Payout(
                provider_id=doctor, fund_account_id=account.id, kind=pm.CYCLE_KIND,
                financial_year="2026-27", gross=gross, tds=tds, net=gross - tds, mode="UPI",
                tds_rate_bps=1_000, tds_threshold=5_000_000, idempotency_key=f"tds-migration-{n}",
            )  # fmt: skip
            db.session.add(payout)
            db.session.flush()
            made[("payout", payout.id)] = tds
        db.session.commit()
        db.session.remove()
        with db.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO money_movements (source, source_id, type, status, failed,"
                    " occurred_at, amount, net, version, updated_at) VALUES ('payment', 1,"
                    " 'payment_online', 'SUCCESSFUL', false, :at, 10000, 10000, 1, :at)"
                ),
                {"at": datetime(2026, 11, 2, tzinfo=UTC)},
            )
            assert _movement_tds(conn) == {**made, ("payment", 1): None}

        downgrade(revision="depident0001")
        with db.engine.connect() as conn:
            columns = {c["name"] for c in sa.inspect(conn).get_columns("money_movements")}
            assert "tds" not in columns
            if engine == "postgres":
                assert set(_covering_includes(conn).values()) == {
                    "(bucket, amount, net, gateway_fee)"
                }
        upgrade()
        with db.engine.connect() as conn:
            assert _movement_tds(conn) == {**made, ("payment", 1): None}
            if engine == "postgres":
                assert set(_covering_includes(conn).values()) == {
                    "(bucket, amount, net, gateway_fee, tds)"
                }
        db.engine.dispose()


@pytest.mark.parametrize("engine", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_account_mails_sent_before_they_said_whose_take_their_users_id(tmp_path, engine):
    """dlvusr0a0001: a mail's delivery without a user (an account mail queued by address
    only) takes the id of the user the address belongs to; one to an address no account
    has, a text message, and a delivery that names its user are left as they are."""
    from portal.accounts.models import User
    from tests.booking.factories import build_world

    url = _database_url(engine, tmp_path / "dlv.sqlite3")
    app = create_app(_test_config(url))
    at = datetime(2026, 11, 2, tzinfo=UTC)
    with app.app_context():
        upgrade()
        world = build_world()
        patient, other = (db.session.get(User, i) for i in world.patients[:2])
        patient_id, other_id, email = patient.id, other.id, patient.email
        db.session.remove()
        downgrade(revision="mmtds0a10001")
        mail = sa.text(
            'INSERT INTO mail_messages (id, "to", subject, text, status, attempts, created_at)'
            " VALUES (:id, :to, 'Reset your Clinic Portal password', 'a link', 'sent', 1, :at)"
        )
        delivery = sa.text(
            "INSERT INTO deliveries (id, mail_id, user_id, channel, recipient, kind, status,"
            " attempts, created_at, updated_at)"
            " VALUES (:id, :mail, :user, :channel, :to, 'mail', 'sent', 1, :at, :at)"
        )
        rows = [  # (delivery, mail, user, channel, address)
            (801, 901, None, "email", email),
            (802, 902, None, "email", "nobody@example.com"),
            (803, None, None, "sms", email),
            (804, 904, other_id, "email", email),
        ]
        with db.engine.begin() as conn:
            for row_id, mail_id, user_id, channel, to in rows:
                if mail_id:
                    conn.execute(mail, {"id": mail_id, "to": to, "at": at})
                conn.execute(
                    delivery,
                    {"id": row_id, "mail": mail_id, "user": user_id, "channel": channel,
                     "to": to, "at": at},
                )  # fmt: skip
        upgrade()
        with db.engine.connect() as conn:
            found = dict(
                conn.execute(
                    sa.text("SELECT id, user_id FROM deliveries WHERE id BETWEEN 801 AND 804")
                ).all()
            )
        assert found == {801: patient_id, 802: None, 803: None, 804: other_id}


def _old_payout(conn, payout_id, provider_id, account_id, fy, created_at):
    """A payout row as the schema before tdsrule00001 held it."""
    conn.execute(
        sa.text(
            "INSERT INTO payouts (id, provider_id, fund_account_id, kind, financial_year, gross,"
            " tds, net, mode, idempotency_key, status, attempts, held, alerted, returned,"
            " created_at, updated_at) VALUES (:id, :p, :a, 'CYCLE', :fy, 100000, 0, 100000,"
            " 'UPI', :key, 'PROCESSED', 1, false, false, false, :at, :at)"
        ).bindparams(sa.bindparam("at", type_=UTCDateTime)),
        {"id": payout_id, "p": provider_id, "a": account_id, "fy": fy, "key": f"tdsrule-{payout_id}",
         "at": created_at},
    )  # fmt: skip


def _payout_rules(conn):
    rows = conn.execute(sa.text("SELECT id, tds_rate_bps, tds_threshold FROM payouts ORDER BY id"))
    return {row.id: (row.tds_rate_bps, row.tds_threshold) for row in rows}


@pytest.mark.parametrize("engine", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_payouts_made_before_the_tds_rule_columns_get_the_rule_in_force_when_made(tmp_path, engine):
    """tdsrule00001: each payout takes the TDS rule of the policy version in force when it
    was made (approved versions only: a withdrawn or pending one never applied), the rule
    for its own financial year within it (the latest starting at or before the year, else
    the first); the columns are NOT NULL after. Downgrade drops them; upgrading again
    fills them again."""
    from portal.domain.policy import DEFAULT_POLICY, TdsRule
    from portal.domain.policy_data import to_data
    from portal.payouts import models as pm
    from portal.policies.models import PolicyVersion
    from tests.booking.factories import build_world

    url = _database_url(engine, tmp_path / "tdsrule.sqlite3")
    app = create_app(_test_config(url))

    def rules(*triples):
        values = to_data(
            DEFAULT_POLICY.with_changes(
                tds_rules=tuple(TdsRule(fy, bps, limit, "194J") for fy, bps, limit in triples)
            )
        )
        return values

    def at(month, day, year=2026):
        return datetime(year, month, day, 6, 0, tzinfo=UTC)

    with app.app_context():
        upgrade()
        doctor = build_world().doctors[0]
        account = pm.FundAccount(
            provider_id=doctor, kind=pm.VPA, holder_name="Asha Rao", status="VALIDATED"
        )
        versions = [  # (effective from, status, rules)
            (datetime(2000, 1, 1, tzinfo=UTC), "APPROVED", [("2025-26", 1_000, 5_000_000)]),
            (at(11, 10), "APPROVED", [("2025-26", 500, 5_000_000)]),
            (at(11, 12), "WITHDRAWN", [("2025-26", 2_000, 5_000_000)]),
            (at(11, 13), "PENDING", [("2025-26", 3_000, 5_000_000)]),
            (
                at(11, 14),
                "APPROVED",
                [("2025-26", 500, 6_000_000), ("2027-28", 200, 7_000_000)],
            ),
        ]
        db.session.add(account)
        for effective, status, triples in versions:
            db.session.add(
                PolicyVersion(values=rules(*triples), effective_from=effective, status=status)
            )
        db.session.commit()
        account_id = account.id
        db.session.remove()
        downgrade(revision="dlvusr0a0001")
        made = {  # payout id: (financial year, made at, the rule expected)
            1: ("2026-27", at(11, 1), (1_000, 5_000_000)),  # version 1
            2: ("2026-27", at(11, 10), (500, 5_000_000)),  # version 2, from that very moment
            3: ("2026-27", at(11, 12, 2026) + timedelta(hours=1), (500, 5_000_000)),  # not 3, 4
            4: ("2026-27", at(11, 20), (500, 6_000_000)),  # version 5, this year's rule
            5: ("2027-28", at(4, 5, 2027), (200, 7_000_000)),  # version 5, next year's rule
            6: ("2024-25", at(11, 20), (500, 6_000_000)),  # before every rule: the first
        }
        with db.engine.begin() as conn:
            for payout_id, (fy, created, _rule) in made.items():
                _old_payout(conn, payout_id, doctor, account_id, fy, created)
        upgrade()
        expected = {payout_id: rule for payout_id, (_fy, _at, rule) in made.items()}
        with db.engine.connect() as conn:
            assert _payout_rules(conn) == expected
            columns = {c["name"]: c for c in sa.inspect(conn).get_columns("payouts")}
            assert not columns["tds_rate_bps"]["nullable"]
            assert not columns["tds_threshold"]["nullable"]
        downgrade(revision="dlvusr0a0001")
        with db.engine.connect() as conn:
            columns = {c["name"] for c in sa.inspect(conn).get_columns("payouts")}
            assert not {"tds_rate_bps", "tds_threshold"} & columns
        upgrade()
        with db.engine.connect() as conn:
            assert _payout_rules(conn) == expected
        db.engine.dispose()


def test_payouts_made_before_any_policy_version_get_the_apps_policy(tmp_path):
    """tdsrule00001 without any policy version (no edit was ever made): the app's POLICY
    setting was in force, as ``policies.store`` reads it."""
    from portal.domain.policy import DEFAULT_POLICY, TdsRule
    from portal.payouts import models as pm
    from tests.booking.factories import build_world

    own = DEFAULT_POLICY.with_changes(tds_rules=(TdsRule("2025-26", 750, 4_000_000, "194J"),))
    app = create_app(_test_config(f"sqlite:///{tmp_path / 'tdsdefault.sqlite3'}", POLICY=own))
    with app.app_context():
        upgrade()
        doctor = build_world().doctors[0]
        account = pm.FundAccount(
            provider_id=doctor, kind=pm.VPA, holder_name="Asha Rao", status="VALIDATED"
        )
        db.session.add(account)
        db.session.commit()
        account_id = account.id
        db.session.remove()
        downgrade(revision="dlvusr0a0001")
        with db.engine.begin() as conn:
            _old_payout(conn, 1, doctor, account_id, "2026-27", datetime(2026, 11, 1, tzinfo=UTC))
        upgrade()
        with db.engine.connect() as conn:
            assert _payout_rules(conn) == {1: (750, 4_000_000)}
        db.engine.dispose()


@pytest.mark.parametrize("engine", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_addresses_stored_before_the_nfkc_rule_are_keyed_and_kept(tmp_path, engine):
    """emkey0000001: each user's folded address becomes its ``email_key``; nothing stored
    in ``email`` changes. Twins stored before the rule (a plain and a full-width form, two
    accounts): the plain one takes the key, the twin keeps none (UNIQUE); a full-width
    address alone takes its folded key, so either form finds it."""
    url = _database_url(engine, tmp_path / "emkey.sqlite3")
    app = create_app(_test_config(url))
    wide, plain = "\uff50riya@example.com", "priya@example.com"
    with app.app_context():
        upgrade(revision="ver0e1d17002")
        user = sa.text(
            "INSERT INTO users (id, email, name, role, active, created_at, session_version,"
            " failed_logins, language) VALUES (:id, :email, 'P', 'patient', true, :at, 0, 0,"
            " 'en')"
        ).bindparams(sa.bindparam("at", type_=UTCDateTime))
        at = datetime(2026, 11, 2, tzinfo=UTC)
        rows = {1: wide, 2: plain, 3: "\uff41sha@example.com", 4: "Ravi@Example.com"}
        with db.engine.begin() as conn:
            for user_id, email in rows.items():
                conn.execute(user, {"id": user_id, "email": email, "at": at})
        upgrade()
        with db.engine.connect() as conn:
            found = dict(conn.execute(sa.text("SELECT email, email_key FROM users")).all())
        assert found == {
            wide: None,
            plain: plain,
            "\uff41sha@example.com": "asha@example.com",
            "Ravi@Example.com": "ravi@example.com",
        }
        downgrade(revision="ver0e1d17002")
        with db.engine.connect() as conn:
            assert "email_key" not in {c["name"] for c in sa.inspect(conn).get_columns("users")}
        db.engine.dispose()


# A user row written with plain SQL (the wallet pay-out migrations' tests), as the schema
# of the revision under test has it.
_USER_ROW = sa.text(
    "INSERT INTO users (id, email, name, role, active, created_at, session_version,"
    " failed_logins, language) VALUES (:id, :email, 'U', :role, true, :at, 0, 0, 'en')"
).bindparams(sa.bindparam("at", type_=UTCDateTime))


@pytest.mark.parametrize("engine", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_bank_payout_kind_is_allowed_after_bankout00001(tmp_path, engine, capfd):
    """bankout00001: wallet_adjustments takes kind bank_payout (a debit with its UTR, the
    check refuses one without), money_movements.reference holds a 64-character desk
    receipt; down again, refused while a bank pay-out exists, then the old checks refuse
    one and the pay-outs' references are cleared (the old projector wrote none)."""
    url = _database_url(engine, tmp_path / "bank.sqlite3")
    app = create_app(_test_config(url))
    at = datetime(2026, 12, 7, tzinfo=UTC)
    user = _USER_ROW
    adjustment = sa.text(
        "INSERT INTO wallet_adjustments (id, patient_id, created_by_id, kind, amount,"
        " receipt_no, note, public_reason, status, window_total, needs_approval, created_at)"
        " VALUES (:id, 1, 2, :kind, -100, :ref, 'Paid out to the patient', 'x', 'APPLIED',"
        " 100, false, :at)"
    ).bindparams(sa.bindparam("at", type_=UTCDateTime))
    movement = sa.text(
        "INSERT INTO money_movements (source, source_id, type, status, failed, occurred_at,"
        " amount, net, reference, updated_at, version) VALUES ('wallet_adjustment', :id,"
        " 'cash_payout', 'APPLIED', false, :at, 100, -100, :ref, :at, 1)"
    ).bindparams(sa.bindparam("at", type_=UTCDateTime))
    with app.app_context():
        upgrade(revision="cash0de5c0001")
        with db.engine.begin() as conn:
            conn.execute(user, {"id": 1, "email": "p@example.com", "role": "patient", "at": at})
            conn.execute(user, {"id": 2, "email": "a@example.com", "role": "admin", "at": at})
            conn.execute(adjustment, {"id": 1, "kind": "cash_payout", "ref": "D-1", "at": at})
        with pytest.raises(sa.exc.IntegrityError), db.engine.begin() as conn:
            conn.execute(adjustment, {"id": 2, "kind": "bank_payout", "ref": "U" * 12, "at": at})
        upgrade()
        with db.engine.begin() as conn:
            conn.execute(
                adjustment, {"id": 2, "kind": "bank_payout", "ref": "412345678901", "at": at}
            )
            conn.execute(movement, {"id": 1, "ref": "R" * 64, "at": at})
        with pytest.raises(sa.exc.IntegrityError), db.engine.begin() as conn:
            conn.execute(adjustment, {"id": 3, "kind": "bank_payout", "ref": None, "at": at})
        with pytest.raises(SystemExit):  # flask_migrate logs "Error: ..." and exits
            downgrade(revision="cash0de5c0001")
        assert "wallet pay-out(s) by bank transfer exist" in "".join(capfd.readouterr())
        with db.engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM wallet_adjustments WHERE kind = 'bank_payout'"))
        downgrade(revision="cash0de5c0001")
        with db.engine.connect() as conn:
            assert conn.scalar(sa.text("SELECT reference FROM money_movements")) is None
            assert conn.scalar(sa.text("SELECT count(*) FROM wallet_adjustments")) == 1
        with pytest.raises(sa.exc.IntegrityError), db.engine.begin() as conn:
            conn.execute(
                adjustment, {"id": 2, "kind": "bank_payout", "ref": "412345678901", "at": at}
            )
        upgrade()
        db.engine.dispose()


@pytest.mark.postgres
def test_the_audit_logs_trigger_comes_and_goes_with_its_migration():
    """aud1t0nly0001: after it, PostgreSQL refuses a DELETE of an audit row (and an UPDATE
    of its action) but lets before/after change; after its downgrade, nothing is refused."""
    url = _fresh_postgres(os.environ.get("TEST_POSTGRES_URL", DEFAULT_PG))
    app = create_app(_test_config(url))
    insert = sa.text(
        "INSERT INTO audit_log (id, at, action, object_type) VALUES (:id, now(), 'a', 't')"
    )
    with app.app_context():
        upgrade(revision="bankout00001")
        with db.engine.begin() as conn:
            conn.execute(insert, {"id": 1})
        upgrade()
        for sql in ("DELETE FROM audit_log", "UPDATE audit_log SET action = 'b'"):
            with pytest.raises(sa.exc.DBAPIError, match="append-only"):
                with db.engine.begin() as conn:
                    conn.execute(sa.text(sql))
        with db.engine.begin() as conn:
            conn.execute(sa.text('UPDATE audit_log SET after = \'{"name": "[erased]"}\''))
        downgrade(revision="bankout00001")
        with db.engine.begin() as conn:
            conn.execute(sa.text("UPDATE audit_log SET action = 'b'"))
            conn.execute(sa.text("DELETE FROM audit_log"))
            assert conn.scalar(sa.text("SELECT count(*) FROM audit_log")) == 0
        db.engine.dispose()


@pytest.mark.postgres
def test_the_ledgers_trigger_comes_and_goes_with_its_migration():
    """ledg0nly0001: after it, PostgreSQL refuses an UPDATE and a DELETE of a ledger row,
    and the audit log keeps its rule on the shared function; after its downgrade, the
    ledger refuses nothing and the audit log has its own function again."""
    url = _fresh_postgres(os.environ.get("TEST_POSTGRES_URL", DEFAULT_PG))
    app = create_app(_test_config(url))
    rows = [
        "INSERT INTO ledger_accounts (id, code, kind, created_at) VALUES (1, 'a', 'asset', now())",
        "INSERT INTO ledger_transactions (id, kind, created_at) VALUES (1, 'k', now())",
        "INSERT INTO ledger_entries (id, transaction_id, account_id, amount) VALUES (1, 1, 1, 5)",
        "INSERT INTO audit_log (id, at, action, object_type) VALUES (1, now(), 'a', 't')",
    ]
    refused = [
        "UPDATE ledger_entries SET amount = 6",
        "UPDATE ledger_transactions SET memo = 'm'",
        "DELETE FROM ledger_entries",
        "TRUNCATE ledger_transactions CASCADE",
        "UPDATE audit_log SET action = 'b'",
        "DELETE FROM audit_log",
    ]

    def refuses(sql):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            with db.engine.begin() as conn:
                conn.execute(sa.text(sql))

    with app.app_context():
        upgrade(revision="aud1t0nly0001")
        with db.engine.begin() as conn:
            for sql in rows:
                conn.execute(sa.text(sql))
        upgrade()
        for sql in refused:
            refuses(sql)
        with db.engine.begin() as conn:
            conn.execute(sa.text('UPDATE audit_log SET after = \'{"name": "[erased]"}\''))
        downgrade(revision="aud1t0nly0001")
        refuses("UPDATE audit_log SET action = 'b'")
        with db.engine.begin() as conn:
            conn.execute(sa.text("UPDATE ledger_entries SET amount = 6"))
            conn.execute(sa.text("DELETE FROM ledger_entries"))
            conn.execute(sa.text("DELETE FROM ledger_transactions"))
            assert (
                conn.scalar(sa.text("SELECT count(*) FROM pg_proc WHERE proname = 'append_only'"))
                == 0
            )
        upgrade()
        db.engine.dispose()


@pytest.mark.parametrize("engine", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_utr_is_recorded_once_after_bankutr00001(tmp_path, engine, capfd):
    """bankutr00001: the UTR of an applied or waiting bank pay-out once, whatever the
    wallet (a rejected one frees it); refused while two already share one; down again,
    the index is gone."""
    url = _database_url(engine, tmp_path / "utr.sqlite3")
    app = create_app(_test_config(url))
    at = datetime(2026, 12, 7, tzinfo=UTC)
    user = _USER_ROW
    payout = sa.text(
        "INSERT INTO wallet_adjustments (id, patient_id, created_by_id, kind, amount,"
        " receipt_no, note, public_reason, status, window_total, needs_approval, created_at)"
        " VALUES (:id, :patient, 3, 'bank_payout', -100, '412345678901',"
        " 'Paid out to the patient', 'x', :status, 100, false, :at)"
    ).bindparams(sa.bindparam("at", type_=UTCDateTime))
    with app.app_context():
        upgrade(revision="ledg0nly0001")
        with db.engine.begin() as conn:
            for uid, role in ((1, "patient"), (2, "patient"), (3, "admin")):
                conn.execute(
                    user, {"id": uid, "email": f"u{uid}@example.com", "role": role, "at": at}
                )
            conn.execute(payout, {"id": 1, "patient": 1, "status": "APPLIED", "at": at})
            conn.execute(payout, {"id": 2, "patient": 2, "status": "APPLIED", "at": at})
        with pytest.raises(SystemExit):  # flask_migrate logs "Error: ..." and exits
            upgrade()
        assert "bank pay-outs share a UTR (412345678901)" in "".join(capfd.readouterr())
        with db.engine.begin() as conn:
            conn.execute(sa.text("UPDATE wallet_adjustments SET status = 'REJECTED' WHERE id = 2"))
        upgrade()
        with pytest.raises(sa.exc.IntegrityError), db.engine.begin() as conn:
            conn.execute(payout, {"id": 3, "patient": 2, "status": "PENDING_APPROVAL", "at": at})
        with db.engine.begin() as conn:  # a rejected one is free to repeat it
            conn.execute(payout, {"id": 3, "patient": 2, "status": "REJECTED", "at": at})
        downgrade(revision="ledg0nly0001")
        with db.engine.begin() as conn:
            conn.execute(payout, {"id": 4, "patient": 2, "status": "APPLIED", "at": at})
        db.engine.dispose()


@pytest.mark.parametrize("engine", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_fees_charged_before_feedoc000001_keep_the_number_they_were_issued_with(tmp_path, engine):
    """feedoc000001: a fee document already issued keeps ``<invoice>/R<id>`` (issued
    documents never change), a free move gets no number, and the fees charged after it
    are numbered in their own series; down again, the column and the counters are gone."""
    import time_machine

    from portal.accounts.models import User
    from portal.booking import visits
    from tests.booking.factories import NOW, at, build_world
    from tests.refunds.helpers import quoted_move

    url = _database_url(engine, tmp_path / "feedoc.sqlite3")
    app = create_app(_test_config(url))

    def move(admin, item_id, new_start):
        return quoted_move(admin, item_id, new_start, pay_with="desk", receipt_no="D-1").reschedule

    with app.app_context(), time_machine.travel(NOW, tick=False):
        upgrade()
        w = build_world()
        patient, admin = db.session.get(User, w.patients[0]), db.session.get(User, w.admin)
        soon = visits.add_item(
            admin,
            patient_id=patient.id,
            service_id=w.consult,
            provider_ids=[w.doctors[0]],
            clinic_id=w.clinic,
            start_at=at(2, 10),  # 50 h ahead: a fee to move it
        )
        later = visits.add_item(
            admin,
            patient_id=patient.id,
            service_id=w.consult,
            provider_ids=[w.doctors[1]],
            clinic_id=w.clinic,
            start_at=at(4, 10),  # 98 h ahead: moved for free
            visit_id=soon.master_id,
        )
        soon_id, later_id, visit_id = soon.id, later.id, soon.master_id
        quoted_desk_payment(admin, visit_id, "R-1")
        invoice_no = db.session.scalar(
            sa.text(f"SELECT invoice_no FROM visits WHERE id = {visit_id}")
        )
        first = move(admin, soon_id, at(2, 11)).id
        second = move(admin, soon_id, at(2, 12)).id
        free = move(admin, later_id, at(4, 11)).id
        db.session.remove()
        downgrade(revision="bankutr00001")
        upgrade()
        with db.engine.connect() as conn:
            numbers = dict(conn.exec_driver_sql("SELECT id, document_no FROM reschedules").all())
            counters = conn.exec_driver_sql("SELECT count(*) FROM fee_document_counters").scalar()
        assert numbers == {
            first: f"{invoice_no}/R{first}",
            second: f"{invoice_no}/R{second}",
            free: None,
        }
        assert counters == 0
        # The next fee opens the series; the one issued before keeps its number, unique.
        admin = db.session.get(User, w.admin)
        assert move(admin, soon_id, at(2, 13)).document_no == "RF/26-27/000001"
        with pytest.raises(sa.exc.IntegrityError), db.engine.begin() as conn:
            conn.exec_driver_sql(
                f"UPDATE reschedules SET document_no = '{invoice_no}/R{first}' WHERE id = {free}"
            )
        db.session.remove()
        downgrade(revision="bankutr00001")
        with db.engine.connect() as conn:
            inspector = sa.inspect(conn)
            assert "document_no" not in {c["name"] for c in inspector.get_columns("reschedules")}
            assert "fee_document_counters" not in inspector.get_table_names()
        db.engine.dispose()


@pytest.mark.parametrize("engine", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_events_stored_before_whmask000001_lose_full_account_numbers_and_closed_details(
    tmp_path, engine
):
    """whmask000001 (review rv_privacy): a validation event stored whole keeps only the
    last four digits and a masked UPI id; a card payment a closure erased before (no
    ``email``, no ``contact``) loses the cardholder's name and a UPI payment its
    ``upi.vpa``; a payment of an open account keeps its details; an event with nothing of
    that is not touched."""
    import json

    url = _database_url(engine, tmp_path / "whmask.sqlite3")
    app = create_app(_test_config(url))

    def event(event_id, name, entities):
        return {
            "source": "razorpayx" if name.startswith("fund_account") else "razorpay",
            "event_id": event_id,
            "event_type": name,
            "payload": json.dumps(
                {"event": name, "payload": {k: {"entity": v} for k, v in entities.items()}}
            ),
        }

    fund = {
        "id": "fa_1",
        "entity": "fund_account",
        "account_type": "bank_account",
        "bank_account": {"ifsc": "HDFC0000053", "account_number": "1121431121541121"},
    }
    upi_fund = {
        "id": "fa_2",
        "entity": "fund_account",
        "account_type": "vpa",
        "vpa": {"username": "asha.rao", "handle": "okhdfc", "address": "asha.rao@okhdfc"},
    }
    card = {"name": "Gaurav Kumar", "last4": "0153", "network": "Visa"}
    upi = {"payer_account_type": "bank_account", "vpa": "gaurav@upi"}
    rows = [
        event("v1", "fund_account.validation.completed",
              {"fund_account.validation": {"id": "fav_1", "fund_account": fund}}),
        event("v2", "fund_account.validation.completed",
              {"fund_account.validation": {"id": "fav_2", "fund_account": upi_fund}}),
        event("closed_card", "payment.captured",
              {"payment": {"id": "pay_1", "method": "card", "card": dict(card)}}),
        event("closed_upi", "payment.captured",
              {"payment": {"id": "pay_2", "method": "upi", "upi": dict(upi)}}),
        event("open_card", "payment.captured",
              {"payment": {"id": "pay_3", "email": "a@b.in", "contact": None, "card": dict(card)}}),
        event("other", "refund.processed", {"refund": {"id": "rfnd_1", "payment_id": "pay_3"}}),
    ]  # fmt: skip
    insert = sa.text(
        "INSERT INTO webhook_event (source, event_id, event_type, payload, signature_ok,"
        " received_at, attempts) VALUES (:source, :event_id, :event_type, :payload, :ok,"
        " :at, 0)"
    )
    with app.app_context():
        upgrade()
        with db.engine.begin() as conn:
            for row in rows:
                conn.execute(insert, {**row, "ok": True, "at": datetime(2026, 12, 1, tzinfo=UTC)})
            before = dict(conn.exec_driver_sql("SELECT event_id, payload FROM webhook_event").all())
        downgrade(revision="feedoc000001")
        upgrade()
        with db.engine.connect() as conn:
            after = dict(conn.exec_driver_sql("SELECT event_id, payload FROM webhook_event").all())
        db.engine.dispose()
    stored = {k: json.loads(v) if isinstance(v, str) else v for k, v in after.items()}

    def entity(event_id, kind):
        return stored[event_id]["payload"][kind]["entity"]

    text = json.dumps(stored)
    assert "1121431121541121" not in text and "asha.rao" not in text
    validation = entity("v1", "fund_account.validation")
    assert validation["fund_account"]["bank_account"] == {
        "ifsc": "HDFC0000053",
        "account_number": "••••1121",
    }
    assert entity("v2", "fund_account.validation")["fund_account"]["vpa"]["address"] == (
        "as••••••@okhdfc"
    )
    assert entity("closed_card", "payment")["card"] == {"last4": "0153", "network": "Visa"}
    assert entity("closed_upi", "payment")["upi"] == {"payer_account_type": "bank_account"}
    assert entity("open_card", "payment")["card"] == card
    assert after["other"] == before["other"]


@pytest.mark.parametrize("engine", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_failed_sign_ins_stored_before_audmail00001_keep_no_text_that_is_no_address(
    tmp_path, engine
):
    """audmail00001 (review rv_audit): a ``login_failed`` row whose ``after.email`` is no
    address (a password typed in the e-mail box, kept in clear) records only that it was
    none; an address (known or not), a closure's ``[erased]``, a reason row and every
    other action stay as they were. On PostgreSQL through the append-only trigger."""
    import json

    url = _database_url(engine, tmp_path / "audmail.sqlite3")
    app = create_app(_test_config(url))
    rows = {
        "password": ("login_failed", {"email": "tr0ub4dor&3-my-bank-pin"}),
        "at_sign": ("login_failed", {"email": "p@ssw0rd"}),
        "double_at": ("login_failed", {"email": "asha@@example.com"}),
        "address": ("login_failed", {"email": "nobody@example.com"}),
        "erased": ("login_failed", {"email": "[erased]"}),
        "reason": ("login_failed", {"reason": "locked"}),
        "other": ("user.update", {"email": "not an address"}),
    }
    insert = sa.text(
        "INSERT INTO audit_log (at, action, object_type, object_id, after)"
        " VALUES (:at, :action, 'user', :key, :after)"
    )
    with app.app_context():
        upgrade()
        with db.engine.begin() as conn:
            for key, (action, after) in rows.items():
                conn.execute(
                    insert,
                    {"at": datetime(2026, 12, 1, tzinfo=UTC), "action": action, "key": key,
                     "after": json.dumps(after)},
                )  # fmt: skip
        downgrade(revision="deact0claim1")
        upgrade()
        with db.engine.connect() as conn:
            stored = dict(conn.exec_driver_sql("SELECT object_id, after FROM audit_log").all())
        db.engine.dispose()
    stored = {k: json.loads(v) if isinstance(v, str) else v for k, v in stored.items()}
    none = {"email": None, "not_an_address": True}
    assert stored["password"] == stored["at_sign"] == stored["double_at"] == none
    for key in ("address", "erased", "reason", "other"):
        assert stored[key] == rows[key][1], key


@pytest.mark.parametrize("engine", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_pans_on_file_before_panshape0001_are_kept_as_the_rule_makes_them(tmp_path, engine, capfd):
    """panshape0001: a PAN written around the writers is normalised as the rule does (any
    whitespace trimmed, upper-cased; blank is none on file), then the column refuses any
    other, on both databases, and keeps its other checks (SQLite rebuilds the table); one
    still no PAN stops the upgrade, naming its provider; down again takes any value."""
    from tests.booking.factories import build_world

    url = _database_url(engine, tmp_path / "pans.sqlite3")
    app = create_app(_test_config(url))
    set_pan = sa.text("UPDATE providers SET pan = :pan WHERE id = :id")
    with app.app_context():
        upgrade()
        w = build_world()
        db.session.remove()
        downgrade(revision="feename00001")
        doctor, other, lab = w.doctors[0], w.doctors[1], w.lab_provider
        # PostgreSQL's varchar(10) holds no PAN with whitespace around it; SQLite's does.
        padded = "\tAADCB7319L\u00a0" if engine == "sqlite" else " aadcb7319"
        on_file = {doctor: "abcpk1234l", other: "   ", lab: padded}
        with db.engine.begin() as conn:
            for provider_id, pan in on_file.items():
                conn.execute(set_pan, {"pan": pan, "id": provider_id})
        if engine == "postgres":  # " aadcb7319" is no PAN once trimmed: the upgrade stops
            with pytest.raises(SystemExit):  # flask_migrate logs "Error: ..." and exits
                upgrade()
            assert f"providers {lab} have a PAN on file that is not one" in "".join(
                capfd.readouterr()
            )
            with db.engine.begin() as conn:
                conn.execute(set_pan, {"pan": "aadcb7319l ", "id": lab})
        upgrade()
        with db.engine.begin() as conn:
            stored = dict(conn.execute(sa.text("SELECT id, pan FROM providers")).all())
            assert (stored[doctor], stored[other], stored[lab]) == (
                "ABCPK1234L",
                None,
                "AADCB7319L",
            )
        for wrong in ("abcpk1234l", "ABCPK1234\t", "ABCPK1234"):
            with pytest.raises(sa.exc.IntegrityError), db.engine.begin() as conn:
                conn.execute(set_pan, {"pan": wrong, "id": other})
        with pytest.raises(sa.exc.IntegrityError), db.engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE providers SET commission_bps = 20000 WHERE id = :id"),
                {"id": other},
            )
        downgrade(revision="feename00001")
        with db.engine.begin() as conn:
            conn.execute(set_pan, {"pan": "abcpk1234l", "id": other})
            assert conn.scalar(
                sa.text("SELECT pan FROM providers WHERE id = :id"), {"id": lab}
            ) == ("AADCB7319L")
        db.engine.dispose()
