"""Reminders: scheduled on confirmation, sent once at 24 h / 1 h / 15 min, withdrawn on
cancellation, re-timed on reschedule — all with the clock moved by time-machine."""

from datetime import timedelta

import pytest
import sqlalchemy as sa
import time_machine

from portal import jobs
from portal.booking.models import IndividualBooking
from portal.db import utcnow
from portal.extensions import db
from portal.notify.models import Delivery, MailMessage, Notification, Reminder, ReminderStatus
from portal.notify.reminders import retime_reminders, schedule_reminders, withdraw_reminders
from tests.notify.factories import NOW, build_world, make_booking


def _reminders(booking_id, status=None):
    query = sa.select(Reminder).where(Reminder.booking_id == booking_id)
    if status:
        query = query.where(Reminder.status == status)
    db.session.expire_all()
    return db.session.scalars(query.order_by(Reminder.due_at, Reminder.recipient_id)).all()


def _tick(at):
    """The scheduler's tick at ``at``: claim due reminders and run their jobs."""
    with time_machine.travel(at, tick=False):
        claimed = jobs.run_periodic("notify.send_due_reminders")
    return claimed


def _reminder_notices(user_id):
    db.session.expire_all()
    return db.session.scalars(
        sa.select(Notification)
        .where(Notification.user_id == user_id, Notification.kind == "reminder")
        .order_by(Notification.id)
    ).all()


def test_confirmed_booking_gets_three_reminders_for_patient_and_each_provider(world):
    start = NOW + timedelta(days=2)
    booking = make_booking(world, start, providers=world.doctors)
    assert schedule_reminders(booking) == {"scheduled": 9, "withdrawn": 0}
    db.session.commit()
    rows = _reminders(booking)
    assert {(r.recipient_id, r.offset_key) for r in rows} == {
        (u, k) for u in [world.patient, *world.doctor_users] for k in ("24h", "1h", "15m")
    }
    assert {r.due_at for r in rows} == {
        start - timedelta(hours=24),
        start - timedelta(hours=1),
        start - timedelta(minutes=15),
    }
    assert {r.role for r in rows if r.recipient_id == world.patient} == {"patient"}
    # Scheduling twice changes nothing.
    assert schedule_reminders(booking) == {"scheduled": 0, "withdrawn": 0}


def test_each_reminder_is_sent_at_its_time_and_only_once(world):
    start = NOW + timedelta(days=2)
    booking = make_booking(world, start)
    schedule_reminders(booking)
    db.session.commit()
    assert _tick(start - timedelta(hours=24, minutes=1)) == 0  # not yet
    assert _tick(start - timedelta(hours=24)) == 2  # patient + doctor
    assert _tick(start - timedelta(hours=23)) == 0  # sent already: never again
    assert [n.title for n in _reminder_notices(world.patient)] == [
        "Reminder: Consultation tomorrow"
    ]
    assert _tick(start - timedelta(minutes=59)) == 2
    assert _tick(start - timedelta(minutes=14)) == 2
    assert _tick(start - timedelta(minutes=5)) == 0
    assert [r.status for r in _reminders(booking)] == [ReminderStatus.SENT] * 6
    assert [n.title for n in _reminder_notices(world.patient)] == [
        "Reminder: Consultation tomorrow",
        "Reminder: Consultation in 1 hour",
        "Reminder: Consultation in 15 minutes",
    ]
    doctor_titles = [n.title for n in _reminder_notices(world.doctor_users[0])]
    assert doctor_titles == [
        "Reminder: Priya Patient tomorrow",
        "Reminder: Priya Patient in 1 hour",
        "Reminder: Priya Patient in 15 minutes",
    ]
    # Every reminder has its in-app, mail and (for those with a phone) SMS delivery, once.
    deliveries = db.session.scalars(
        sa.select(Delivery).where(Delivery.reminder_id.is_not(None))
    ).all()
    patient = [(d.channel, d.status) for d in deliveries if d.user_id == world.patient]
    assert sorted(patient) == sorted([("in_app", "sent"), ("email", "sent"), ("sms", "sent")] * 3)
    doctor = [d.channel for d in deliveries if d.user_id == world.doctor_users[0]]
    assert sorted(doctor) == sorted(["in_app", "email"] * 3)  # the doctor has no phone
    mails = db.session.scalars(
        sa.select(MailMessage).where(MailMessage.to == "patient@example.com")
    ).all()
    assert len(mails) == 3 and all(m.status == "logged" for m in mails)
    assert all("Indiranagar Clinic" in m.text and "Dr Doc 1" in m.text for m in mails)


