"""A boosted request that fails says so (static/js/portal.js, its failed-requests part), instead of silently
leaving the page as it was: htmx does not swap a 4xx/5xx answer (base.html's
responseHandling), so the site's script writes a message into the flash area."""

import pytest
from playwright.sync_api import expect

from portal.accounts import service as accounts

pytestmark = pytest.mark.e2e


@pytest.fixture
def production_errors(app):
    """Errors answered with the 500 page, as in production (tests otherwise re-raise)."""
    saved = app.config.get("PROPAGATE_EXCEPTIONS")
    app.config["PROPAGATE_EXCEPTIONS"] = False
    yield
    app.config["PROPAGATE_EXCEPTIONS"] = saved


def test_a_boosted_form_whose_server_fails_shows_a_message(page, monkeypatch, production_errors):
    def broken(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(accounts, "register_patient", broken)
    page.goto("/auth/register")
    page.fill("input[name=name]", "Meera Iyer")
    page.fill("input[name=email]", "meera@example.com")
    page.fill("input[name=phone]", "98123 45678")
    page.fill("input[name=password]", "a long enough password")
    page.fill("input[name=confirm]", "a long enough password")
    with page.expect_response(
        lambda r: r.url.endswith("/auth/register") and r.request.method == "POST"
    ) as answer:
        page.click("form[action$='/auth/register'] button[type=submit]")
    assert answer.value.status == 500
    message = page.locator("#flashes [data-htmx-error]")
    expect(message).to_be_visible()
    expect(message).to_contain_text("Something went wrong on our side")
    expect(message).to_contain_text("Reference: " + answer.value.headers["x-request-id"])
    # Nothing was swapped: the person still has the form they filled in.
    assert page.input_value("input[name=name]") == "Meera Iyer"
    assert page.url.endswith("/auth/register")


def test_a_link_to_something_gone_says_so(page):
    page.goto("/auth/register")
    page.evaluate("""() => {
        const a = document.createElement('a');
        a.href = '/no/such/page'; a.id = 'gone'; a.textContent = 'gone';
        document.querySelector('main').appendChild(a);
        htmx.process(a);
    }""")
    page.click("#gone")
    expect(page.locator("#flashes [data-htmx-error]")).to_contain_text("no longer there")


def test_a_failed_request_is_explained_in_the_readers_language(page):
    """The script's messages were English only: a Hindi reader read "That is no longer
    there" (review finding). The page carries them translated (base.html)."""
    page.goto("/auth/register")
    page.select_option("#language-choice", "hi")
    page.click("form.language button[type=submit]")
    page.wait_for_selector("html[lang^=hi]")
    page.evaluate("""() => {
        const a = document.createElement('a');
        a.href = '/no/such/page'; a.id = 'gone'; a.textContent = 'gone';
        document.querySelector('main').appendChild(a);
        htmx.process(a);
    }""")
    page.click("#gone")
    expect(page.locator("#flashes [data-htmx-error]")).to_have_text(
        "वह अब वहाँ नहीं है। पेज फिर से लोड करें।"
    )
