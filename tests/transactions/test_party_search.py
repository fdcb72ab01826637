"""The console's (and its CSV's) "Patient or provider" search counts every person it
matches. Review finding: it resolved the text to at most 50 users (an unordered LIMIT) and
silently dropped the movements of every other match: the page, its summary and its CSV
said 50 movements where the filter matched 51, and nothing said some were left out. And
the text's ``%`` and ``_`` mean themselves."""

import re

import pytest

from portal.extensions import db
from portal.transactions import models as mm
from portal.transactions import queries
from tests.booking.factories import NOW
from tests.transactions.csv_file import read

TODAY = NOW.date()


@pytest.fixture
def admin(app, clock, make_user, login):
    user = make_user("admin")
    login(user)
    return user


def _paid_once_each(app, people, first_id, tag):
    """One ₹100 online payment row on the console for each of ``people``, now."""
    with app.app_context():
        for i, p in enumerate(people):
            db.session.add(
                mm.MoneyMovement(
                    source="payment",
                    source_id=first_id + i,
                    type=mm.PAYMENT_ONLINE,
                    status="SUCCESSFUL",
                    failed=False,
                    bucket=mm.BUCKET_IN,
                    occurred_at=NOW,
                    amount=100_00,
                    net=100_00,
                    reference=f"pay_{tag}{i:04d}",
                    patient_id=p.id,
                    party_name=p.name,
                )  # fmt: skip
            )
        db.session.commit()


@pytest.fixture
def sharmas(app, clock, make_user):
    people = [
        make_user("patient", name=f"Sharma {i:02d}", email=f"sharma{i:02d}@example.com")
        for i in range(51)
    ]
    _paid_once_each(app, people, 10_000, "S")
    return people


@pytest.mark.parametrize("listed", [1000, 10], ids=["ids bound as a list", "a subquery"])
def test_a_name_matching_51_patients_lists_all_their_movements(
    admin, client, sharmas, monkeypatch, listed
):
    # up to PARTY_LIST_MAX people are bound as a list, more are a subquery: both count all
    monkeypatch.setattr(queries, "PARTY_LIST_MAX", listed)
    body = client.get("/admin/transactions.csv?preset=today&party=sharma").get_data(as_text=True)
    f = read(body)
    exported = len(f.rows)
    summary = client.get(
        "/admin/transactions/summary?preset=today&party=sharma", headers={"HX-Request": "true"}
    ).get_data(as_text=True)
    shown = int(re.search(r"<strong>(\d+)</strong> movements", summary).group(1))
    assert (exported, shown) == (51, 51), (
        f"party=sharma matches 51 patients with one movement each; the CSV has {exported} "
        f"rows, the console's summary {shown}, and neither says any were left out ({f.lines[1][:120]})"
    )


def test_a_percent_or_an_underscore_in_the_name_means_itself(app, admin, client, make_user):
    odd = make_user("patient", name="Rao_50% Trust", email="trust@example.com")
    plain = make_user("patient", name="Rao 500 Mehta", email="mehta@example.com")
    _paid_once_each(app, (odd, plain), 20_000, "R")

    def found(party):
        summary = client.get(
            f"/admin/transactions/summary?preset=today&party={party}",
            headers={"HX-Request": "true"},
        ).get_data(as_text=True)
        return int(re.search(r"<strong>(\d+)</strong> movement", summary).group(1))

    assert found("rao_50") == 1  # "_" is not "any one character" (it matched "Rao 500")
    assert found("50%25") == 1  # "%" is not "anything" (it matched "500 Mehta")
    assert found("rao") == 2
