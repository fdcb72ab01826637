"""Issue #15: every route refuses the stranger, with real objects.

Two users of each role without admin powers (patients, providers) get real objects: a
visit with a booking and a payment, a dependent, a reschedule, a refund, a fund account
and a payout, availability and leave, notifications. Then every route of ``app.url_map``
is walked (GET and POST, CSRF off in the test app) with the FIRST user's object ids
substituted in the path, as the other patient, the other provider and an anonymous
visitor. Each must be refused (403/404, or the login page for the anonymous), never a 500;
no stranger's page may show the owner's personal data, and nothing of the owner's may
change. The owners themselves get their GET pages (so the ids are real, not 404 by
accident). Routes without an object id in the path get the owner's ids in the query and
the form instead (``visit_id=…&dependent_id=…``): they may answer, but never leak or
write. Admins see everything by design and are not strangers here.
"""

import re
from datetime import date, timedelta
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
import time_machine

from portal.accounts.models import Dependent, User
from portal.accounts.passwords import hash_password
from portal.booking.models import Coupon, IndividualBooking, MasterBooking, Reschedule
from portal.catalog.models import Availability, Leave, Provider
from portal.exports.models import Export
from portal.extensions import db
from portal.notify.models import Notification
from portal.payments.models import Payment
from portal.payouts.models import FundAccount, Payout, PayoutRun
from portal.policies.service import ensure_first_version
from portal.reconcile.models import ReconCase, ReconRun
from portal.refunds.models import Refund
from portal.settlements.models import Settlement
from portal.transactions.models import MoneyMovement
from portal.wallet.models import WalletAdjustment
from tests.booking.factories import NOW, at, build_world
from tests.plugin import PASSWORD, sign_in

# Public by design, with why (they must still never answer 500):
PUBLIC_BY_DESIGN = {
    # The gateway's browser return after paying: CSRF-exempt and reached without a
    # session on purpose; its signature decides (issue #15 finding 6, fixed separately).
    "public.visit_paid_return": "signed payment return from the gateway",
    "public.reschedule_paid_return": "signed payment return from the gateway",
    # A signed, single-use token is the credential, not a session.
    "auth.reset_password": "signed password-reset token",
    "auth.accept_invite": "signed invitation token",
}
SKIP = {"auth.logout": "would end the walking session", "static": "files"}
REFUSED = (403, 404)
# Strings only the owners' pages contain.
# (A provider's display name is public: the find page lists it.)
# The owner provider's PAN, as on file and as their own TDS page masks it: the TDS page and
# its CSV read the signed-in provider's own figures, never a provider_id sent to them.
VICTIM_PAN = "VKRMV1234Q"
SECRETS = (
    "Vasudha Victim",
    "Kiran Victimchild",
    "victim.patient@example.com",
    VICTIM_PAN,
    "VKRMV••••Q",
)
# Answers 5xx on purpose: the readiness check reports 503 while a dependency (Redis) is down.
HEALTH = {"ops.readyz"}


def _object(owner_ids, param):
    """The owner's id for a URL parameter (admin-only parameters name any real object)."""
    return owner_ids.get(param, owner_ids["any"].get(param))