def test_booking_made_30_minutes_before_start_gets_only_the_15_minute_reminder(world):
    start = NOW + timedelta(minutes=30)
    booking = make_booking(world, start)
    schedule_reminders(booking)
    db.session.commit()
    assert {r.offset_key for r in _reminders(booking)} == {"15m"}
    assert _tick(NOW + timedelta(minutes=1)) == 0
    assert _tick(start - timedelta(minutes=15)) == 2
    assert [n.title for n in _reminder_notices(world.patient)] == [
        "Reminder: Consultation in 15 minutes"
    ]


def test_booking_made_5_minutes_before_start_gets_none(world):
    booking = make_booking(world, NOW + timedelta(minutes=5))
    assert schedule_reminders(booking)["scheduled"] == 0


def test_dependent_visit_reminds_the_guardian(world):
    start = NOW + timedelta(hours=3)
    booking = make_booking(world, start, dependent=True)
    schedule_reminders(booking)
    db.session.commit()
    _tick(start - timedelta(hours=1))
    [notice] = _reminder_notices(world.patient)
    assert "Little One's Consultation" in notice.body
    [doctor_notice] = _reminder_notices(world.doctor_users[0])
    assert doctor_notice.title == "Reminder: Little One in 1 hour"


def test_online_booking_without_a_link_reminds_the_doctor_to_add_one(world):
    """docs/booking.md: needs_meet_link flags a live online booking without its link for
    the provider's reminders too (review finding: they said nothing)."""
    from portal.catalog.models import ONLINE, Service

    db.session.get(Service, world.consult).mode = ONLINE
    start = NOW + timedelta(days=2)
    booking = make_booking(world, start)
    schedule_reminders(booking)
    db.session.commit()
    _tick(start - timedelta(hours=24))
    [doctor_notice] = _reminder_notices(world.doctor_users[0])
    assert doctor_notice.body.endswith(" No meeting link yet: add it on your schedule.")
    [notice] = _reminder_notices(world.patient)
    assert "meeting link" not in notice.body  # the patient's is the doctor's to add
    db.session.get(IndividualBooking, booking).meet_link = "https://zoom.us/j/1"
    db.session.commit()
    _tick(start - timedelta(hours=1))
    later = _reminder_notices(world.doctor_users[0])[-1]
    assert later.body.endswith(" Join online: https://zoom.us/j/1")


def test_unconfirmed_booking_gets_no_reminders(world):
    booking = make_booking(world, NOW + timedelta(days=2), status="SCHEDULED")
    assert schedule_reminders(booking)["scheduled"] == 0


def test_cancellation_withdraws_unsent_reminders_and_keeps_sent_ones(world):
    start = NOW + timedelta(days=2)
    booking = make_booking(world, start)
    schedule_reminders(booking)
    db.session.commit()
    _tick(start - timedelta(hours=24))
    with time_machine.travel(start - timedelta(hours=20), tick=False):
        item = db.session.get(IndividualBooking, booking)
        item.status = "CANCELLED"
        assert withdraw_reminders(booking) == 4
        db.session.commit()
    assert (
        sorted(r.status for r in _reminders(booking))
        == [ReminderStatus.SENT] * 2 + [ReminderStatus.WITHDRAWN] * 4
    )
    assert _tick(start - timedelta(minutes=59)) == 0
    assert _tick(start - timedelta(minutes=14)) == 0
    assert len(_reminder_notices(world.patient)) == 1


def test_cancelled_after_claim_is_skipped_not_sent(world, app):
    """The booking is cancelled between the claim and the send (no withdraw call): the
    send job re-checks and skips."""
    start = NOW + timedelta(hours=3)
    booking = make_booking(world, start)
    schedule_reminders(booking)
    db.session.commit()
    app.config["JOBS_INLINE"] = True
    with time_machine.travel(start - timedelta(hours=1), tick=False):
        # Claim without running the jobs: pretend a worker will pick them up later.
        saved = jobs._dispatch
        jobs._dispatch = lambda ids: None
        try:
            assert jobs.run_periodic("notify.send_due_reminders") == 2
        finally:
            jobs._dispatch = saved
        db.session.get(IndividualBooking, booking).status = "CANCELLED"
        db.session.commit()
        assert jobs.sweep_outbox() == 2
    assert {r.status for r in _reminders(booking) if r.offset_key == "1h"} == {
        ReminderStatus.SKIPPED
    }
    assert _reminder_notices(world.patient) == []


