"""A boosted request that fails says so (static/js/portal.js, its failed-requests part), instead of silently
leaving the page as it was: htmx does not swap a 4xx/5xx answer (base.html's
responseHandling), so the site's script writes a message into the flash area."""

import pytest
from playwright.sync_api import expect

from portal.accounts import dependents
from tests.conftest import PASSWORD
from tests.e2e.conftest import sign_in

pytestmark = pytest.mark.e2e


@pytest.fixture
def production_errors(app):
    """Errors answered with the 500 page, as in production (tests otherwise re-raise)."""
    saved = app.config.get("PROPAGATE_EXCEPTIONS")
    app.config["PROPAGATE_EXCEPTIONS"] = False
    yield
    app.config["PROPAGATE_EXCEPTIONS"] = saved


def test_an_htmx_form_whose_server_fails_shows_a_message(
    page, monkeypatch, production_errors, make_user
):
    """The family page's "Add" form posts through htmx (the registration form, which this
    test used, now posts plainly so its limit's page is shown: docs/web.md)."""

    def broken(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(dependents, "add_dependent", broken)
    patient = make_user("patient", name="Meera Iyer")
    sign_in(page, patient.email, PASSWORD)
    page.goto("/me/dependents")
    page.fill("input[name=name]", "Aarav Iyer")
    page.select_option("select[name=relationship]", "child")
    with page.expect_response(
        lambda r: r.url.endswith("/me/dependents") and r.request.method == "POST"
    ) as answer:
        page.click("form[action$='/me/dependents'] button[type=submit]")
    assert answer.value.status == 500
    message = page.locator("#flashes [data-htmx-error]")
    expect(message).to_be_visible()
    expect(message).to_contain_text("Something went wrong on our side")
    expect(message).to_contain_text("Reference: " + answer.value.headers["x-request-id"])
    # Nothing was swapped: the person still has the form they filled in.
    assert page.input_value("input[name=name]") == "Aarav Iyer"
    assert page.url.endswith("/me/dependents")


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
