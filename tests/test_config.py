"""Settings: every tunable comes from the environment with its default, a bad value stops
the start-up with a message naming the variable, and the README lists every one."""

import os
import pathlib
import re
import socket
import subprocess
import sys
from datetime import date

import pytest

from portal import config
from portal.config import TUNABLES, ConfigError, from_environment, policy, setting
from portal.domain.policy import DEFAULT_POLICY
from tests.plugin import PROD_SECRETS

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
EMBEDDED = {"SECRET_KEY": "s" * 32}


def test_defaults_fill_the_config(tmp_path):
    values = from_environment(str(tmp_path), EMBEDDED)
    assert set(TUNABLES) <= set(values)
    assert values["SLOT_STEP_MINUTES"] == 30 and values["BOOKING_HOLD_MINUTES"] == 15
    assert values["RAZORPAYX_RATE_LIMIT"] == 5.0 and values["RAZORPAYX_RATE_BURST"] is None
    assert values["MEET_LINK_DOMAINS"] == () and values["MAIL_SERVER"] is None
    assert values["NOTIFY_REMINDER_CHANNELS"] == ("email", "sms")


def test_values_come_from_the_environment(tmp_path):
    values = from_environment(
        str(tmp_path),
        {
            **EMBEDDED,
            "SLOT_STEP_MINUTES": "15",
            "REFUND_STRAGGLER_MINUTES": "20",
            "RAZORPAYX_RATE_LIMIT": "2.5",
            "RAZORPAYX_RATE_BURST": "4",
            "MEET_LINK_DOMAINS": "Whereby.com, *.jitsi.example",
            "MAIL_USE_TLS": "yes",
            "NOTIFY_REMINDER_CHANNELS": "email,whatsapp",
            "SETTLEMENT_HOLIDAYS": "2026-08-15, 2026-10-02,",
        },
    )
    assert values["SETTLEMENT_HOLIDAYS"] == {date(2026, 8, 15), date(2026, 10, 2)}
    assert values["SLOT_STEP_MINUTES"] == 15 and values["REFUND_STRAGGLER_MINUTES"] == 20
    assert values["RAZORPAYX_RATE_LIMIT"] == 2.5 and values["RAZORPAYX_RATE_BURST"] == 4.0
    assert values["MEET_LINK_DOMAINS"] == ("whereby.com", "jitsi.example")
    assert values["MAIL_USE_TLS"] is True
    assert values["NOTIFY_REMINDER_CHANNELS"] == ("email", "whatsapp")


@pytest.mark.parametrize(
    "name, value",
    [
        ("SLOT_STEP_MINUTES", "half an hour"),
        ("SLOT_STEP_MINUTES", "0"),
        ("BOOKING_HOLD_MINUTES", "-5"),
        ("RAZORPAYX_RATE_LIMIT", "fast"),
        ("RAZORPAYX_RATE_LIMIT", "nan"),
        ("RAZORPAYX_RATE_BURST", "0.5"),
        ("MEET_LINK_DOMAINS", "zoom"),
        ("LOGIN_RATE_LIMIT", "lots"),
        ("MAIL_USE_TLS", "maybe"),
        ("NOTIFY_REMINDER_CHANNELS", "email,pigeon"),
        ("SESSION_COOKIE_SECURE", "sometimes"),
        ("CLINIC_TAN", "BLRA1234E"),  # a TAN is four letters, five digits and a letter
        ("CLINIC_TAN", "ABCDE1234F"),  # a PAN, not a TAN
        ("SETTLEMENT_HOLIDAYS", "2026-08-15, 15/08/2026"),
        ("SETTLEMENT_WORKING_DAYS", "100000"),  # the overdue walk back would leave the calendar
    ],
)
def test_a_bad_value_names_the_variable(tmp_path, name, value):
    with pytest.raises(ConfigError, match=rf"^{name}=.*not usable"):
        from_environment(str(tmp_path), {**EMBEDDED, name: value})