def test_reschedule_retimes_reminders(world):
    start = NOW + timedelta(days=3)
    booking = make_booking(world, start)
    schedule_reminders(booking)
    db.session.commit()
    new_start = NOW + timedelta(days=5, hours=2)
    with time_machine.travel(NOW + timedelta(hours=1), tick=False):
        item = db.session.get(IndividualBooking, booking)
        item.start_at, item.end_at = new_start, new_start + timedelta(minutes=30)
        assert retime_reminders(booking) == {"scheduled": 6, "withdrawn": 6}
        db.session.commit()
    pending = _reminders(booking, ReminderStatus.PENDING)
    assert {r.due_at for r in pending} == {
        new_start - timedelta(hours=24),
        new_start - timedelta(hours=1),
        new_start - timedelta(minutes=15),
    }
    assert {r.for_start for r in _reminders(booking, ReminderStatus.WITHDRAWN)} == {start}
    # Nothing at the old times, everything at the new ones.
    assert _tick(start - timedelta(hours=24)) == 0
    assert _tick(start - timedelta(minutes=15)) == 0
    assert _tick(new_start - timedelta(hours=24)) == 2
    assert _tick(new_start - timedelta(minutes=1)) == 4  # 1h superseded by 15m; both due
    statuses = {
        (r.offset_key, r.recipient_id): r.status
        for r in _reminders(booking)
        if r.for_start == new_start
    }
    assert statuses[("24h", world.patient)] == ReminderStatus.SENT
    assert statuses[("1h", world.patient)] == ReminderStatus.SKIPPED
    assert statuses[("15m", world.patient)] == ReminderStatus.SENT


def test_reschedule_after_some_were_sent_sends_the_new_ones(world):
    start = NOW + timedelta(days=2)
    booking = make_booking(world, start)
    schedule_reminders(booking)
    db.session.commit()
    _tick(start - timedelta(hours=24))  # 24h sent for the old start
    new_start = start + timedelta(days=2)
    with time_machine.travel(start - timedelta(hours=23), tick=False):
        item = db.session.get(IndividualBooking, booking)
        item.start_at, item.end_at = new_start, new_start + timedelta(minutes=30)
        retime_reminders(booking)
        db.session.commit()
    assert _tick(new_start - timedelta(hours=24)) == 2
    titles = [n.title for n in _reminder_notices(world.patient)]
    assert titles == ["Reminder: Consultation tomorrow"] * 2  # old start's and new start's


def test_reschedule_back_to_the_original_time_revives_withdrawn_reminders(world):
    start = NOW + timedelta(days=3)
    booking = make_booking(world, start)
    schedule_reminders(booking)
    db.session.commit()
    item = db.session.get(IndividualBooking, booking)
    item.start_at, item.end_at = start + timedelta(days=1), start + timedelta(days=1, minutes=30)
    retime_reminders(booking)
    item.start_at, item.end_at = start, start + timedelta(minutes=30)
    retime_reminders(booking)
    db.session.commit()
    assert {r.for_start for r in _reminders(booking, ReminderStatus.PENDING)} == {start}
    assert len(_reminders(booking, ReminderStatus.PENDING)) == 6


def test_provider_change_on_reschedule_moves_reminders_to_the_new_provider(world):
    start = NOW + timedelta(days=3)
    booking = make_booking(world, start, providers=world.doctors[:1])
    schedule_reminders(booking)
    db.session.commit()
    from portal.catalog.models import Provider

    item = db.session.get(IndividualBooking, booking)
    item.providers = [db.session.get(Provider, world.doctors[1])]
    db.session.flush()
    retime_reminders(booking)
    db.session.commit()
    recipients = {r.recipient_id for r in _reminders(booking, ReminderStatus.PENDING)}
    assert recipients == {world.patient, world.doctor_users[1]}


