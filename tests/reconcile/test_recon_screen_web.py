"""The reconciliation screen: runs list and "run now" (bad dates and ranges are messages
beside the field, never a 500), open cases by reason with filters (an unknown one is a
message), a case with both sides, sync and accept (a short note refused), bulk resolve."""

import re
from datetime import date

import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.reconcile.models import ReconCase, ReconRun
from tests.reconcile.helpers import (
    later,
    longer_notes,
    paid,
    paid_only_at_gateway,
    payment_id,
    run_day,
)
from tests.refunds.helpers import login, with_known_passwords


@pytest.fixture
def setup(app, world, users, gateway, clock):
    with_known_passwords()
    visit = paid(world, users, gateway)
    lost_visit, lost_pay = paid_only_at_gateway(world, users, gateway)
    stray = gateway.sandbox.stray_payment(7_700)
    later(clock)
    run_day(world)
    ids = {case.reference: case.id for case in db.session.scalars(sa.select(ReconCase)).all()}
    emails = {"admin": users(world.admin).email, "patient": users(world.patients[0]).email}
    matched = payment_id(visit)
    db.session.remove()
    return {
        "emails": emails,
        "lost": ids[lost_pay],
        "lost_visit": lost_visit,
        "stray": ids[stray["id"]],
        "matched": ids[matched],
    }


def test_only_admins_see_it(client, setup):
    login(client, setup["emails"]["patient"])
    assert client.get("/admin/reconciliation").status_code == 403


def test_the_screen_lists_runs_and_open_cases_by_reason(client, setup):
    login(client, setup["emails"]["admin"])
    page = client.get("/admin/reconciliation")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Status differs</a>: <strong>1" in html and "Missing ours</a>: <strong>1" in html
    assert f'value="{setup["lost"]}"' in html and f'value="{setup["stray"]}"' in html
    assert f'case-{setup["matched"]}"' not in html  # open cases only by default
    assert "#1</a>" in html and "finished" in html.lower()
    filtered = client.get(
        "/admin/reconciliation?status=discrepancy&reason=missing_ours",
        headers={"HX-Request": "true", "HX-Target": "cases"},
    )
    text = filtered.get_data(as_text=True)
    assert filtered.status_code == 200 and "<html" not in text
    assert f'case-{setup["stray"]}"' in text and f'case-{setup["lost"]}"' not in text
    unknown = client.get("/admin/reconciliation?status=exploded&colour=red")
    assert unknown.status_code == 400
    assert "Unknown filter ignored: status=exploded, colour" in unknown.get_data(as_text=True)


@pytest.mark.parametrize(
    "first, last, message",
    [
        ("2026-13-01", "2026-06-01", "Not a valid date value"),
        ("yesterday", "2026-06-01", "Not a valid date value"),
        ("", "2026-06-01", "Enter the first day"),
        ("2026-06-02", "2026-06-01", "must not be before the first day"),
        ("2025-01-01", "2026-06-01", "at most a year"),
        # Outside 1900–2099: day_window's arithmetic overflowed (a 500, review rev2).
        ("9999-12-31", "9999-12-31", "Enter a date between 1900 and 2099."),
        ("0001-01-01", "0001-01-01", "Enter a date between 1900 and 2099."),
    ],
)
def test_run_now_refuses_bad_ranges(client, setup, first, last, message):
    login(client, setup["emails"]["admin"])
    runs = client.application.app_context()
    response = client.post(
        "/admin/reconciliation/runs", data={"first_day": first, "last_day": last}
    )
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    with runs:
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ReconRun)) == 1


def test_run_now_runs_in_the_background(client, setup, clock):
    clock.shift(60)  # the setup's run of that day is not "moments ago" (shown instead)
    login(client, setup["emails"]["admin"])
    response = client.post(
        "/admin/reconciliation/runs", data={"first_day": "2026-06-01", "last_day": "2026-06-01"}
    )
    assert response.status_code == 303
    with client.application.app_context():
        run = db.session.scalars(sa.select(ReconRun).order_by(ReconRun.id.desc())).first()
        assert (run.trigger, run.status, run.new_discrepancies) == ("admin", "finished", 0)
        assert run.discrepancies == 2
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ReconCase)) == 3


