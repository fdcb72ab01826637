"""A sandbox served over real HTTP on 127.0.0.1 (a port of its own), and clients for it."""

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
import razorpay

from portal.gateway import tls
from portal.gateway.payin import RazorpayPayIn
from portal.gateway.payouts import RazorpayXPayouts
from portal.gateway.sandbox import create_sandbox_app
from tests.threads import serve

KEY_ID, KEY_SECRET = "rzp_test_gateway", "gateway_secret_123"
ACCOUNT_NUMBER = "7878780080316316"
WEBHOOK_SECRET, X_WEBHOOK_SECRET = "whsec_payin", "whsec_x"


@dataclass
class Running:
    url: str
    app: object
    sandbox: object

    def checkout(
        self,
        order_id,
        outcome="success",
        method="upi",
        callback_url="http://merchant.test/payments/callback",
    ):
        """What a person does on the hosted checkout page; returns the callback's params."""
        with httpx.Client(base_url=self.url, verify=tls.context()) as browser:
            page = browser.get(f"/checkout/{order_id}", params={"callback_url": callback_url})
            assert page.status_code == 200
            action = re.search(r'<form method="post" action="([^"]+)"', page.text).group(1)
            answer = browser.post(
                action, data={"callback_url": callback_url, "method": method, "outcome": outcome}
            )
        assert answer.status_code == 303, answer.text
        location = answer.headers["location"]
        assert location.startswith(callback_url)
        return dict(parse_qsl(urlsplit(location).query))


@pytest.fixture
def sandbox_config():
    """Override per test (e.g. DELAYS, FAULTS) by redefining or mutating this fixture."""
    return {}


@pytest.fixture
def sandbox_server(sandbox_config):
    config = {
        "KEY_ID": KEY_ID,
        "KEY_SECRET": KEY_SECRET,
        "X_ACCOUNT_NUMBER": ACCOUNT_NUMBER,
        "WEBHOOK_SECRET": WEBHOOK_SECRET,
        "X_WEBHOOK_SECRET": X_WEBHOOK_SECRET,
        "WEBHOOK_THREAD": False,
        "SEED": 7,
        # The merchant site the checkout may return to (it refuses any other origin).
        "CALLBACK_ORIGINS": ("http://merchant.test",),
        **sandbox_config,
    }
    app = create_sandbox_app(config)
    served = serve(app)
    running = Running(served.url, app, app.extensions["razorpay_sandbox"])
    yield running
    running.sandbox.stop()
    served.stop()


@pytest.fixture
def sandbox(sandbox_server):
    return sandbox_server.sandbox


@pytest.fixture
def sdk(sandbox_server):
    """The official SDK, pointed at the sandbox by its base_url option."""
    client = razorpay.Client(auth=(KEY_ID, KEY_SECRET), base_url=sandbox_server.url)
    yield client
    client.session.close()


@pytest.fixture
def make_payin(sandbox_server):
    """Build pay-in adapters against the sandbox (closed after the test)."""
    made = []

    def make(key_secret=KEY_SECRET, base_url=None, **options):
        options = {"timeout": 2, "retries": 2, "backoff": 0.01, **options}
        made.append(RazorpayPayIn(KEY_ID, key_secret, base_url or sandbox_server.url, **options))
        return made[-1]

    yield make
    for adapter in made:
        adapter.close()


@pytest.fixture
def make_payouts(sandbox_server):
    made = []

    def make(base_url=None, account_number=ACCOUNT_NUMBER, **options):
        options = {"timeout": 2, "retries": 3, "backoff": 0.01, **options}
        made.append(
            RazorpayXPayouts(
                KEY_ID, KEY_SECRET, account_number, base_url or sandbox_server.url, **options
            )
        )
        return made[-1]

    yield make
    for adapter in made:
        adapter.close()


@pytest.fixture
def payin(make_payin):
    return make_payin()


@pytest.fixture
def payouts(make_payouts):
    return make_payouts()
