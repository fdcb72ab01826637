"""The sandbox's webhook sender and its control API."""

import base64
import json
import threading
import time

import razorpay
from werkzeug.serving import make_server

from portal.gateway.sandbox import create_sandbox_app
from portal.gateway.sandbox.delivery import wsgi_transport
from portal.gateway.webhooks import sign_body, verify_signature


class Recorder:
    """A webhook receiver: records each request, answers the queued statuses, then 200."""

    def __init__(self, statuses=()):
        self.calls = []
        self.statuses = list(statuses)
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        with self.lock:
            self.calls.append(
                {
                    "path": environ["PATH_INFO"],
                    "body": body,
                    "signature": environ.get("HTTP_X_RAZORPAY_SIGNATURE"),
                    "event_id": environ.get("HTTP_X_RAZORPAY_EVENT_ID"),
                }
            )
            status = self.statuses.pop(0) if self.statuses else 200
        start_response(f"{status} Recorded", [("Content-Type", "text/plain")])
        return [b"ok"]

    def events(self):
        return [json.loads(c["body"])["event"] for c in self.calls]


def make_sandbox(recorder, **config):
    app = create_sandbox_app(
        {
            "WEBHOOK_THREAD": False,
            "SEED": 3,
            "WEBHOOK_TRANSPORT": wsgi_transport(recorder),
            "WEBHOOK_URL": "http://portal.test/webhooks/razorpay",
            "WEBHOOK_SECRET": "in-secret",
            "X_WEBHOOK_URL": "http://portal.test/webhooks/razorpayx",
            "X_WEBHOOK_SECRET": "x-secret",
            **config,
        }
    )
    return app, app.extensions["razorpay_sandbox"]


def pay(sandbox, amount=10_000):
    order = sandbox.store.create_order({"amount": amount, "receipt": "w"})
    return sandbox.store.pay_order(order["id"])


def test_events_are_signed_and_shaped_like_razorpay():
    recorder = Recorder()
    _app, sandbox = make_sandbox(recorder)
    payment = pay(sandbox)
    results = sandbox.deliver_pending()
    assert [status for _id, status in results] == [200, 200, 200]
    assert recorder.events() == ["payment.authorized", "payment.captured", "order.paid"]
    call = recorder.calls[1]
    assert call["path"] == "/webhooks/razorpay"
    assert verify_signature(call["body"], call["signature"], "in-secret")
    assert not verify_signature(call["body"], call["signature"], "x-secret")
    # The SDK's own webhook check agrees.
    client = razorpay.Client(auth=("k", "s"))
    assert client.utility.verify_webhook_signature(
        call["body"].decode(), call["signature"], "in-secret"
    )
    event = json.loads(call["body"])
    assert event["entity"] == "event" and event["account_id"].startswith("acc_")
    assert event["contains"] == ["payment"]
    assert event["payload"]["payment"]["entity"]["id"] == payment["id"]
    assert event["payload"]["payment"]["entity"]["status"] == "captured"
    assert call["event_id"] == sandbox.events()[1]["id"]
    paid = json.loads(recorder.calls[2]["body"])
    assert set(paid["payload"]) == {"payment", "order"}


class Meeting(Recorder):
    """A receiver that answers only once ``parties`` requests are in it at the same time
    (500 when they never are): it tells parallel deliveries from one-at-a-time ones."""

    def __init__(self, parties):
        super().__init__()
        self.barrier = threading.Barrier(parties, timeout=2)

    def __call__(self, environ, start_response):
        try:
            self.barrier.wait()
        except threading.BrokenBarrierError:
            start_response("500 Alone", [("Content-Type", "text/plain")])
            return [b"alone"]
        return super().__call__(environ, start_response)


def test_several_senders_deliver_in_parallel_and_report_in_order():
    receiver = Meeting(parties=3)
    _app, sandbox = make_sandbox(receiver, WEBHOOK_SENDERS=3, WEBHOOK_TIMEOUT=10)
    pay(sandbox)
    results = sandbox.deliver_pending()
    assert [status for _id, status in results] == [200, 200, 200]
    assert [event_id for event_id, _status in results] == [e["id"] for e in sandbox.events()]
    assert sorted(receiver.events()) == ["order.paid", "payment.authorized", "payment.captured"]
    sandbox.stop()


def test_one_sender_delivers_one_at_a_time():
    receiver = Meeting(parties=2)
    _app, sandbox = make_sandbox(receiver, WEBHOOK_MAX_ATTEMPTS=1)
    pay(sandbox)
    assert [status for _id, status in sandbox.deliver_pending()] == [500, 500, 500]


def test_x_events_go_to_the_x_endpoint_with_the_x_secret():
    recorder = Recorder()
    _app, sandbox = make_sandbox(recorder)
    store = sandbox.store
    contact, _ = store.create_contact({"name": "Dr Rao"})
    account, _ = store.create_fund_account(
        {"contact_id": contact["id"], "account_type": "vpa", "vpa": {"address": "rao@okaxis"}}
    )
    store.create_payout(
        {
            "account_number": store.x_account_number,
            "fund_account_id": account["id"],
            "amount": 10_000,
            "mode": "UPI",
            "purpose": "payout",
        },
        "key-1",
    )
    sandbox.advance(10)
    sandbox.deliver_pending()
    assert recorder.events() == ["payout.queued", "payout.initiated", "payout.processed"]
    assert {c["path"] for c in recorder.calls} == {"/webhooks/razorpayx"}
    assert all(verify_signature(c["body"], c["signature"], "x-secret") for c in recorder.calls)