def test_a_case_shows_both_sides_and_syncs(client, setup):
    login(client, setup["emails"]["admin"])
    page = client.get(f"/admin/reconciliation/cases/{setup['lost']}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Ours" in html and "Razorpay" in html and "PENDING" in html and "captured" in html
    # Razorpay's time for a payment is its creation, not its capture (review rv_rzp).
    assert "<dt>Created</dt>" in html and html.count("<dt>Time</dt>") == 1
    response = client.post(f"/admin/reconciliation/cases/{setup['lost']}/sync")
    assert response.status_code == 303
    page = client.get(response.headers["Location"])
    html = page.get_data(as_text=True)
    assert re.search(r'id="case-status">Matched<', html)
    assert "the case is matched" in html
    visit = client.get(f"/admin/visits/{setup['lost_visit']}").get_data(as_text=True)
    assert "Confirmed" in visit or "CONFIRMED" in visit


def test_the_label_of_razorpays_time_is_the_matchers_word(client, setup, monkeypatch):
    """The case page names Razorpay's time as ``matching.gateway_time_label`` does, which
    says it from the rule the times are compared by (a payment's gateway time is its
    creation: ``capture_lag``); the template chooses no label of its own by kind."""
    from portal.reconcile import matching

    assert matching.gateway_time_label("payment") == "Created"
    assert {matching.gateway_time_label(kind) for kind in ("refund", "payout")} == {"Time"}
    monkeypatch.setattr(
        matching, "gateway_time_label", lambda kind: f"At Razorpay ({kind})", raising=False
    )
    login(client, setup["emails"]["admin"])
    html = client.get(f"/admin/reconciliation/cases/{setup['lost']}").get_data(as_text=True)
    assert "<dt>At Razorpay (payment)</dt>" in html and "<dt>Created</dt>" not in html


def test_accept_needs_a_real_note(client, setup):
    login(client, setup["emails"]["admin"])
    url = f"/admin/reconciliation/cases/{setup['stray']}/accept"
    short = client.post(url, data={"note": "ok"})
    assert short.status_code == 422 and "Detailed note required" in short.get_data(as_text=True)
    done = client.post(url, data={"note": "A test payment from the dashboard"})
    assert done.status_code == 303
    with client.application.app_context():
        assert db.session.get(ReconCase, setup["stray"]).status == "resolved"
    # Sync on a stray payment: a message, no 500.
    again = client.post(f"/admin/reconciliation/cases/{setup['stray']}/sync", follow_redirects=True)
    assert again.status_code == 200 and "resolved already" in again.get_data(as_text=True)


def test_the_note_asked_for_is_the_policys_length(client, setup, world):
    """The hints and the refusals say the policy's number, and a note the policy finds short
    is refused by the form beside the field (bulk too), not case by case after it."""
    # In this test's app context, which the requests below share (its policy read again).
    longer_notes(world, 12)
    db.session.remove()
    login(client, setup["emails"]["admin"])
    message = "Detailed note required for audit trail (at least 12 characters)."
    page = client.get(f"/admin/reconciliation/cases/{setup['stray']}").get_data(as_text=True)
    assert "at least 12 characters" in page and "10 characters" not in page
    index = client.get("/admin/reconciliation").get_data(as_text=True)
    assert "At least 12 characters" in index and "10 characters" not in index
    url = f"/admin/reconciliation/cases/{setup['stray']}/accept"
    short = client.post(url, data={"note": "Eleven char"})
    assert short.status_code == 422 and message in short.get_data(as_text=True)
    bulk = client.post(
        "/admin/reconciliation/cases/bulk",
        data={"action": "accept", "case": [setup["stray"]], "note": "Eleven char"},
    )
    assert bulk.status_code == 422 and message in bulk.get_data(as_text=True)
    with client.application.app_context():
        assert db.session.get(ReconCase, setup["stray"]).status == "discrepancy"
    assert client.post(url, data={"note": "Twelve chars"}).status_code == 303


def test_bulk_resolve_a_selection(client, setup):
    login(client, setup["emails"]["admin"])
    none = client.post("/admin/reconciliation/cases/bulk", data={"action": "accept"})
    assert none.status_code == 422 and "Tick the cases" in none.get_data(as_text=True)
    no_note = client.post(
        "/admin/reconciliation/cases/bulk",
        data={"action": "accept", "case": [setup["lost"], setup["stray"]]},
    )
    assert no_note.status_code == 422 and "Detailed note" in no_note.get_data(as_text=True)
    bad = client.post("/admin/reconciliation/cases/bulk", data={"action": "accept", "case": ["x"]})
    assert bad.status_code == 422
    response = client.post(
        "/admin/reconciliation/cases/bulk",
        data={
            "action": "accept",
            "case": [setup["lost"], setup["stray"]],
            "note": "Checked both with finance today",
        },
        follow_redirects=True,
    )
    assert response.status_code == 200 and "2 cases resolved" in response.get_data(as_text=True)
    with client.application.app_context():
        statuses = {db.session.get(ReconCase, i).status for i in (setup["lost"], setup["stray"])}
        assert statuses == {"resolved"}


def test_unknown_ids_are_404(client, setup):
    login(client, setup["emails"]["admin"])
    assert client.get("/admin/reconciliation/cases/999999").status_code == 404
    assert client.get("/admin/reconciliation/runs/999999").status_code == 404
    assert client.post("/admin/reconciliation/cases/999999/sync").status_code == 404


def test_cases_and_runs_download_as_csv_with_the_screens_filters(client, setup):
    login(client, setup["emails"]["admin"])
    answer = client.get("/admin/reconciliation/cases.csv?status=discrepancy&reason=status_differs")
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    text = answer.get_data(as_text=True)
    assert "Report: Reconciliation cases" in text and "reason: status_differs" in text
    body = text.split("\r\n\r\n", 1)[1].splitlines()
    assert body[0].startswith("Case,Kind,Reference,Status,Reason")
    assert len(body) == 2 and body[1].startswith(f"{setup['lost']},payment,")
    everything = client.get("/admin/reconciliation/cases.csv?status=all").get_data(as_text=True)
    assert len(everything.split("\r\n\r\n", 1)[1].splitlines()) == 4  # header + 3 cases
    runs = client.get("/admin/reconciliation/runs.csv").get_data(as_text=True)
    assert "Report: Reconciliation runs" in runs and ",finished," in runs
    assert client.get("/admin/reconciliation/cases.csv?reason=nonsense").status_code == 422
    assert client.get("/admin/reconciliation/cases.csv?colour=red").status_code == 422
    login(client, setup["emails"]["patient"])
    assert client.get("/admin/reconciliation/cases.csv").status_code in (403, 404)


def _runs():
    return db.session.scalars(sa.select(ReconRun).order_by(ReconRun.id)).all()


def test_run_now_twice_for_one_window_starts_one_run(client, setup, clock):
    """Review rev-input: a double submit of "Run" started two runs of the same window.
    Jobs run at once in tests (and soon in the embedded mode), so the first is finished
    when the second arrives: started moments ago, it is the same request."""
    clock.shift(60)  # past the setup's own run of that day
    login(client, setup["emails"]["admin"])
    window = {"first_day": "2026-06-01", "last_day": "2026-06-01"}
    first = client.post("/admin/reconciliation/runs", data=window)
    second = client.post("/admin/reconciliation/runs", data=window, follow_redirects=True)
    assert first.status_code == 303 and second.status_code == 200
    with client.application.app_context():
        runs = _runs()
        assert len(runs) == 2  # the setup's own run and one of the two posts
        assert runs[-1].status == "finished"
        newest = runs[-1].id
    assert f"Run {newest} for that window was started moments ago" in second.get_data(as_text=True)
    # Another window is another run.
    other = client.post(
        "/admin/reconciliation/runs", data={"first_day": "2026-06-02", "last_day": "2026-06-02"}
    )
    assert other.status_code == 303
    with client.application.app_context():
        assert len(_runs()) == 3


def test_run_now_shows_the_run_still_running_for_that_window(client, setup, clock):
    from portal.reconcile import run as recon
    from portal.reconcile.window import day_window

    with client.application.app_context():
        start, end = day_window(date(2026, 6, 1), date(2026, 6, 1))
        running = recon.start_run(start, end, trigger=recon.ADMIN).id  # never executed
        db.session.remove()
    clock.shift(60)  # past "moments ago": it is the run still running that is shown
    login(client, setup["emails"]["admin"])
    window = {"first_day": "2026-06-01", "last_day": "2026-06-01"}
    page = client.post("/admin/reconciliation/runs", data=window, follow_redirects=True)
    assert f"Run {running} for that window is still running" in page.get_data(as_text=True)
    with client.application.app_context():
        assert _runs()[-1].id == running
    # One that has run an hour is taken for dead with its worker: a new run starts.
    clock.shift(3600)
    assert client.post("/admin/reconciliation/runs", data=window).status_code == 303
    with client.application.app_context():
        assert _runs()[-1].id == running + 1


def test_paging_the_runs_keeps_the_case_filter_chosen(app, client, world, users, gateway, clock):
    """Review finding: the screen holds two lists, cases (filtered by status, reason, kind)
    and runs, each with its own pager. The runs' "Next" link was built without the case
    filters, so paging through the runs while looking at, say, the missing-ours cases put
    the case list back to its default (all open cases)."""
    with_known_passwords()
    gateway.sandbox.stray_payment(7_700)
    later(clock)
    for _ in range(11):  # more runs than the runs' page of 10
        run_day(world)
    email = users(world.admin).email
    db.session.remove()
    login(client, email)
    html = client.get("/admin/reconciliation?reason=missing_ours").get_data(as_text=True)
    links = [
        link.replace("&amp;", "&") for link in re.findall(r'href="([^"]*runs_after=[^"]*)"', html)
    ]
    assert links, "no next link on the runs list"
    assert all("reason=missing_ours" in link for link in links), links


def test_paging_the_cases_keeps_the_runs_place(app, client, world, users, gateway, clock):
    """The other way round: the cases' pager keeps the runs' page, and cases swapped in by
    htmx bring the runs' pager with them (out of band), built with the filters and the
    cases' place they were asked with, not the ones the page was first loaded with."""
    with_known_passwords()
    for amount in (7_700, 8_800):
        gateway.sandbox.stray_payment(amount)
    later(clock)
    for _ in range(11):
        run_day(world)
    email = users(world.admin).email
    db.session.remove()
    login(client, email)
    page = client.get("/admin/reconciliation").get_data(as_text=True).replace("&amp;", "&")
    runs_after = re.search(r"runs_after=([^\"&]+)", page).group(1)
    asked = f"/admin/reconciliation?reason=missing_ours&per_page=1&runs_after={runs_after}"
    html = client.get(asked).get_data(as_text=True).replace("&amp;", "&")
    cases_next = re.findall(r'href="([^"]*[?&]after=[^"]*)"', html)
    assert cases_next and all(f"runs_after={runs_after}" in link for link in cases_next)
    assert f'name="runs_after" value="{runs_after}"' in html  # the filter form keeps it
    swapped = client.get(asked, headers={"HX-Request": "true", "HX-Target": "cases"}).get_data(
        as_text=True
    )
    oob = re.search(r'<div id="runs-pager" hx-swap-oob="true">(.*?)</div>', swapped, re.S)
    assert oob, "the runs' pager is not swapped with the cases"
    links = re.findall(r'href="([^"]*)"', oob.group(1).replace("&amp;", "&"))
    assert links and all("reason=missing_ours" in link and "per_page=1" in link for link in links)