def _build(app):
    """Objects for two patients and two providers; returns ({param: id} for owner 0,
    the same for owner 1, the emails by role and side)."""
    world = build_world(n_patients=2, n_doctors=2)
    sides = []
    for side in (0, 1):
        patient = db.session.get(User, world.patients[side])
        provider = db.session.get(Provider, world.doctors[side])
        if side == 0:
            patient.name, patient.email = "Vasudha Victim", "victim.patient@example.com"
            provider.display_name = "Dr Vikram Victim"
            provider.pan = VICTIM_PAN
            dependent = db.session.get(Dependent, world.child)
            dependent.name = "Kiran Victimchild"
        else:
            dependent = Dependent(guardian_id=patient.id, name="Other Child", relationship_="child")
            dependent.date_of_birth = date(2019, 5, 5)
            db.session.add(dependent)
        start = at(3, 10 + side)
        visit = MasterBooking(
            number=f"VOWN{side}",
            patient_id=patient.id,
            dependent_id=dependent.id if side == 0 else None,
            created_by_id=patient.id,
            status="CONFIRMED",
        )
        db.session.add(visit)
        db.session.flush()
        item = IndividualBooking(
            master_id=visit.id,
            service_id=world.consult,
            clinic_id=world.clinic,
            start_at=start,
            end_at=start + timedelta(minutes=30),
            status="CONFIRMED",
            fee=50_000,
            platform_fee=2_500,
            gst=450,
            total=52_950,
            paid_amount=52_950,
            gateway_paid=52_950,
        )
        item.providers = [provider]
        db.session.add(item)
        db.session.flush()
        payment = Payment(
            master_id=visit.id,
            kind="ORDER",
            amount=52_950,
            status="SUCCESSFUL",
            razorpay_order_id=f"order_own{side}",
            razorpay_payment_id=f"pay_own{side}",
            captured_amount=52_950,
            created_by_id=patient.id,
        )
        reschedule = Reschedule(
            booking_id=item.id,
            visit_id=visit.id,
            requested_by_id=patient.id,
            old_start=start,
            old_end=start + timedelta(minutes=30),
            new_start=start + timedelta(days=1),
            new_end=start + timedelta(days=1, minutes=30),
            notice_minutes=3000,
            penalty_bps=0,
            penalty=0,
            platform_fee=0,
            gst=0,
            total=0,
            status="DONE",
        )
        fund = FundAccount(
            provider_id=provider.id,
            kind="vpa",
            holder_name=provider.display_name,
            vpa_masked="v***@upi",
            status="VALIDATED",
        )
        db.session.add_all([payment, reschedule, fund])
        db.session.flush()
        # A refund of a reschedule fee: a real refund of the owner's that leaves the
        # booking's own refundable amount (which the cancel preview computes) alone.
        refund = Refund(
            booking_id=item.id,
            visit_id=visit.id,
            patient_id=patient.id,
            amount=100,
            destination="WALLET",
            idempotency_key=f"own-refund-{side}",
            status="PENDING",
            reschedule_id=reschedule.id,
        )
        db.session.add(refund)
        run = PayoutRun(key=f"own-run-{side}", schedule="WEEKLY", period_end=NOW.date())
        db.session.add(run)
        db.session.flush()
        payout = Payout(
            provider_id=provider.id,
            fund_account_id=fund.id,
            run_id=run.id,
            kind="CYCLE",
            financial_year="2026-27",
            gross=1_000,
            tds=0,
            net=1_000,
            tds_rate_bps=1_000,
            tds_threshold=5_000_000,
            mode="UPI",
            idempotency_key=f"own-payout-{side}",
            status="QUEUED",
        )
        leave = Leave(
            provider_id=provider.id,
            starts_at=at(10, 9),
            ends_at=at(10, 18),
            reason="conference",
        )
        window = db.session.scalars(
            sa.select(Availability).where(Availability.provider_id == provider.id)
        ).first()
        notes = [
            Notification(user_id=uid, kind="test", title=f"Private note {side}", link="/me/")
            for uid in (patient.id, provider.user_id)
        ]
        db.session.add_all([payout, leave, *notes])
        db.session.flush()
        sides.append(
            {
                "patient_email": patient.email,
                "provider_email": provider.user.email,
                "patient": {
                    "visit_id": visit.id,
                    "item_id": item.id,
                    "payment_id": payment.id,
                    "reschedule_id": reschedule.id,
                    "dependent_id": dependent.id,
                    "notification_id": notes[0].id,
                },
                "provider": {
                    "item_id": item.id,
                    "booking_id": item.id,
                    "window_id": window.id,
                    "leave_id": leave.id,
                    "notification_id": notes[1].id,
                },
            }
        )
    coupon = Coupon(code="OWNTEST", kind="FLAT", value=100)
    db.session.add(coupon)
    adjustment = WalletAdjustment(
        patient_id=world.patients[0],
        created_by_id=world.admin,
        amount=100,
        note="A note for the ownership walk",
        public_reason="Walk",
        window_total=100,
        needs_approval=True,
    )
    db.session.add(adjustment)
    export = Export(
        name="audit", title="Audit log", download_name="a.csv", requested_by_id=world.admin
    )
    db.session.add_all([coupon, export])
    recon_run = ReconRun(window_start=at(0, 0), window_end=at(1, 0), trigger="admin")
    db.session.add(recon_run)
    db.session.flush()
    recon_case = ReconCase(
        kind="payment", reference="pay_owntest", status="discrepancy", first_run_id=recon_run.id
    )
    db.session.add(recon_case)
    db.session.flush()
    first = sides[0]
    admin_any = {
        "visit_id": first["patient"]["visit_id"],
        "item_id": first["patient"]["item_id"],
        "payment_id": first["patient"]["payment_id"],
        "approval_id": 1,  # none exist: admin-only either way
        "flag_id": 1,  # an attention flag: admin-only either way
        "adjustment_id": adjustment.id,
        "kind": "wallet_adjustment",  # the approvals queue's kinds
        "row_id": adjustment.id,
        "version_id": ensure_first_version().id,  # policy version 1 (admin-only)
        "clinic_id": world.clinic,
        "coupon_id": coupon.id,
        "export_id": export.id,  # the admin's own background export (still queued)
        "case_id": recon_case.id,
        "reference": recon_case.reference,
        "payout_id": db.session.scalar(sa.select(Payout.id).order_by(Payout.id)),
        "run_id": db.session.scalar(sa.select(PayoutRun.id).order_by(PayoutRun.id)),
        "provider_id": world.doctors[0],
        "refund_id": db.session.scalar(sa.select(Refund.id).order_by(Refund.id)),
        "service_id": world.consult,
        "spec_id": world.gp,
        "user_id": world.patients[0],
        "patient_id": world.patients[0],
        "queue_name": "default",
        "job_id": "nothing",
        "token": "not-a-token",
    }
    admin_any["item_id"] = first["patient"]["item_id"]
    for user in db.session.scalars(sa.select(User)):
        user.password_hash = hash_password(PASSWORD)
    admin_email = db.session.get(User, world.admin).email
    settlement = Settlement(
        razorpay_settlement_id="setl_OWN", status="processed", amount=0, settled_at=NOW
    )
    db.session.add(settlement)
    db.session.flush()
    admin_any["settlement_id"] = settlement.id
    db.session.commit()
    # The console's rows are written at the commit (portal.transactions.projection).
    admin_any["movement_id"] = db.session.scalar(
        sa.select(MoneyMovement.id).order_by(MoneyMovement.id)
    )
    for side in sides:
        for role in ("patient", "provider"):
            side[role]["any"] = admin_any
    return sides, admin_email