def test_non_2xx_answers_are_retried_then_given_up():
    recorder = Recorder(statuses=[500, 503])
    _app, sandbox = make_sandbox(recorder, WEBHOOK_MAX_ATTEMPTS=3)
    sandbox.store.create_link({"amount": 10_000, "reference_id": "x"}, "http://sb")
    link_id = next(iter(sandbox.store.links))
    sandbox.store.cancel_link(link_id)
    assert sandbox.deliver_pending() == [(sandbox.events()[0]["id"], 500)]
    # Not yet due again (backoff) unless forced.
    assert sandbox.webhooks.deliver_pending(force=False) == []
    assert sandbox.deliver_pending()[0][1] == 503
    assert sandbox.deliver_pending()[0][1] == 200
    assert len({c["event_id"] for c in recorder.calls}) == 1  # same event id each time
    assert len({c["body"] for c in recorder.calls}) == 1  # same bytes each time

    always_down = Recorder(statuses=[500] * 10)
    _app, sandbox = make_sandbox(always_down, WEBHOOK_MAX_ATTEMPTS=2)
    pay(sandbox)
    sandbox.deliver_pending()
    sandbox.deliver_pending()
    assert sandbox.webhooks.pending == [] and len(sandbox.webhooks.failed) == 3


def test_duplicate_out_of_order_and_dropped_deliveries():
    recorder = Recorder()
    _app, sandbox = make_sandbox(
        recorder, FAULTS={"duplicate_webhooks": True, "out_of_order": True}
    )
    pay(sandbox)
    sandbox.deliver_pending()
    assert recorder.events() == [
        "order.paid",
        "order.paid",
        "payment.captured",
        "payment.captured",
        "payment.authorized",
        "payment.authorized",
    ]
    dropping = Recorder()
    _app, sandbox = make_sandbox(dropping, FAULTS='{"drop_webhooks": true}')
    pay(sandbox)
    assert sandbox.deliver_pending() == []
    assert dropping.calls == [] and len(sandbox.webhooks.dropped) == 3


def test_background_sender_delivers_over_http():
    recorder = Recorder(statuses=[500])
    server = make_server("127.0.0.1", 0, recorder, threaded=True)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    app = create_sandbox_app(
        {
            "WEBHOOK_THREAD": True,
            "WEBHOOK_BACKOFF": 0.1,
            "DELAYS": {"refund": 0.2},
            "WEBHOOK_URL": f"http://127.0.0.1:{server.server_port}/hook",
        }
    )
    sandbox = app.extensions["razorpay_sandbox"]
    try:
        payment = pay(sandbox)
        sandbox.store.create_refund(payment["id"], {"amount": 5_000}, "bg-1")
        deadline = time.monotonic() + 5
        # Nobody calls tick(): the refund moves with time, and the 500 is retried.
        while (
            "refund.processed" not in recorder.events()
            or recorder.events().count("payment.authorized") < 2
        ):
            assert time.monotonic() < deadline, recorder.events()
            time.sleep(0.05)
        ids = [c["event_id"] for c in recorder.calls]
        assert ids.count(ids[0]) == 2 and len(set(ids)) == 5
    finally:
        sandbox.stop()
        server.shutdown()
        thread.join(timeout=5)
        server.server_close()


def test_control_api():
    recorder = Recorder()
    app, sandbox = make_sandbox(recorder)
    client = app.test_client()
    # The control API wants the sandbox's own key, as its /v1 API does (issue #15).
    key = base64.b64encode(f"{sandbox.store.key_id}:{sandbox.store.key_secret}".encode())
    client.environ_base["HTTP_AUTHORIZATION"] = "Basic " + key.decode()
    assert (
        client.post("/_control/faults", json={"latency_ms": 5, "fail_next": 1}).json["fail_next"]
        == 1
    )
    assert client.post("/_control/faults", json={"nonsense": 1}).status_code == 400
    auth = ("rzp_test_sandbox", "sandbox_secret")
    failed = client.get("/v1/payments", auth=auth)
    assert failed.status_code == 500 and failed.json["error"]["code"] == "SERVER_ERROR"
    assert client.get("/v1/payments", auth=auth).status_code == 200
    client.post("/_control/faults", json={"reset": True})
    assert sandbox.faults["latency_ms"] == 0
    pay(sandbox)
    assert client.get("/_control/state").json["pending_webhooks"] == 3
    assert len(client.post("/_control/deliver").json["results"]) == 3
    settled = client.post("/_control/settle", json={}).json["settlement"]
    assert settled["id"].startswith("setl_") and settled["amount"] == 10_000 - 236
    assert client.post("/_control/settle", json={}).json["settlement"] is None  # done once
    before = sandbox.store.now()
    assert client.post("/_control/advance", json={"seconds": 3600}).json["now"] >= before + 3600
    assert len(client.get("/_control/events").json["events"]) == 3
    assert client.post("/_control/reset").json == {"ok": True}
    assert sandbox.store.payments == {}


def test_signature_helpers():
    body = b'{"event":"payment.captured"}'
    good = sign_body(body, "s3cret")
    assert verify_signature(body, good, "s3cret")
    assert not verify_signature(body + b" ", good, "s3cret")
    assert not verify_signature(body, good.upper(), "s3cret")
    assert not verify_signature(body, "", "s3cret")
    assert not verify_signature(body, None, "s3cret")
    assert not verify_signature(body, good, "")
    assert not verify_signature(body, "é", "s3cret")


def test_error_rate_is_reproducible_with_a_seed():
    from portal.gateway.sandbox.faults import Faults

    def run():
        faults = Faults(error_rate=0.5, seed=123)
        return [faults.plan("GET", "/v1/payments")[1] for _ in range(20)]

    first = run()
    assert first == run() and 500 in first and None in first
