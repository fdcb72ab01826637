"""Query budgets of the booking flow's three writing requests: the hold (POST /me/book),
the pay step (POST /me/visits/<id>/pay) and the signed return (GET …/paid), of another
patient's hold refused for the time just held (what each loser of a race for one time
costs), and of the three webhooks the gateway then sends (their receipt). Each runs a fixed number of statements on the portal's database, the same for
every booking however many the patient already has, and no more than its budget (issue
#17: each statement is 0.5–1 ms of CPU). A statement added to a step fails here; raise a
budget only with a reason. ``python -m tests.load.bench_flow --statements`` lists each step's statements and
where they are run."""

import pytest

from tests.load.bench_flow import book_once, form_for, jobs_handed_over, slots
from tests.plugin import PASSWORD

# Per dialect: PostgreSQL takes an advisory lock per claimed subject (a provider and the
# person, in one statement) and writes the two claims, and a posting's four ledger lines, in
# one INSERT each; SQLite opens the capture's SAVEPOINT with a BEGIN (which puts the
# capture's reads in its transaction) and writes one row per INSERT. SQLite's hold reads
# the account's closure under the claims' lock (what PostgreSQL's claims trigger reads
# inside its INSERT): a session's copy of the patient may predate a closure (docs/privacy.md).
BUDGETS = {
    "postgresql": {
        # user (read with the catalog's and the policy's stamps: portal.web.signed_in;
        # provider, service, clinic + hours from the catalog cache), claims in the way,
        # the open visit it joins, provider fit, schedule; visit (+ its number), booking, its provider,
        # the advisory locks (one statement), claims, audit
        "hold": 12,
        # user, claims in the way (refused before the open visit it would join is read)
        "refused": 2,
        # user, locked visit, items, payments; payment (+ order id), timeline, visit,
        # audit, money movement
        "pay": 11,
        # user, visit (ownership), payment by order, locked visit, its payments, items;
        # payment, item, timeline, ledger (key, accounts, transaction, lines) (and the
        # coupon use, for a visit with a coupon: none here),
        # its invoice lines' GSTINs, clinic names and descriptions as issued (one
        # statement; stored on them: docs/reports.md),
        # invoice number, visit, audit, the confirmation's outbox item (one statement
        # with its dedupe key), reconciliation cases, settlement of the payment, money
        # movement
        "return": 21,
        # the payment's three webhooks received, each a repeat of the return, settled as
        # it arrives: stored processed, no job (one statement unless its id is known),
        # after its look-ups: the payment by its order (all three), a reschedule fee by it
        # (the two capture events)
        "webhooks": 8,
    },
    "sqlite": {"hold": 13, "refused": 2, "pay": 11, "return": 25, "webhooks": 8},
}


@pytest.mark.norollback  # counts statements: the real commits, not savepoints
def test_hold_pay_and_return_cost_a_fixed_number_of_statements(app, client, login, world, gateway):
    login(world.patient)
    rival = app.test_client()  # another patient, refused each time just held
    signed_in = rival.post("/auth/login", data={"email": world.other.email, "password": PASSWORD})
    assert signed_in.status_code in (302, 303)
    hooks = app.test_client()  # the gateway: no session
    budget = BUDGETS[app.config["SQLALCHEMY_DATABASE_URI"].split(":")[0].split("+")[0]]
    counts = []
    with jobs_handed_over(app):
        for provider, start in slots(world, 5):
            out = book_once(
                app, client, None, form_for(world, provider, start), rival=rival, hooks=hooks
            )
            counts.append({step: statements for step, (statements, _, _) in out.items()})
    first, *later = counts[2:]  # the first two (one per doctor) warm the per-process caches
    failures = []
    for step, allowed in budget.items():
        seen = [len(first[step])] + [len(c[step]) for c in later]
        if len(set(seen)) != 1 or seen[0] > allowed:
            failures.append(
                f"{step}: {seen} statements over bookings 3-5, budget {allowed}"
                + "".join(f"\n    {' '.join(s.split())[:120]}" for s in later[-1][step])
            )
    assert not failures, "\n".join(failures)
