"""The sandbox under several processes: its state lives in a database of its own
(SANDBOX_DATABASE_URL), so a checkout begun in one process is served by another."""

import base64
import os
import threading

import pytest
import sqlalchemy as sa

from portal.gateway.sandbox import create_sandbox_app
from portal.gateway.sandbox.delivery import wsgi_transport
from portal.gateway.sandbox.shared import SharedLock, state_names
from portal.gateway.sandbox.store import SandboxStore

KEY = ("rzp_test_shared", "shared-secret")
AUTH = {"Authorization": "Basic " + base64.b64encode(":".join(KEY).encode()).decode()}


def _receiver(calls):
    def app(environ, start_response):
        calls.append(environ["PATH_INFO"])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    return app


def _process(url, calls):
    """One 'process': a sandbox app of its own (own memory, own lock) on the shared url."""
    app = create_sandbox_app(
        {
            "KEY_ID": KEY[0],
            "KEY_SECRET": KEY[1],
            "WEBHOOK_THREAD": False,
            "WEBHOOK_URL": "http://portal.test/webhooks/razorpay",
            "WEBHOOK_TRANSPORT": wsgi_transport(_receiver(calls)),
            "DATABASE_URL": url,
        }
    )
    return app, app.extensions["razorpay_sandbox"]


@pytest.fixture
def url(tmp_path):
    return "sqlite:///" + str(tmp_path / "sandbox.sqlite3")


@pytest.fixture
def pg_url():
    """The PostgreSQL test database (its own ``sandbox_state`` table, dropped after)."""
    from tests.plugin import DEFAULT_PG, ensure_postgres_database

    url = os.environ.get("TEST_POSTGRES_URL", DEFAULT_PG)
    ensure_postgres_database(url)
    yield url
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS sandbox_state"))
    engine.dispose()


def test_a_checkout_begun_in_one_process_is_served_by_another(url):
    _checkout_across_processes(url)


@pytest.mark.postgres
def test_a_checkout_across_processes_on_postgresql(pg_url):
    _checkout_across_processes(pg_url)


def _checkout_across_processes(url):
    calls = []
    app_a, sandbox_a = _process(url, calls)
    app_b, sandbox_b = _process(url, calls)
    a, b = app_a.test_client(), app_b.test_client()
    order = a.post("/v1/orders", json={"amount": 50_000, "receipt": "r1"}, headers=AUTH)
    assert order.status_code == 200, order.get_data(as_text=True)
    order_id = order.get_json()["id"]

    page = b.get(f"/checkout/{order_id}")
    assert page.status_code == 200 and "500.00" in page.get_data(as_text=True)
    paid = b.post(f"/checkout/{order_id}", data={"method": "upi", "outcome": "success"})
    assert paid.status_code == 200  # no callback_url: the parameters page

    # Process A sees what B did: the order is paid, with one captured payment.
    assert a.get(f"/v1/orders/{order_id}", headers=AUTH).get_json()["status"] == "paid"
    payments = a.get(f"/v1/orders/{order_id}/payments", headers=AUTH).get_json()["items"]
    assert [p["status"] for p in payments] == ["captured"]
    # B emitted the webhooks of the payment it took, and delivers them.
    sandbox_b.deliver_pending()
    assert calls and all(c == "/webhooks/razorpay" for c in calls)
    # A third process started later finds the same state; a reset anywhere empties it.
    _, sandbox_c = _process(url, calls)
    assert sandbox_c.store.get_order(order_id)["status"] == "paid"
    sandbox_a.reset()
    assert b.get(f"/v1/orders/{order_id}", headers=AUTH).status_code == 400  # Razorpay: no such id


def test_ids_never_repeat_across_processes(url):
    _, one = _process(url, [])
    _, two = _process(url, [])
    ids = [s.store.create_order({"amount": 100, "receipt": "x"})["id"] for s in (one, two) * 5]
    assert len(set(ids)) == 10


def test_concurrent_writers_lose_nothing(url):
    sandboxes = [_process(url, [])[1] for _ in range(3)]
    errors = []

    def create(sandbox):
        try:
            for _ in range(10):
                sandbox.store.create_order({"amount": 100, "receipt": "c"})
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=create, args=(s,)) for s in sandboxes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(sandboxes[0].store.list_orders({"count": 100})["items"]) == 30


def test_a_failed_block_leaves_the_shared_state_alone(url):
    _, one = _process(url, [])
    _, two = _process(url, [])
    one.store.create_order({"amount": 100, "receipt": "kept"})
    with pytest.raises(RuntimeError), one.store.lock:
        one.store.orders.clear()
        raise RuntimeError("half done")
    assert len(two.store.list_orders({})["items"]) == 1
    assert len(one.store.list_orders({})["items"]) == 1  # reloaded, not the half-done copy