def test_late_tick_sends_only_the_latest_due_reminder(world):
    """The scheduler was down for hours: when it comes back 50 min before the start, the
    overdue 24 h reminder is skipped (superseded) and the 1 h one is sent, saying the time
    left."""
    start = NOW + timedelta(days=2)
    booking = make_booking(world, start)
    schedule_reminders(booking)
    db.session.commit()
    assert _tick(start - timedelta(minutes=50)) == 4
    got = {r.offset_key: r.status for r in _reminders(booking) if r.recipient_id == world.patient}
    assert got == {
        "24h": ReminderStatus.SKIPPED,
        "1h": ReminderStatus.SENT,
        "15m": ReminderStatus.PENDING,
    }
    assert [n.title for n in _reminder_notices(world.patient)] == [
        "Reminder: Consultation in 50 minutes"
    ]


def test_start_passed_before_send_is_skipped(world):
    start = NOW + timedelta(hours=2)
    booking = make_booking(world, start)
    schedule_reminders(booking)
    db.session.commit()
    assert _tick(start + timedelta(minutes=1)) == 4
    assert {r.status for r in _reminders(booking)} == {ReminderStatus.SKIPPED}
    assert _reminder_notices(world.patient) == []


def test_reminders_live_in_the_database_only(world):
    """Nothing about a reminder is kept outside the database: the due rows are found by a
    query, so a Redis restart (or no Redis at all) loses none."""
    start = NOW + timedelta(days=2)
    booking = make_booking(world, start)
    schedule_reminders(booking)
    db.session.commit()
    db.session.remove()
    assert _tick(start - timedelta(hours=1)) == 4  # 24h skipped (superseded), 1h sent
    assert utcnow() == NOW


def _propose(world, changes, effective_from=None):
    from portal.accounts.models import User
    from portal.policies import service as policies

    admin = db.session.get(User, world.admin)
    return policies.propose(admin, changes, reason="Fewer reminders", effective_from=effective_from)


def _follow(at):
    with time_machine.travel(at, tick=False):
        return jobs.run_periodic("notify.follow_reminder_times")


def test_reminders_follow_the_reminder_times_in_force_after_a_policy_change(world):
    """An admin replaces 24 h / 1 h / 15 min with one reminder 2 h before: a booking
    confirmed before the change got the 24 h one and never the 2 h one (docs/policy.md:
    reminders are not kept per booking; review finding)."""
    start = NOW + timedelta(days=3)
    booking = make_booking(world, start)
    schedule_reminders(booking)
    db.session.commit()
    _propose(world, {"reminder_offsets": [7_200]})
    db.session.commit()
    _follow(NOW + timedelta(minutes=5))
    assert {r.offset_key for r in _reminders(booking, ReminderStatus.PENDING)} == {"2h"}
    assert {r.note for r in _reminders(booking, ReminderStatus.WITHDRAWN)} == {
        "reminder times changed"
    }
    assert _tick(start - timedelta(hours=24)) == 0
    assert _tick(start - timedelta(hours=2)) == 2  # patient + doctor
    assert [n.title for n in _reminder_notices(world.patient)] == [
        "Reminder: Consultation in 2 hours"
    ]
    assert _follow(start - timedelta(hours=1)) == {"withdrawn": 0, "bookings": 0}  # in line


def test_a_reminder_time_taking_effect_later_is_followed_then(world, app):
    """A change effective tomorrow: until then the old times hold; a reminder queued
    under the old times when the new take effect is withdrawn at its send, not sent."""
    start = NOW + timedelta(days=3)
    booking = make_booking(world, start)
    schedule_reminders(booking)
    db.session.commit()
    _propose(world, {"reminder_offsets": [86_400, 7_200]}, effective_from=NOW + timedelta(days=1))
    db.session.commit()
    assert _follow(NOW + timedelta(hours=1)) == {"withdrawn": 0, "bookings": 0}
    assert _follow(NOW + timedelta(days=1, minutes=5)) == {"withdrawn": 4, "bookings": 1}
    assert {r.offset_key for r in _reminders(booking, ReminderStatus.PENDING)} == {"24h", "2h"}
    assert _tick(start - timedelta(hours=24)) == 2
    # Back to 15 minutes only; the 2 h reminder was claimed just before it took effect.
    _propose(
        world, {"reminder_offsets": [900]}, effective_from=start - timedelta(hours=1, minutes=59)
    )
    db.session.commit()
    app.config["JOBS_INLINE"] = True
    with time_machine.travel(start - timedelta(hours=2), tick=False):
        saved = jobs._dispatch
        jobs._dispatch = lambda ids: None  # claimed; a worker runs it later
        try:
            assert jobs.run_periodic("notify.send_due_reminders") == 2
        finally:
            jobs._dispatch = saved
    with time_machine.travel(start - timedelta(hours=1, minutes=58), tick=False):
        assert jobs.sweep_outbox() == 2
    [queued] = [
        r for r in _reminders(booking) if r.offset_key == "2h" and r.recipient_id == world.patient
    ]
    assert (queued.status, queued.note) == (ReminderStatus.WITHDRAWN, "reminder times changed")