def test_the_clinic_tan_is_empty_by_default_and_read_upper_cased(tmp_path):
    assert from_environment(str(tmp_path), EMBEDDED)["CLINIC_TAN"] == ""
    values = from_environment(str(tmp_path), {**EMBEDDED, "CLINIC_TAN": " blra12345e "})
    assert values["CLINIC_TAN"] == "BLRA12345E"


def test_prepared_statements_can_be_turned_off_for_a_pooler(tmp_path):
    pg = {**PROD_SECRETS, "DATABASE_URL": "postgresql://db/portal"}
    on = from_environment(str(tmp_path), pg)["SQLALCHEMY_ENGINE_OPTIONS"]
    assert on["hide_parameters"] is True  # no e-mails or hashes in a logged database error
    off = from_environment(str(tmp_path), {**pg, "DB_PREPARED_STATEMENTS": "false"})
    assert "connect_args" not in on  # psycopg's default: prepare after 5 runs
    assert off["SQLALCHEMY_ENGINE_OPTIONS"]["connect_args"] == {"prepare_threshold": None}


def test_a_bad_value_stops_create_app(monkeypatch):
    from portal import create_app

    monkeypatch.setenv("REFUND_RETRY_SECONDS", "soon")
    with pytest.raises(ConfigError, match="REFUND_RETRY_SECONDS"):
        create_app({"TESTING": True})


def test_production_needs_a_secret_key(tmp_path):
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        from_environment(str(tmp_path), {"DATABASE_URL": "postgresql://db/clinic"})


def test_setting_reads_the_app_and_falls_back_to_the_default(app):
    assert setting("SLOT_STEP_MINUTES") == 30  # no app context: the default
    with app.app_context():
        app.config["SLOT_STEP_MINUTES"] = 10
        try:
            assert setting("SLOT_STEP_MINUTES") == 10
        finally:
            app.config["SLOT_STEP_MINUTES"] = 30


def test_policy_is_the_apps_or_the_default(app):
    assert policy() is DEFAULT_POLICY
    changed = DEFAULT_POLICY.with_changes(note_min_length=20)
    with app.app_context():
        saved = app.config["POLICY"]
        app.config["POLICY"] = changed
        try:
            assert policy() is changed
        finally:
            app.config["POLICY"] = saved


def test_the_readme_lists_every_setting():
    first_cells = re.findall(r"^\| (`[^|]+)\|", README.read_text(), re.M)
    listed = {name for cell in first_cells for name in re.findall(r"`([A-Z0-9_]+)`", cell)}
    missing = set(TUNABLES) - listed
    assert not missing, f"add to the README's settings table: {sorted(missing)}"
    for tunable in TUNABLES.values():
        assert tunable.default_value is not None or tunable.default == ""  # defaults parse


def test_one_clinic_time_zone():
    """``Asia/Kolkata`` is spelled once, in portal/domain/timezone.py (the sandbox is
    Razorpay's side and keeps Razorpay's own zone)."""
    root = pathlib.Path(config.__file__).parent
    spelled = sorted(
        str(p.relative_to(root)) for p in root.rglob("*.py") if '"Asia/Kolkata"' in p.read_text()
    )
    assert spelled == ["domain/timezone.py", "gateway/sandbox/common.py"], spelled


def test_processes_starting_together_keep_one_whole_instance_secret(tmp_path, monkeypatch):
    """Test workers (or gunicorn workers) starting on a fresh checkout at the same moment:
    each reads the same complete secret, never an empty file between create and write.
    Making the secret is slowed down so that the others arrive while it is made."""
    import secrets
    import threading
    import time

    from portal import config as cfg

    real = secrets.token_hex
    monkeypatch.setattr(cfg.secrets, "token_hex", lambda n: time.sleep(0.05) or real(n))
    directory, found, errors = str(tmp_path), [], []
    start = threading.Barrier(8)

    def read():
        start.wait()
        try:
            found.append(cfg._instance_secret(directory, "shared_secret"))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(set(found)) == 1 and len(found[0]) == 64