def test_the_shared_state_is_what_reset_assigns():
    names = state_names(SandboxStore(key_id="k", key_secret="s"))
    assert {"orders", "payments", "links", "refunds", "payouts", "_schedule", "offset"} <= set(
        names
    )
    assert "lock" not in names and "key_secret" not in names


def test_reset_brings_the_clock_back_with_the_records():
    """A reset is an empty gateway at the portal's time: an earlier test's ``advance()``
    left the next one's sandbox days ahead (its day settled nothing, its payments were too
    new for a reconciliation run: CI saw both)."""
    store = SandboxStore(key_id="k", key_secret="s", clock=lambda: 1_780_000_000.0)
    store.advance(3 * 86_400)
    assert store.now_f() == 1_780_000_000.0 + 3 * 86_400
    store.reset()
    assert store.now_f() == 1_780_000_000.0


def test_the_lock_is_reentrant(url):
    store = SandboxStore(key_id="k", key_secret="s")
    store.lock = SharedLock(store, url)
    with store.lock, store.lock:
        store.orders["order_x"] = {"id": "order_x", "created_at": 1}
    other = SandboxStore(key_id="k", key_secret="s")
    other.lock = SharedLock(other, url)
    with other.lock:
        assert "order_x" in other.orders


def test_the_record_faults_set_in_one_process_are_answered_by_another(url):
    """The reconciliation faults that describe the gateway's records live in the shared
    state (review finding: the demo's loader set them in its own memory, and the served
    gateway answered clean, so a sync "matched" an amount the run found altered)."""
    calls = []
    app_a, sandbox_a = _process(url, calls)
    app_b, sandbox_b = _process(url, calls)
    a, b = app_a.test_client(), app_b.test_client()
    order = a.post("/v1/orders", json={"amount": 50_000, "receipt": "r1"}, headers=AUTH)
    payment = sandbox_a.store.pay_order(order.get_json()["id"])
    other = sandbox_a.store.pay_order(
        a.post("/v1/orders", json={"amount": 100, "receipt": "r2"}, headers=AUTH).get_json()["id"]
    )
    sandbox_a.set_faults(
        alter={payment["id"]: {"amount": 60_000}}, duplicate=[payment["id"]], hide=[other["id"]]
    )
    assert b.get(f"/v1/payments/{payment['id']}", headers=AUTH).get_json()["amount"] == 60_000
    assert b.get(f"/v1/payments/{other['id']}", headers=AUTH).status_code == 400
    listed = b.get("/v1/payments", headers=AUTH).get_json()["items"]
    assert [p["id"] for p in listed] == [payment["id"], payment["id"]]
    assert sandbox_b.faults.snapshot()["duplicate"] == [payment["id"]]
    # A process starting later keeps them; undoing only a process's own faults keeps them.
    _, sandbox_c = _process(url, calls)
    sandbox_c.reset_faults(records=False)
    assert b.get(f"/v1/payments/{payment['id']}", headers=AUTH).get_json()["amount"] == 60_000
    sandbox_c.reset_faults()
    assert b.get(f"/v1/payments/{payment['id']}", headers=AUTH).get_json()["amount"] == 50_000


def test_an_api_answer_reads_the_shared_state_twice_whatever_its_faults(url, monkeypatch):
    """One hold of the shared lock (a database transaction) for the clock and the record
    faults, one for the handler (review finding: the faults were read apart after the
    handler, once to ask whether any was set and again to shape, 3-4 per answer), and
    the answer is still shaped by them."""
    app, sandbox = _process(url, [])
    client = app.test_client()
    order = client.post("/v1/orders", json={"amount": 50_000, "receipt": "r1"}, headers=AUTH)
    payment = sandbox.store.pay_order(order.get_json()["id"])
    begun = []
    monkeypatch.setattr(
        SharedLock, "_begin", lambda self, _begin=SharedLock._begin: begun.append(1) or _begin(self)
    )
    client.get(f"/v1/payments/{payment['id']}", headers=AUTH)
    assert len(begun) == 2
    sandbox.set_faults(alter={payment["id"]: {"amount": 60_000}}, duplicate=[payment["id"]])
    begun.clear()
    answer = client.get(f"/v1/payments/{payment['id']}", headers=AUTH)
    assert len(begun) == 2 and answer.get_json()["amount"] == 60_000
    begun.clear()
    listed = client.get("/v1/payments", headers=AUTH).get_json()["items"]
    assert len(begun) == 2 and [p["amount"] for p in listed] == [60_000, 60_000]