class _Runner:
    """Where a reminder's send job runs: the embedded in-process runner (the outbox item
    runs after the commit) or a real RQ worker (burst, on Redis). ``claim`` is the
    scheduler's tick with its send jobs left waiting; ``run`` is when they are taken."""

    def __init__(self, app, world, worker):
        self.app, self.world, self.worker = app, world, worker
        self.held = []

    def claim(self, at):
        with time_machine.travel(at, tick=False):
            if self.worker:  # handed to Redis at the commit; no worker is running
                return jobs.run_periodic("notify.send_due_reminders")
            saved = jobs._dispatch
            jobs._dispatch = self.held.extend  # the in-process runner has not got to them
            try:
                return jobs.run_periodic("notify.send_due_reminders")
            finally:
                jobs._dispatch = saved

    def run(self, at):
        with time_machine.travel(at, tick=False):
            if self.worker:
                self.app.config["JOBS_WORKER"] = "simple"
                try:
                    self.app.extensions["rq"].make_worker().work(burst=True)
                finally:
                    self.app.config.pop("JOBS_WORKER")
            else:
                held, self.held = self.held, []
                jobs._dispatch(held)

    def tick(self, at):
        claimed = self.claim(at)
        self.run(at)
        return claimed


@pytest.fixture(
    params=[
        pytest.param("inline", marks=pytest.mark.database),
        pytest.param("worker", marks=pytest.mark.redis),
    ]
)
def runner(request):
    if request.param == "inline":
        yield _Runner(request.getfixturevalue("app"), request.getfixturevalue("world"), False)
        return
    app = request.getfixturevalue("rq_ctx")  # only here: the inline runs need no Redis
    with time_machine.travel(NOW, tick=False):
        yield _Runner(app, build_world(), True)


def _two_hours_before(world, start):
    """Reminders 24 h and 2 h before, in force now; a booking at ``start`` with them."""
    _propose(world, {"reminder_offsets": [86_400, 7_200]})
    db.session.commit()
    booking = make_booking(world, start)
    schedule_reminders(booking)
    db.session.commit()
    assert sorted(r.offset_key for r in _reminders(booking)) == ["24h", "24h", "2h", "2h"]
    return booking


def _sent_once(world, booking):
    """Each reminder sent is one notice and one delivery per channel; the patient's
    notices' titles."""
    deliveries = db.session.execute(
        sa.select(Delivery.reminder_id, Delivery.channel)
        .join(Reminder, Reminder.id == Delivery.reminder_id)
        .where(Reminder.booking_id == booking)
    ).all()
    assert len(deliveries) == len(set(deliveries))
    sent = _reminders(booking, ReminderStatus.SENT)
    assert {d.reminder_id for d in deliveries} == {r.id for r in sent}
    notices = db.session.scalar(
        sa.select(sa.func.count(Notification.id)).where(Notification.kind == "reminder")
    )
    assert notices == len(sent)
    return [n.title for n in _reminder_notices(world.patient)]


