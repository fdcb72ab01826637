"""One simulated history: a seed picks every step and every fault; the invariants are
checked after each step; a failure carries the seed and the step list.

How the system is driven (all in-process, nothing of the portal replaced):

- use cases: the booking, checkout, cancellation, reschedule and completion services,
  called as the views call them;
- jobs: the outbox runs as the embedded runner runs it (``run_outbox_item``) but the
  hand-over after a commit lands in ``Sim.redis`` (a stand-in for the RQ queues) and runs
  when the history says so; the periodic work runs through ``run_periodic``;
- the gateway: the sandbox mounted in the app, reached by the official SDK in-process; a
  patient pays through the sandbox store (what its checkout page does), the checkout
  callback is verified like the view does; the sandbox's webhooks reach the real
  ``/webhooks/*`` endpoints with valid signatures, in the order and number the history
  picks;
- time: one fixed clock (``time_machine``) the history moves forward.
"""

import random
import traceback
from contextlib import ExitStack, contextmanager
from datetime import timedelta

import httpx
import requests
import sqlalchemy as sa
import time_machine

from portal import jobs
from portal.accounts.models import User
from portal.accounts.service import AccountError
from portal.booking import checkout, visits
from portal.booking.errors import BookingError
from portal.booking.models import IndividualBooking, MasterBooking
from portal.domain.states import AdjustmentStatus, BookingStatus, VisitStatus
from portal.extensions import db
from portal.gateway.inprocess import WSGIAdapter
from portal.gateway.sandbox.common import ApiError
from portal.ledger import accounts as chart
from portal.payouts import completion
from portal.payouts.common import PayoutError
from portal.wallet import adjustments
from portal.wallet.models import WalletAdjustment
from tests.booking.factories import IST, NOW, at, quoted_checkout
from tests.refunds.helpers import quoted_cancel, quoted_move, quoted_provider_cancel
from tests.sim import invariants
from tests.sim.world import populate, reset

# What a use case may refuse with (a message to the user, never a 500).
REFUSALS = (BookingError, AccountError, PayoutError)
IDLE = "(idle)"  # a step that found nothing to do
HOURS = [(h, m) for h in range(9, 17) for m in (0, 30)]


class SimFailure(AssertionError):
    def __init__(self, seed, steps, problems, replay):
        self.seed, self.steps, self.problems = seed, steps, problems
        lines = [f"simulation seed {seed} failed at line {len(steps)} of its history:"]
        lines += [f"  {p}" for p in problems]
        lines.append("steps:")
        lines += [f"  {n:3d}. {s}" for n, s in enumerate(steps, 1)]
        lines.append(f"replay: python -m tests.sim {replay}")
        super().__init__("\n".join(lines))


class SimKill(Exception):
    """A job killed mid-way (after its work, before its done mark commits)."""


