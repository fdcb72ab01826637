"""TDS under section 194J is counted per payee, the PAN the clinic reports the deduction
under in Form 26Q, not per provider profile (decision: docs/decisions.md, "TDS per PAN").
A doctor who is also on the portal as their own lab (one proprietorship, one PAN) is one
deductee: once their payouts together pass ₹50,000 in the year, TDS applies."""

from datetime import date

from portal.extensions import db
from portal.payouts import runs
from tests.payouts.conftest import payouts_of

PAN = "ABCPK1234L"


def test_two_profiles_of_one_pan_cross_the_threshold_together(mid_year, world, x):
    doctor, doctor_user = world.ready_provider("WEEKLY", commission_bps=0)
    lab, lab_user = world.ready_provider("WEEKLY", commission_bps=0)
    doctor.pan = lab.pan = PAN
    db.session.commit()
    world.earn(doctor, doctor_user, 3_000_000)  # ₹30,000
    runs.run_cycle("WEEKLY", date(2026, 11, 1))
    world.earn(lab, lab_user, 3_000_000)  # ₹30,000 more to the same PAN: ₹60,000 > ₹50,000
    runs.run_cycle("WEEKLY", date(2026, 11, 8))
    x.settle()
    [first] = payouts_of(doctor.id)
    [second] = payouts_of(lab.id)
    assert (first.gross, second.gross) == (3_000_000, 3_000_000)
    total_tds = first.tds + second.tds
    assert total_tds == 600_000, (
        f"₹60,000 paid in the year to PAN {PAN} deducted ₹{total_tds / 100:,.2f} TDS, "
        "not 10% of ₹60,000 (the threshold was counted per profile)"
    )


def _one_pan_crossed(world, x):
    """A doctor and their own lab under one PAN, ₹30,000 paid to each: the lab's payout
    takes the PAN's year over ₹50,000 and deducts 10% of ₹60,000."""
    doctor, doctor_user = world.ready_provider("WEEKLY", commission_bps=0, name="Dr Kiran")
    lab, lab_user = world.ready_provider("WEEKLY", commission_bps=0, name="Kiran Labs")
    doctor.pan = lab.pan = PAN
    db.session.commit()
    world.earn(doctor, doctor_user, 3_000_000)
    runs.run_cycle("WEEKLY", date(2026, 11, 1))
    world.earn(lab, lab_user, 3_000_000)
    runs.run_cycle("WEEKLY", date(2026, 11, 8))
    x.settle()
    return doctor, doctor_user, lab, lab_user


def test_a_profile_without_a_pan_keeps_its_own_count(mid_year, world, x):
    doctor, doctor_user = world.ready_provider("WEEKLY", commission_bps=0)
    lab, lab_user = world.ready_provider("WEEKLY", commission_bps=0)
    doctor.pan = PAN  # the lab's profile has none: nothing says it is the same payee
    db.session.commit()
    world.earn(doctor, doctor_user, 3_000_000)
    runs.run_cycle("WEEKLY", date(2026, 11, 1))
    world.earn(lab, lab_user, 3_000_000)
    runs.run_cycle("WEEKLY", date(2026, 11, 8))
    x.settle()
    assert [p.tds for p in payouts_of(doctor.id) + payouts_of(lab.id)] == [0, 0]


def test_a_pan_given_mid_year_brings_the_profiles_payouts_of_the_year(mid_year, world, x):
    """The payouts that count are those of the profiles carrying the PAN now: the lab's
    ₹30,000, paid while its profile had no PAN, counts once the PAN is put on it, and the
    next payout to the PAN deducts what the year then owes (₹7,000 on ₹70,000)."""
    doctor, doctor_user = world.ready_provider("WEEKLY", commission_bps=0)
    lab, lab_user = world.ready_provider("WEEKLY", commission_bps=0)
    doctor.pan = PAN
    db.session.commit()
    world.earn(doctor, doctor_user, 3_000_000)
    world.earn(lab, lab_user, 3_000_000)
    runs.run_cycle("WEEKLY", date(2026, 11, 1))
    lab.pan = PAN  # the column holds a PAN only as the rule makes it (test_pan_keys_agree)
    db.session.commit()
    world.earn(doctor, doctor_user, 1_000_000)
    runs.run_cycle("WEEKLY", date(2026, 11, 8))
    x.settle()
    doctor_payouts, [lab_payout] = payouts_of(doctor.id), payouts_of(lab.id)
    assert [p.tds for p in doctor_payouts] == [0, 700_000] and lab_payout.tds == 0


def test_the_tds_report_and_pages_show_each_profile_adding_up_to_the_pan(
    mid_year, world, x, client, login
):
    from portal.reports import tds

    doctor, doctor_user, lab, lab_user = _one_pan_crossed(world, x)
    report = tds.report({"fy": "2026-27", "quarters": ["Q3"], "provider": None})
    by_profile = {r.provider: (r.pan, r.gross, r.tds) for r in report["rows"]}
    assert by_profile == {
        "Dr Kiran": (PAN, 3_000_000, 0),
        "Kiran Labs": (PAN, 3_000_000, 600_000),
    }
    assert (report["gross"], report["tds"]) == (6_000_000, 600_000)
    own = [tds.provider_report(p, "2026-27")["tds"] for p in (doctor, lab)]
    assert own == [0, 600_000]

    login(doctor_user)
    card = client.get("/provider/earnings").get_data(as_text=True).split('id="tds"', 1)[1]
    card = card.split("</section>", 1)[0]
    assert "₹30,000 gross (before TDS)" in card  # the profile's own figures
    assert (
        "with your other profiles at the clinic under it, this year's gross payouts are ₹60,000"
        in card
    )
    assert "10% TDS now applies to each payout" in card and "TDS applies once" not in card


def test_a_profile_alone_under_its_pan_is_not_told_of_others(mid_year, world, x, client, login):
    provider, user = world.ready_provider("WEEKLY", commission_bps=0)
    provider.pan = PAN
    db.session.commit()
    world.earn(provider, user, 3_000_000)
    runs.run_cycle("WEEKLY", date(2026, 11, 1))
    x.settle()
    login(user)
    card = client.get("/provider/earnings").get_data(as_text=True).split('id="tds"', 1)[1]
    assert "other profiles" not in card.split("</section>", 1)[0]