def test_a_reminder_time_dropped_and_restored_while_ahead_is_reminded_once_at_its_time(runner):
    """24 h and 2 h; the 2 h reminder is queued, its time dropped before it runs (so it is
    not sent), then restored while the reminder's moment is still ahead: it is sent at its
    moment, once. (A queued reminder's moment is still ahead only when the scheduler that
    claimed it ran on a clock ahead of the others': here by 30 minutes.) It was kept as
    skipped, which nothing revives, and the follower took that row for the reminder: it
    was never sent."""
    world = runner.world
    start = NOW + timedelta(days=3)
    two_hours = start - timedelta(hours=2)
    booking = _two_hours_before(world, start)
    _propose(
        world, {"reminder_offsets": [86_400]}, effective_from=two_hours - timedelta(minutes=20)
    )
    db.session.commit()
    assert runner.tick(start - timedelta(hours=24)) == 2
    assert runner.claim(two_hours) == 2  # the scheduler's clock, 30 minutes ahead
    assert _follow(two_hours - timedelta(minutes=18)) == {"withdrawn": 0, "bookings": 0}
    runner.run(two_hours - timedelta(minutes=15))
    assert not {r.status for r in _reminders(booking) if r.offset_key == "2h"} & {
        ReminderStatus.QUEUED,
        ReminderStatus.SENT,
    }
    assert _sent_once(world, booking) == ["Reminder: Consultation tomorrow"]
    with time_machine.travel(two_hours - timedelta(minutes=12), tick=False):
        _propose(
            world,
            {"reminder_offsets": [86_400, 7_200]},
            effective_from=two_hours - timedelta(minutes=10),
        )
        db.session.commit()
    assert _follow(two_hours - timedelta(minutes=5)) == {"withdrawn": 0, "bookings": 1}
    assert runner.tick(two_hours - timedelta(minutes=1)) == 0  # at its time, not before
    assert runner.tick(two_hours) == 2
    assert _sent_once(world, booking) == [
        "Reminder: Consultation tomorrow",
        "Reminder: Consultation in 2 hours",
    ]
    # Never twice: the follower, the scheduler, a stray second send job, the time dropped
    # and restored again: a sent reminder stays sent, its row the only one of its key.
    assert _follow(two_hours + timedelta(minutes=5)) == {"withdrawn": 0, "bookings": 0}
    assert runner.tick(start - timedelta(minutes=30)) == 0
    [patients] = [
        r for r in _reminders(booking) if r.offset_key == "2h" and r.recipient_id == world.patient
    ]
    with time_machine.travel(start - timedelta(minutes=29), tick=False):
        jobs.enqueue("notify.send_reminder", reminder_id=patients.id)
        db.session.commit()
    runner.run(start - timedelta(minutes=29))
    for offsets, minutes in (([86_400], 28), ([86_400, 7_200], 26)):
        with time_machine.travel(start - timedelta(minutes=minutes), tick=False):
            _propose(world, {"reminder_offsets": offsets})
            db.session.commit()
        assert _follow(start - timedelta(minutes=minutes - 1)) == {"withdrawn": 0, "bookings": 0}
    assert runner.tick(start - timedelta(minutes=20)) == 0
    assert _sent_once(world, booking) == [
        "Reminder: Consultation tomorrow",
        "Reminder: Consultation in 2 hours",
    ]
    assert {r.status for r in _reminders(booking)} == {ReminderStatus.SENT}
    assert len(_reminders(booking)) == 4


def test_a_queued_reminder_whose_time_is_restored_before_it_runs_is_sent_once(runner):
    """The reverse order: the 2 h reminder is queued at its time, its time dropped (the
    follower leaves a queued reminder to its send), and restored before the send job runs:
    the job sends it, once, and nothing sends it again."""
    world = runner.world
    start = NOW + timedelta(days=3)
    two_hours = start - timedelta(hours=2)
    booking = _two_hours_before(world, start)
    with time_machine.travel(two_hours - timedelta(hours=1), tick=False):
        _propose(world, {"reminder_offsets": [86_400]}, effective_from=two_hours)
        db.session.commit()
    assert runner.tick(start - timedelta(hours=24)) == 2
    assert runner.claim(two_hours) == 2
    assert _follow(two_hours + timedelta(minutes=1)) == {"withdrawn": 0, "bookings": 0}
    with time_machine.travel(two_hours + timedelta(minutes=2), tick=False):
        _propose(world, {"reminder_offsets": [86_400, 7_200]})
        db.session.commit()
    assert {r.status for r in _reminders(booking) if r.offset_key == "2h"} == {
        ReminderStatus.QUEUED
    }
    runner.run(two_hours + timedelta(minutes=3))
    both = ["Reminder: Consultation tomorrow", "Reminder: Consultation in 2 hours"]
    assert _sent_once(world, booking) == both
    assert _follow(two_hours + timedelta(minutes=5)) == {"withdrawn": 0, "bookings": 0}
    assert runner.tick(two_hours + timedelta(minutes=6)) == 0
    assert _sent_once(world, booking) == both