def _snapshot(owner):
    """What a stranger must not change: the owner's rows (the stranger may change their
    own, e.g. "mark all notifications read")."""
    mine = {
        MasterBooking: [owner["patient"]["visit_id"]],
        IndividualBooking: [owner["patient"]["item_id"]],
        Dependent: [owner["patient"]["dependent_id"]],
        Notification: [owner["patient"]["notification_id"], owner["provider"]["notification_id"]],
        Leave: [owner["provider"]["leave_id"]],
        Reschedule: [owner["patient"]["reschedule_id"]],
        # The owner provider's PAN (the bank page's PAN form writes only the signed-in
        # provider's own, whatever id is sent).
        Provider: [owner["provider"]["any"]["provider_id"]],
    }
    rows = []
    for model, ids in mine.items():
        for object_id in ids:
            obj = db.session.get(model, object_id)
            state = (
                getattr(obj, "status", None),
                getattr(obj, "read_at", None),
                getattr(obj, "pan", None),
            )
            rows.append((model.__name__, object_id, obj is not None, *state))
    return rows


def _audience(rule):
    if rule.rule.startswith("/me/") and not rule.endpoint.startswith("public."):
        return "patient"
    if rule.rule.startswith("/provider/"):
        return "provider"
    if rule.rule.startswith("/admin/"):
        return "admin"
    if rule.rule.startswith("/notifications/"):
        return "signed-in"
    return "other"


