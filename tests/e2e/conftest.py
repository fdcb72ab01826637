"""Browser tests: Playwright driving Debian's Chromium against the app served on loopback.

The live server serves the session's ``app`` (same database), so a test can prepare data
with the usual fixtures and then act as a person would in the browser."""

import pytest

from tests.threads import serve

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def live_server(app):
    served = serve(app)
    yield served.url
    served.stop()


@pytest.fixture(autouse=True)
def _served_urls(request):
    """While a browser test runs, the app's own URLs are the live server's; restored after,
    so tests that run later see the app as configured."""
    if "live_server" not in request.fixturenames:
        yield
        return
    app, url = request.getfixturevalue("app"), request.getfixturevalue("live_server")
    saved = {k: app.config.get(k) for k in ("PUBLIC_URL", "RAZORPAY_BASE_URL")}
    app.config.update(PUBLIC_URL=url, RAZORPAY_BASE_URL=url + "/sandbox")
    yield
    app.config.update(saved)


@pytest.fixture(scope="session")
def browser():
    import os

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"Debian's chromium is needed at {CHROMIUM} (make test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, app, live_server):
    """A fresh browser page, with CSRF on as in production."""
    app.config["WTF_CSRF_ENABLED"] = True
    context = browser.new_context(base_url=live_server, locale="en-IN", timezone_id="Asia/Kolkata")
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # A CSP violation means something on the page would not work in production.
    page.on(
        "console",
        lambda msg: (
            errors.append(msg.text)
            if msg.type == "error" and "Content Security Policy" in msg.text
            else None
        ),
    )
    yield page
    context.close()
    app.config["WTF_CSRF_ENABLED"] = False
    assert not errors, f"JavaScript errors in the page: {errors}"


def sign_in(page, email, password):
    page.goto("/auth/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    # The home the form leads to, loaded (not "networkidle": that waits out half a
    # second of quiet after every sign-in; what a test looks for next, it waits for).
    with page.expect_navigation():
        page.click("button[type=submit]")


@pytest.fixture
def sandbox(app, live_server):
    """The sandbox mounted at /sandbox in the live app (create_app mounts it in the embedded
    mode; mount it here otherwise), with its webhooks pointed at the live server; its
    faults undone afterwards."""
    if "razorpay_sandbox" not in app.extensions:
        from portal.gateway.sandbox import mount_sandbox

        mount_sandbox(app, prefix="/sandbox")
    sandbox = app.extensions["razorpay_sandbox"]
    sandbox.set_webhook_target(
        "razorpay", live_server + "/webhooks/razorpay", app.config["RAZORPAY_WEBHOOK_SECRET"]
    )
    app.extensions.pop("gateway_adapters", None)  # the SDK talks to the live /sandbox
    yield sandbox
    sandbox.reset_faults()
    app.extensions.pop("gateway_adapters", None)