def test_a_time_restored_after_its_reminders_moment_sends_nothing_late(world):
    """POLICY.md: a reminder is sent only if still in the future. The queued 2 h reminder
    runs after its time was dropped: withdrawn, like the pending ones (not sent); the time
    is restored 10 minutes after the reminder's moment: nothing is sent late."""
    runner = _Runner(None, world, False)
    start = NOW + timedelta(days=3)
    two_hours = start - timedelta(hours=2)
    booking = _two_hours_before(world, start)
    with time_machine.travel(two_hours - timedelta(hours=1), tick=False):
        _propose(world, {"reminder_offsets": [86_400]}, effective_from=two_hours)
        db.session.commit()
    assert runner.tick(start - timedelta(hours=24)) == 2
    assert runner.claim(two_hours) == 2
    runner.run(two_hours + timedelta(minutes=1))
    assert {(r.status, r.note) for r in _reminders(booking) if r.offset_key == "2h"} == {
        (ReminderStatus.WITHDRAWN, "reminder times changed")
    }
    with time_machine.travel(two_hours + timedelta(minutes=5), tick=False):
        _propose(
            world,
            {"reminder_offsets": [86_400, 7_200]},
            effective_from=two_hours + timedelta(minutes=10),
        )
        db.session.commit()
    assert _follow(two_hours + timedelta(minutes=15)) == {"withdrawn": 0, "bookings": 0}
    assert runner.tick(two_hours + timedelta(minutes=16)) == 0
    assert _sent_once(world, booking) == ["Reminder: Consultation tomorrow"]


def test_a_reminder_time_the_policy_added_is_said_in_words(app):
    """A reminder says the time left when it goes: the default times' words, and those
    of a time the policy added (2 h, 30 min, 1 min)."""
    from flask_babel import force_locale

    from portal.notify.reminders import when_words

    start = NOW + timedelta(days=2)
    ahead = {"24h": timedelta(hours=24), "1h": timedelta(hours=1), "2h": timedelta(hours=2),
             "15m": timedelta(minutes=15), "30m": timedelta(minutes=30),
             "1m": timedelta(minutes=1)}  # fmt: skip
    with app.test_request_context():
        said = [when_words(start, start - ahead[k], "Asia/Kolkata") for k in ahead]
        assert said == [
            "tomorrow",
            "in 1 hour",
            "in 2 hours",
            "in 15 minutes",
            "in 30 minutes",
            "in 1 minute",
        ]
        with force_locale("hi"):
            assert when_words(start, start - ahead["2h"], "Asia/Kolkata") == "2 घंटे में"


@pytest.mark.parametrize("job", ["notify.follow_reminder_times", "notify.send_due_reminders"])
def test_the_reminder_schedulers_write_inside_a_unit_of_work(world, job):
    """The two periodic reminder jobs wrote (the follower's UPDATE and sync's INSERTs, the
    sender's claims) straight on the scheduler's session, committed by ``run_periodic``:
    outside any unit of work, so in the embedded mode without the process lock every other
    writer takes first (docs/architecture.md, "The embedded mode"; found by a review with a
    write tracer in ``make run``). Every write they make is now inside one."""
    start = NOW + timedelta(days=2)
    booking_id = make_booking(world, start, providers=world.doctors)
    schedule_reminders(booking_id)
    db.session.commit()
    assert _reminders(booking_id, ReminderStatus.PENDING)
    if job == "notify.follow_reminder_times":  # a time no longer in force, others missing
        db.session.execute(
            sa.update(Reminder).where(Reminder.offset_key == "24h").values(offset_key="999")
        )
    db.session.commit()
    writes = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        verb = statement.lstrip().split(None, 1)[0].upper()
        if verb in ("INSERT", "UPDATE", "DELETE"):
            writes.append((verb, db.session.info.get("uow_depth", 0)))

    engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", seen)
    try:
        with time_machine.travel(start - timedelta(hours=23), tick=False):
            jobs.run_periodic(job)
    finally:
        sa.event.remove(engine, "before_cursor_execute", seen)
    assert writes, "the job had nothing to write: the test proves nothing"
    assert [w for w in writes if w[1] == 0] == []