class Sim:
    def __init__(self, app, seed, steps=25, verbose=False, lose_webhooks=False):
        self.app, self.seed, self.n_steps, self.verbose = app, seed, steps, verbose
        # Off by default: Razorpay retries a webhook for 24 hours, so "dropped" means
        # "delivered by a later step". On, a dropped webhook is lost for good.
        self.lose_webhooks = lose_webhooks
        self.rng = random.Random(seed)
        self.sandbox = app.extensions["razorpay_sandbox"]
        self.redis = []  # outbox ids handed over and not yet run (the RQ queues)
        self.log = []
        self.crash_next_dispatch = False
        self.kill_next_job = False
        self.timeout_next = 0
        self.stats = {}

    # --- the world's plumbing -----------------------------------------------------------

    def _dispatch(self, ids):
        # RQ refuses a job id it already holds (outbox-<id>): so does this queue.
        ids = [i for i in ids if i not in self.redis]
        if ids and self.crash_next_dispatch:
            # The process died right after the commit: nothing reached Redis.
            self.crash_next_dispatch = False
            self._note(f"    (crash after commit: outbox {ids} not handed over)")
            return
        self.redis.extend(ids)

    def _timeouts(self):
        """Arm gateway timeouts: the request is done at the sandbox, the answer is lost."""
        sim = self
        real_requests, real_httpx = WSGIAdapter.send, httpx.WSGITransport.handle_request

        def send(adapter, request, *args, **kwargs):
            response = real_requests(adapter, request, *args, **kwargs)
            if sim.timeout_next:
                sim.timeout_next -= 1
                raise requests.exceptions.ReadTimeout(f"simulated timeout: {request.url}")
            return response

        def handle(transport, request):
            response = real_httpx(transport, request)
            if sim.timeout_next:
                sim.timeout_next -= 1
                raise httpx.ReadTimeout(f"simulated timeout: {request.url}", request=request)
            return response

        return send, handle

    @contextmanager
    def running(self):
        send, handle = self._timeouts()
        with ExitStack() as stack:
            stack.enter_context(_patched(jobs, "_dispatch", self._dispatch))
            stack.enter_context(_patched(WSGIAdapter, "send", send))
            stack.enter_context(_patched(httpx.WSGITransport, "handle_request", handle))
            self.clock = stack.enter_context(time_machine.travel(NOW, tick=False))
            stack.enter_context(self.app.app_context())
            yield

    def _note(self, text):
        self.log.append(text)
        if self.verbose:
            print(text)

    # --- the history ---------------------------------------------------------------------

    def run(self):
        with self.running():
            reset(self.app)
            # The sandbox's ids and event ids from the seed too: a replay prints the same.
            self.sandbox.store._random = random.Random(self.seed)
            self.sandbox.webhooks._random = random.Random(self.seed)
            self.world = populate(self.app)
            self.sandbox.reset_faults(seed=self.seed)
            self.redis.clear()
            self.check("world built")
            for _ in range(self.n_steps):
                name, fn = self.pick()
                try:
                    text = fn()
                except REFUSALS as exc:
                    db.session.rollback()
                    text = f"{name}: refused ({type(exc).__name__}: {exc})"
                except Exception:
                    db.session.rollback()
                    self.log.append(f"{name}: crashed")
                    raise SimFailure(*self.failure([traceback.format_exc()])) from None
                self.stats[name] = self.stats.get(name, 0) + 1
                if text.endswith(IDLE):
                    self._note(text)  # nothing changed: no need to check again
                else:
                    self.check(text)
            self.settle()
            self.outcome = self.count()
        return self

    def count(self):
        """What the history did (the CLI sums these to show the runs are not idle)."""
        from portal.payouts.models import Payout
        from portal.refunds.models import Refund

        def n(model, *where):
            return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))

        done = (BookingStatus.CONFIRMED, BookingStatus.COMPLETED, BookingStatus.CANCELLED)
        return {
            "items paid": n(IndividualBooking, IndividualBooking.status.in_(done)),
            "completed": n(IndividualBooking, IndividualBooking.status == BookingStatus.COMPLETED),
            "cancelled": n(IndividualBooking, IndividualBooking.status == BookingStatus.CANCELLED),
            "refunds processed": n(Refund, Refund.status == "PROCESSED"),
            "payouts processed": n(Payout, Payout.status == "PROCESSED"),
        }

    def failure(self, problems):
        replay = f"--seed {self.seed} --steps {self.n_steps}"
        if self.lose_webhooks:
            replay += " --lose-webhooks"
        return self.seed, self.log, problems, replay

    def check(self, text, at_rest=False):
        self._note(text)
        db.session.expire_all()
        problems = invariants.check(self.sandbox, at_rest=at_rest)
        if problems:
            raise SimFailure(*self.failure(problems))

    STEPS = (
        ("book", 6),
        ("pay", 6),
        ("cancel", 2),
        ("reschedule", 2),
        ("complete", 3),
        ("webhooks", 6),
        ("worker", 6),
        ("tick", 4),
        ("fault", 4),
        ("adjust", 2),
    )

    def pick(self):
        names = [n for n, _w in self.STEPS]
        weights = [w for _n, w in self.STEPS]
        name = self.rng.choices(names, weights)[0]
        return name, getattr(self, "step_" + name)

    # --- helpers ------------------------------------------------------------------------

    def user(self, user_id):
        return db.session.get(User, user_id)

    def now(self):
        from portal.db import utcnow

        return utcnow()

    def visits_where(self, *conditions):
        return db.session.scalars(
            sa.select(MasterBooking).where(*conditions).order_by(MasterBooking.id)
        ).all()

    def items_where(self, *conditions):
        return db.session.scalars(
            sa.select(IndividualBooking).where(*conditions).order_by(IndividualBooking.id)
        ).all()

    def a_start(self):
        """A slot start within the next two working days, ahead of the clock."""
        now = self.now()
        for _ in range(20):
            day = self.rng.choice([0, 1, 2, 3])
            hh, mm = self.rng.choice(HOURS)
            start = at(now.astimezone(NOW.tzinfo).date() + timedelta(days=day), hh, mm)
            if start > now + timedelta(minutes=30) and start.astimezone(NOW.tzinfo).weekday() < 5:
                return start
        return None

    def pay_order(self, order_id, callback):
        succeed = self.rng.random() < 0.85
        try:
            payment = self.sandbox.store.pay_order(order_id, succeed=succeed)
        except ApiError as exc:  # what the checkout page shows (e.g. already paid)
            return f"order {order_id}: the checkout page refuses ({exc})"
        text = f"paid order {order_id} ({'captured' if succeed else 'declined'})"
        if succeed and callback:
            params = {
                "razorpay_order_id": order_id,
                "razorpay_payment_id": payment["id"],
                "razorpay_signature": self.sandbox.store.checkout_signature(
                    order_id, payment["id"]
                ),
            }
            callback(params)
            text += ", callback"
        return text

    # --- the steps ----------------------------------------------------------------------

    def step_book(self):
        w = self.world
        patient = self.user(self.rng.choice(w.patients))
        choices = [
            (w.consult, [w.doctors[0]]),
            (w.consult, [w.doctors[1]]),
            (w.follow, [w.doctors[0]]),
            (w.lab, [w.lab_provider]),
            (w.peel, [w.derm]),
        ]
        first = None
        made = []
        for _ in range(self.rng.choice([1, 1, 2, 3])):
            service, providers = self.rng.choice(choices)
            start = self.a_start()
            if start is None:
                break
            try:
                item = visits.add_item(
                    patient,
                    patient_id=patient.id,
                    service_id=service,
                    provider_ids=providers,
                    clinic_id=w.clinic,
                    start_at=start,
                    visit_id=first.master_id if first else None,
                )
            except REFUSALS as exc:
                db.session.rollback()
                made.append(f"refused {start.astimezone(IST):%a %H:%M} ({exc})")
                continue
            first = first or item
            made.append(f"item {item.id} {start.astimezone(IST):%a %H:%M}")
        text = f"book: patient {patient.id}: " + ", ".join(made)
        if first is not None and self.rng.random() < 0.6:
            text += "; " + self.checkout(first.master_id)
        return text

    def step_pay(self):
        open_visits = self.visits_where(
            MasterBooking.status.in_((VisitStatus.DRAFT, VisitStatus.PENDING_PAYMENT))
        )
        if not open_visits:
            return "pay: nothing to pay (idle)"
        return "pay: " + self.checkout(self.rng.choice(open_visits).id)

    def checkout(self, visit_id):
        visit = db.session.get(MasterBooking, visit_id)
        patient = self.user(visit.patient_id)
        wallet = invariants.balance(chart.patient_wallet(patient.id))
        use = self.rng.choice([0, 0, wallet // 2, wallet]) if wallet > 0 else 0
        result = quoted_checkout(patient, visit.id, use, callback_url="http://portal.test/cb")
        text = f"checkout visit {visit.id} (wallet {use})"
        if result.redirect_url is None:
            return text + ": covered by the wallet"
        order_id = result.payment.razorpay_order_id
        callback = checkout.complete_checkout_callback if self.rng.random() < 0.6 else None
        return text + ": " + self.pay_order(order_id, callback)

    def step_cancel(self):
        items = self.items_where(IndividualBooking.status == BookingStatus.CONFIRMED)
        if not items:
            return "cancel: nothing confirmed (idle)"
        item = self.rng.choice(items)
        who = self.rng.choice(["patient", "patient", "provider"])
        if who == "patient":
            visit = item.visit
            siblings = [i.id for i in visit.items if i.status == BookingStatus.CONFIRMED]
            chosen = self.rng.sample(siblings, self.rng.randint(1, len(siblings)))
            prefer_wallet = self.rng.random() < 0.3
            quoted_cancel(
                self.user(visit.patient_id),
                visit.id,
                sorted(chosen),
                prefer_wallet=prefer_wallet,
                reason="sim",
            )
            return f"cancel: patient cancels items {sorted(chosen)} (wallet={prefer_wallet})"
        provider = item.providers[0]
        quoted_provider_cancel(self.user(provider.user_id), item.id, "sim: provider away")
        return f"cancel: provider {provider.id} cancels item {item.id}"

    def step_reschedule(self):
        items = self.items_where(IndividualBooking.status == BookingStatus.CONFIRMED)
        if not items:
            return "reschedule: nothing confirmed (idle)"
        item = self.rng.choice(items)
        start = self.a_start()
        if start is None:
            return "reschedule: no slot ahead"
        patient = self.user(item.visit.patient_id)
        pay_with = self.rng.choice(["wallet", "gateway"])
        result = quoted_move(  # as the patient's page: the fee shown, then confirmed
            patient, item.id, start, pay_with=pay_with, callback_url="http://portal.test/r/__ID__"
        )
        text = f"reschedule: item {item.id} to {start.astimezone(IST):%a %H:%M}"
        if result.moved:
            return text + ": moved"
        order_id = result.reschedule.razorpay_order_id
        if order_id is None:
            return text + f": {result.reschedule.status}"
        from portal.booking import reschedule_payment

        callback = reschedule_payment.complete_callback if self.rng.random() < 0.6 else None
        return text + ": fee " + self.pay_order(order_id, callback)

    def step_adjust(self):
        """An admin credits or debits a patient's wallet (sometimes above the threshold,
        sometimes more than the balance); a waiting one is decided by the other admin."""
        w = self.world
        waiting = db.session.scalars(
            sa.select(WalletAdjustment)
            .where(WalletAdjustment.status == AdjustmentStatus.PENDING_APPROVAL)
            .order_by(WalletAdjustment.id)
        ).all()
        if waiting and self.rng.random() < 0.5:
            row = self.rng.choice(waiting)
            checker = next(a for a in w.admins if a != row.created_by_id)
            if self.rng.random() < 0.7:
                adjustments.approve_adjustment(self.user(checker), row.id, "sim")
                return f"adjust: admin {checker} approves adjustment {row.id}"
            adjustments.reject_adjustment(self.user(checker), row.id, "sim")
            return f"adjust: admin {checker} rejects adjustment {row.id}"
        patient_id = self.rng.choice(w.patients)
        admin_id = self.rng.choice(w.admins)
        direction = self.rng.choice([adjustments.CREDIT, adjustments.CREDIT, adjustments.DEBIT])
        amount = self.rng.choice([100_00, 2_500_00, 7_500_00, 15_000_00])
        row = adjustments.create_adjustment(
            self.user(admin_id), patient_id, direction, amount, "sim adjustment note", "sim"
        )
        return f"adjust: admin {admin_id} {direction} {amount} on {patient_id}: {row.status}"

    def step_complete(self):
        now = self.now()
        items = self.items_where(
            IndividualBooking.status.in_((BookingStatus.CONFIRMED, BookingStatus.STARTED)),
            IndividualBooking.start_at <= now + completion.START_EARLY,
        )
        if not items:
            # Move the clock to the next confirmed start.
            ahead = self.items_where(IndividualBooking.status == BookingStatus.CONFIRMED)
            if not ahead:
                return "complete: nothing confirmed (idle)"
            target = min(i.start_at for i in ahead)
            self.clock.move_to(target)
            return f"complete: clock to {target.astimezone(IST):%a %H:%M}"
        item = self.rng.choice(items)
        user = self.user(item.providers[0].user_id)
        if item.status == BookingStatus.CONFIRMED:
            completion.start_booking(user, item.id)
        completion.complete_booking(user, item.id)
        return f"complete: item {item.id}"

    def step_webhooks(self):
        """Deliver what the sandbox has queued: in order, shuffled, some twice, some held
        back (delivered by a later step, as Razorpay retries)."""
        self.sandbox.store.tick()
        wh = self.sandbox.webhooks
        with wh._lock:
            batch, wh.pending = list(wh.pending), []
        if not batch:
            return "webhooks: none queued (idle)"
        mode = self.rng.choice(["in order", "shuffled", "duplicated", "dropped", "reversed"])
        shaped, held = list(batch), []
        if mode == "shuffled":
            self.rng.shuffle(shaped)
        elif mode == "reversed":
            shaped.reverse()
        elif mode == "duplicated":
            shaped = [d for d in batch for _ in range(self.rng.choice([1, 2]))]
            self.rng.shuffle(shaped)
        elif mode == "dropped":
            shaped, held = [], []
            for d in batch:
                (held if self.rng.random() < 0.5 else shaped).append(d)
        statuses = []
        for delivery in shaped:
            status = wh._send(delivery)
            statuses.append(f"{delivery.event}={status}")
            if not (isinstance(status, int) and 200 <= status < 300):
                held.append(delivery)
        lost = []
        if mode == "dropped" and self.lose_webhooks:
            lost = [d for d in held if d not in shaped]
            held = [d for d in held if d in shaped]
        with wh._lock:
            wh.pending = held + wh.pending
            wh.dropped.extend(lost)
        text = f"webhooks ({mode}): " + ", ".join(statuses)
        if held:
            text += f"; {len(held)} held"
        if lost:
            text += "; lost for good: " + ", ".join(d.event for d in lost)
        return text

    def step_worker(self):
        """The worker takes what Redis holds (some of it, or all) and runs it."""
        if not self.redis:
            return "worker: queue empty (idle)"
        take = self.rng.randint(1, len(self.redis))
        batch, self.redis = self.redis[:take], self.redis[take:]
        ran = []
        for item_id in batch:
            ran.append(self.run_item(item_id))
        return "worker: " + ", ".join(ran)

    def run_item(self, item_id):
        from portal.outbox import OutboxItem

        name = db.session.scalar(sa.select(OutboxItem.job).where(OutboxItem.id == item_id))
        db.session.rollback()
        if self.kill_next_job and name in jobs.JOBS:
            self.kill_next_job = False
            real = jobs.JOBS[name]

            def killed(**payload):
                real(**payload)
                raise SimKill(f"{name} killed before its commit")

            with _patched_item(jobs.JOBS, name, killed):
                self._run(item_id)
            return f"{item_id}:{name} (killed)"
        self._run(item_id)
        return f"{item_id}:{name}"

    def _run(self, item_id):
        # A worker runs each job in an app context (and session) of its own.
        db.session.remove()
        with self.app.app_context():
            jobs.run_outbox_item(item_id, reraise=False)
            db.session.remove()

    def step_tick(self):
        """Time passes; the scheduler runs every periodic job once."""
        minutes = self.rng.choice([1, 5, 15, 30, 60, 120])
        self.clock.shift(timedelta(minutes=minutes))
        self.sandbox.store.tick()
        self.periodic()
        return f"tick: +{minutes} min, periodic work ran"

    def periodic(self):
        db.session.remove()
        for name in sorted(jobs.PERIODIC):
            with self.app.app_context():
                try:
                    jobs.run_periodic(name)
                finally:
                    db.session.remove()

    def step_fault(self):
        kind = self.rng.choice(["5xx", "timeout", "kill", "crash", "redis"])
        if kind == "5xx":
            status = self.rng.choice([500, 502, 503, 504])
            n = self.rng.randint(1, 3)
            self.sandbox.set_faults(fail_next=n, error_status=status)
            return f"fault: the next {n} gateway requests answer {status}"
        if kind == "timeout":
            self.timeout_next = self.rng.randint(1, 2)
            return f"fault: the next {self.timeout_next} gateway answers time out"
        if kind == "kill":
            self.kill_next_job = True
            return "fault: the next job is killed before its commit"
        if kind == "crash":
            self.crash_next_dispatch = True
            return "fault: the process crashes after the next commit, before the hand-over"
        lost = len(self.redis)
        self.redis.clear()
        return f"fault: Redis emptied ({lost} queued jobs lost)"

    # --- at rest --------------------------------------------------------------------------

    def settle(self, rounds=12):
        """Faults off; time passes, webhooks are delivered, the worker and the scheduler
        run until nothing moves; then the portal must agree with the gateway."""
        self.sandbox.reset_faults(seed=self.seed)
        self.timeout_next, self.kill_next_job, self.crash_next_dispatch = 0, False, False
        for _ in range(rounds):
            self.clock.shift(timedelta(minutes=30))
            self.sandbox.advance(0)
            self.sandbox.deliver_pending(force=True)
            while self.redis:
                self._run(self.redis.pop(0))
            self.periodic()
            while self.redis:
                self._run(self.redis.pop(0))
            if not self.sandbox.webhooks.pending and not self.sandbox.store.pending_steps():
                break
        self.check("settled: faults off, everything delivered and run", at_rest=True)


@contextmanager
def _patched(owner, name, value):
    saved = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, saved)


@contextmanager
def _patched_item(mapping, key, value):
    saved = mapping[key]
    mapping[key] = value
    try:
        yield
    finally:
        mapping[key] = saved


def run_seed(app, seed, steps=25, verbose=False, lose_webhooks=False):
    return Sim(app, seed, steps=steps, verbose=verbose, lose_webhooks=lose_webhooks).run()
