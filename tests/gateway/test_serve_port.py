"""Issue #16: `flask serve --port N` in the embedded mode pays through the sandbox on port N,
not on PUBLIC_URL's default :5000 ("Payments are unavailable" otherwise)."""

import pytest

from portal import cli, create_app
from portal.gateway import get_payin
from tests.gateway.test_mounted import SHARED


@pytest.fixture
def embedded(app, monkeypatch):
    for name in ("DATABASE_URL", "PUBLIC_URL", "RAZORPAY_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    portal = create_app(
        {
            **{k: app.config[k] for k in SHARED if k in app.config},
            "SANDBOX_ENABLED": True,
            "SANDBOX_WEBHOOK_THREAD": False,
            "PERIODIC_INLINE": False,
        }
    )
    served = []
    monkeypatch.setattr(cli, "run_simple", lambda host, port, app, **kw: served.append(port))
    yield portal, served
    portal.extensions["razorpay_sandbox"].stop()


def test_serve_on_another_port_moves_the_sandbox_with_it(embedded):
    portal, served = embedded
    with portal.app_context():  # as `flask serve` has (the command is not an AppGroup one)
        result = portal.test_cli_runner().invoke(args=["serve", "--port", "5123"])
    assert result.exit_code == 0, result.output
    assert served == [5123]
    assert portal.config["PUBLIC_URL"] == "http://127.0.0.1:5123"
    assert portal.config["RAZORPAY_BASE_URL"] == "http://127.0.0.1:5123/sandbox"
    sandbox_app = portal.extensions["razorpay_sandbox_app"]
    assert sandbox_app.config["PUBLIC_URL"] == "http://127.0.0.1:5123/sandbox"
    assert "http://127.0.0.1:5123" in sandbox_app.config["CALLBACK_ORIGINS"]
    targets = portal.extensions["razorpay_sandbox"].webhooks
    assert "5123/webhooks/razorpay" in str(vars(targets))
    with portal.app_context():
        assert "127.0.0.1:5123/sandbox" in str(vars(get_payin()))


def test_an_explicit_public_url_is_kept(embedded, monkeypatch):
    portal, served = embedded
    portal.config["PUBLIC_URL_FOLLOWS_SERVER"] = False
    portal.config["PUBLIC_URL"] = "https://clinic.example"
    with portal.app_context():
        portal.test_cli_runner().invoke(args=["serve", "--host", "0.0.0.0", "--port", "8080"])
    assert served == [8080]
    assert portal.config["PUBLIC_URL"] == "https://clinic.example"


def test_the_address_a_browser_uses():
    assert cli.server_url("0.0.0.0", 8000) == "http://127.0.0.1:8000"
    assert cli.server_url("::1", 8000) == "http://[::1]:8000"
    assert cli.server_url("localhost", 5001) == "http://localhost:5001"