@pytest.mark.parametrize(
    "missing",
    [
        "RAZORPAY_KEY_ID",
        "RAZORPAY_KEY_SECRET",
        "RAZORPAY_WEBHOOK_SECRET",
        "RAZORPAYX_WEBHOOK_SECRET",
        "RAZORPAYX_ACCOUNT_NUMBER",
        "PUBLIC_URL",
    ],
)
def test_outside_the_embedded_mode_the_gateway_settings_are_required(tmp_path, missing):
    """Without them production started, said it was ready, then refused every webhook (an
    empty secret verifies nothing) and failed every checkout (review finding). The
    RazorpayX account (the sandbox's sample by default) only for Razorpay itself."""
    env = {**PROD_SECRETS, "DATABASE_URL": "postgresql://db/portal"}
    env["RAZORPAYX_ACCOUNT_NUMBER"] = "7878780080316316"
    from_environment(str(tmp_path), env)
    del env[missing]
    with pytest.raises(ConfigError, match=missing):
        from_environment(str(tmp_path), env)
    if missing == "RAZORPAYX_ACCOUNT_NUMBER":  # a sandbox of its own: its sample account
        from_environment(str(tmp_path), {**env, "RAZORPAY_BASE_URL": "http://127.0.0.1:5001"})


def test_xdist_workers_get_redis_databases_of_their_own_never_db_0():
    """Modulo 16, gw16 shared gw0's database (flushed under its tests) and gw15 reached db 0,
    the portal's own default (review finding): refused instead, and the Makefile caps
    -n auto at 12 workers."""
    from tests.plugin import _per_worker_redis

    url = "redis://127.0.0.1:6379/15"
    own = {_per_worker_redis(url, f"gw{i}") for i in range(15)}
    assert len(own) == 15 and url.replace("/15", "/0") not in own
    with pytest.raises(pytest.UsageError):
        _per_worker_redis(url, "gw15")


def test_the_redis_tests_fail_never_skip_without_redis(tmp_path):
    """The app on the real Redis (tests/plugin.py's ``rq_app``) serves the worker's tests,
    the jobs page's and the reminders' worker runs: with nothing answering at
    TEST_REDIS_URL each of them fails, naming Redis, and none is skipped (a run without the
    Redis its tests claim must not pass); the reminders' in-process run needs no Redis."""
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]  # closed again: nothing listens there
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PYTEST_") and k != "TEST_DATABASE_URL"
    }
    # Wide enough for the summary to keep each error's message beside its test.
    env.update(TEST_REDIS_URL=f"redis://127.0.0.1:{port}/9", COLUMNS="1000")
    reminders = "tests/notify/test_reminders.py::test_a_queued_reminder_whose_time_is_restored_before_it_runs_is_sent_once"
    needing_redis = [
        "tests/test_worker.py::test_an_item_is_handed_to_its_queue_after_the_commit",
        "tests/test_worker.py::test_the_worker_listens_to_every_queue_by_default",
        "tests/notify/test_jobs_page.py::test_requeue_of_a_periodic_job_puts_it_back_on_its_queue",
        f"{reminders}[worker]",
    ]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rA"]
        + ["--basetemp", str(tmp_path / "run"), *needing_redis, f"{reminders}[inline]"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    summary = [line for line in done.stdout.splitlines() if line.startswith(("ERROR", "FAILED"))]
    assert done.returncode == 1, done.stdout[-3000:]
    assert "skipped" not in done.stdout
    for test in needing_redis:
        [line] = [line for line in summary if line.split()[1] == test]
        assert (
            f"Redis is needed for this test and is not reachable at redis://127.0.0.1:{port}/9"
            in line
        )
    assert f"PASSED {reminders}[inline]" in done.stdout