def _routes(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint in SKIP:
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule, method


def _url(rule, ids):
    def value(match):
        got = _object(ids, match.group(2))
        assert got is not None, f"no object for <{match.group(2)}> in {rule.rule}"
        return str(got)

    return re.sub(r"<(?:(\w+):)?(\w+)>", value, rule.rule)


@pytest.fixture
def owned(app):
    with time_machine.travel(NOW, tick=True):
        with app.app_context():
            sides, admin_email = _build(app)
            db.session.remove()
        yield sides, admin_email


def _sign_in(app, email):
    return sign_in(app, SimpleNamespace(email=email))


def test_owners_reach_their_own_objects(app, owned):
    """The ids are real: each owner gets each of their GET pages."""
    sides, admin_email = owned
    owner = sides[0]
    clients = {
        "patient": _sign_in(app, owner["patient_email"]),
        "provider": _sign_in(app, owner["provider_email"]),
        "admin": _sign_in(app, admin_email),
    }
    failures = []
    for rule, method in _routes(app):
        audience = _audience(rule)
        if method != "GET" or "<" not in rule.rule or audience not in clients:
            continue
        ids = owner.get(audience, owner["patient"])
        status = clients[audience].get(_url(rule, ids)).status_code
        if status in (401, 403, 404) or (status >= 500 and rule.endpoint not in HEALTH):
            failures.append(f"GET {rule.rule} as its owner ({audience}): {status}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("stranger", ["anonymous", "patient", "provider"])
def test_every_route_refuses_the_stranger(app, owned, stranger):
    sides, _admin = owned
    owner, other = sides
    client = (
        app.test_client() if stranger == "anonymous" else _sign_in(app, other[f"{stranger}_email"])
    )
    with app.app_context():
        before = _snapshot(owner)
        db.session.remove()
    all_owner_ids = {**owner["patient"]["any"], **owner["provider"], **owner["patient"]}
    all_owner_ids.pop("any", None)
    form = {k: str(v) for k, v in all_owner_ids.items()}
    failures = []
    walked = 0
    for rule, method in _routes(app):
        audience = _audience(rule)
        has_ids = "<" in rule.rule
        ids = owner.get(audience, owner["patient"])
        url = _url(rule, ids) if has_ids else rule.rule
        if has_ids:
            response = client.open(url, method=method, data={}, buffered=True)  # streams end here
        else:
            response = client.open(url, method=method, query_string=form, data=form)
        walked += 1
        status = response.status_code
        where = f"{method} {url} as the other {stranger}: {status}"
        if status >= 500 and rule.endpoint not in HEALTH:
            failures.append(where)
            continue
        body = response.get_data(as_text=True)
        leaked = [s for s in SECRETS if s in body]
        if leaked:
            failures.append(f"{where} shows {leaked}")
            continue
        if not has_ids or rule.endpoint in PUBLIC_BY_DESIGN or audience == "other":
            continue  # no object of the owner's in the path: answering is fine, leaking not
        if stranger == "anonymous":
            ok = status == 401 or (
                status in (302, 303) and "/auth/login" in (response.location or "")
            )
        else:
            ok = status in REFUSED
        if not ok:
            failures.append(where)
    assert walked > 100
    with app.app_context():
        after = _snapshot(owner)
        db.session.remove()
    changed = sorted(map(repr, set(before) ^ set(after)))
    assert not failures, "\n".join(failures)
    assert not changed, f"a stranger changed the owner's rows: {changed}"
