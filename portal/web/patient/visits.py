"""The patient's booking journey: hold a slot (/me/book), the visit page (items, coupon,
wallet, pay), the gateway's return (/paid; its POST form told at /returned; a paid
payment link's, /me/links/paid),
confirmation, "My visits" and the GST receipt.

Every page is a full page; htmx requests that target ``#summary`` or ``#visit-body`` get
just that block (``_block``). Successful posts answer 303 (htmx follows the redirect with
its headers, so the redirected GET answers with the same block).

Over 400 lines because the journey's pages share one visit and its forms; each route is
short."""

from types import SimpleNamespace
from zoneinfo import ZoneInfo

from flask import abort, current_app, flash, g, redirect, request, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from portal.accounts import queries as account_queries
from portal.booking import checkout as booking_checkout
from portal.booking import errors as booking_errors
from portal.booking import lifecycle, queries
from portal.booking import paid as booking_paid
from portal.booking import prices as booking_prices
from portal.booking import receipts as booking_receipts
from portal.booking import visits as booking_visits
from portal.booking.errors import BookingError, NotFound, PaymentError, SlotUnavailable
from portal.booking.models import IndividualBooking, MasterBooking
from portal.catalog import queries as catalog_queries
from portal.catalog.models import FOLLOW_UP, LAB_TEST
from portal.config import policy
from portal.db import loaded_columns, put_back
from portal.domain.pricing import price_item
from portal.domain.rates import paise_to_text
from portal.domain.states import VisitStatus
from portal.extensions import csrf, db, limiter
from portal.i18n import N_
from portal.payments.models import ORDER
from portal.payments.timeline import plain_steps
from portal.refunds import queries as refund_queries
from portal.wallet import queries as wallet_queries
from portal.web.errors import apply_booking_error, flash_unpaid
from portal.web.filters import translate
from portal.web.forms.booking import (
    FIELD_MAP,
    SELF,
    BookForm,
    CouponCodeForm,
    PayForm,
    WalletForm,
    dependent_id_of,
    options,
    parse_start,
    person_choices,
    person_value,
    referral_label,
)
from portal.web.htmx import (
    htmx_block,
    redirect_out,
    render,
    render_form,
    render_in_place,
    swap_form,
)
from portal.web.limits import wait_for
from portal.web.paging import page_args
from portal.web.patient import bp, gateway_returns
from portal.web.security import get_owned_or_404, owned_or_404
from portal.web.sessions import leave_alone
from portal.web.signed_in import WALLET_BALANCE, reads_with_user
from portal.web.urls import external_url, on_this_host

VISIT_STATUSES = tuple(VisitStatus)
BOOK = "patient/visits/book.html"
VISIT = "patient/visits/visit.html"
LIST = "patient/visits/index.html"
CONFIRMATION = "patient/visits/confirmation.html"
RECEIPT = "patient/visits/receipt.html"
CHECKOUT = "patient/visits/checkout.html"
TAKEN = "patient/visits/taken.html"
LINK_PAID = "patient/visits/link_paid.html"


# --- shared helpers (the admin pages use them too) --------------------------------------


def timeline(visit):
    """Every payment attempt of the visit, oldest first: (attempt, payment)."""
    rows = [(a, p) for p in visit.payments for a in p.attempts]
    return sorted(rows, key=lambda row: (row[0].at, row[0].id))


# --- booking a slot --------------------------------------------------------------------


def _slot_from(values):
    """The provider, service, clinic and start named by a slot link, or None. The three
    come from the per-process catalog cache (merged into the session: a hold's checks
    find them there)."""
    ids = [values.get(name, type=int) for name in ("provider", "service", "clinic")]
    # bounded ints: a huge id is no slot, not a 500
    parts = catalog_queries.offer_parts(*ids) if all(ids) else (None, None, None)
    slot = dict(zip(("provider", "service", "clinic"), parts))
    slot["start"] = parse_start(values.get("start"))
    return slot if all(slot.values()) else None


def _referral_choices(slot, person):
    """Earlier paid bookings of the chosen ``person`` (a person choice's value) a follow-up
    or lab test may refer to: a referral is the same person's (the service checks it too),
    so the list follows the person chosen."""
    if slot["service"].kind not in (FOLLOW_UP, LAB_TEST):
        return None
    whose = dependent_id_of(person)
    rows = queries.referable_bookings(
        current_user.id, before=slot["start"], dependent_id=whose, any_person=False
    )
    return options([("", _l("No referral"))] + [(str(b.id), referral_label(b)) for b in rows])


def _person_choices():
    """Read once a request: a refused hold shows the page again with the same choices."""
    if "person_choices" not in g:
        dependents = account_queries.dependents_of(current_user.id)
        g.person_choices = person_choices(current_user, dependents)
    return g.person_choices


def _open_visit(dependent_id):
    """The account's newest unpaid visit for this person, where a new item goes, and how
    many items it holds."""
    return queries.newest_open_visit_and_count(current_user.id, dependent_id)


def _book_form(data=None):
    """From ``data`` (the slot link) on GET, from the posted form on POST. The person's
    choices are set by ``_book_page`` when the page is shown; a post is checked against
    them first."""
    if data is not None:
        return BookForm(formdata=None, data=data)
    form = BookForm()
    if request.form.get("person") == SELF:
        # "For me" is always a valid choice: the dependents are read only when the page
        # is shown again (``_book_page``), not for every hold.
        form.person.choices = options([(SELF, "")])
    else:
        form.person.choices = _person_choices()
    return form


def _person_named(form, visit):
    """Whom the unpaid visit a new item joins is for, as the person choice names them
    (the page says it: another person's item goes in a visit of their own)."""
    if visit is None:
        return None
    if visit.dependent_id is None:
        return current_user.name
    wanted = person_value(visit.dependent_id)
    return next((c.label for c in form.person.choices if c.value == wanted), "")


def _book_page(form, slot, status=None, open_visit=None):
    """``open_visit``: ``(the person's newest unpaid visit, its item count)`` when the
    caller has it (None: look it up)."""
    form.person.choices = _person_choices()
    if slot is None:
        return render(BOOK, status=400, form=form, slot=None)
    referrals = _referral_choices(slot, form.person.data)
    form.referral.choices = referrals or options([("", _l("No referral"))])
    price = price_item(slot["service"].fee_paise, slot["service"].taxable, policy())
    if open_visit is None:
        open_visit = _open_visit(dependent_id_of(form.person.data))
    context = dict(
        slot=slot,
        price=price,
        referrals=referrals,
        open_visit=open_visit[0],
        open_for=_person_named(form, open_visit[0]),
        open_items=open_visit[1],
    )
    if status:
        return render(
            BOOK, block=htmx_block("book_form", "for_person"), status=status, form=form, **context
        )
    return render_form(BOOK, form, block=htmx_block("book_form", "for_person"), **context)


@bp.get("/book")
def book():
    """What will be held: the slot, its price breakup, for whom, an optional referral.
    ``?person=`` (the person choice asks the page again with it, htmx on change): that
    person's unpaid visit and earlier visits are shown."""
    args = request.args
    data = {
        name: args.get(name, "") for name in ("provider", "service", "clinic", "start", "visit")
    }
    person = args.get("person")
    if person and any(choice.value == person for choice in _person_choices()):
        data["person"] = person  # their newest unpaid visit: looked up by ``_book_page``
        return _book_page(_book_form(data=data), _slot_from(args))
    visit = None
    open_visit = None  # not known yet
    visit_id = args.get("visit", type=int)
    if visit_id is not None:
        visit = db.session.get(MasterBooking, visit_id)
    if visit is None or visit.patient_id != current_user.id:
        # "Add another service": by default, for the person of the newest unpaid visit.
        # The newest unpaid visit of all is also its person's newest: the one shown.
        open_visit = queries.newest_open_visit_and_count(current_user.id, any_person=True)
        visit = open_visit[0]
    if visit is not None:
        data["person"] = person_value(visit.dependent_id)
    form = _book_form(data=data)
    return _book_page(form, _slot_from(args), open_visit=open_visit)


@bp.post("/book")
def hold_slot():
    """Hold the slot in the person's open visit (or a new one), then show the visit."""
    if "show" in request.form:
        return _book_page_for_person()
    form = _book_form()
    slot = _slot_from(request.form)
    if slot is None:
        return _book_page(form, None)
    no_referral = options([("", _l("No referral"))])
    form.referral.choices = _referral_choices(slot, form.person.data) or no_referral
    if not form.validate_on_submit():
        return _book_page(form, slot)
    dependent_id = dependent_id_of(form.person.data)
    # Read now: the hold's commit (or a refusal's rollback) expires every loaded row.
    name, shown = slot["service"].name, _shown_slot(slot)
    # A refusal's rollback writes nothing of the user's: the top bar needn't read it again.
    user = loaded_columns(current_user._get_current_object())
    try:
        item = booking_visits.add_item(
            current_user,
            patient_id=current_user.id,
            service_id=slot["service"].id,
            provider_ids=[slot["provider"].id],
            clinic_id=slot["clinic"].id,
            start_at=slot["start"],
            dependent_id=dependent_id,
            join_open_visit=True,  # the person's newest unpaid visit, if any
            referral_id=int(form.referral.data) if form.referral.data else None,
        )
    except NotFound:
        abort(404)
    except SlotUnavailable as exc:
        if not exc.taken:  # the person is busy then: a message on the form
            apply_booking_error(form, exc, FIELD_MAP)
            return _book_page(form, slot, status=422)
        put_back(user)
        return _time_taken(shown)
    except booking_errors.BookingError as exc:  # 422, the message on top
        apply_booking_error(form, exc, FIELD_MAP)
        return _book_page(form, slot, status=422)
    flash(
        gettext(
            "%(name)s is held for you for %(minutes)s minutes. Pay to confirm it.",
            name=name,
            minutes=int(lifecycle.hold_lifetime().total_seconds() // 60),
        ),
        "success",
    )
    return redirect(url_for("patient.visit", visit_id=item.master_id), 303)


def _book_page_for_person():
    """Without JavaScript, the person choice's Show button (htmx asks the page again on
    change otherwise): the book page's address for the person chosen, nothing held. A 303
    to a GET, so the address carries no CSRF token and the history no POST; ``book``
    ignores a person not of the account."""
    fields = ("provider", "service", "clinic", "start", "visit", "person")
    args = {name: request.form[name] for name in fields if request.form.get(name)}
    return redirect(url_for("patient.book", **args), 303)


def _shown_slot(slot):
    """What the "just taken" answer says about the slot, as plain values."""
    provider, service, clinic = slot["provider"], slot["service"], slot["clinic"]
    return SimpleNamespace(
        provider_id=provider.id,
        provider=provider.display_name,
        service_id=service.id,
        service=service.name,
        clinic_id=clinic.id,
        timezone=clinic.timezone,
        start=slot["start"],
    )


def _time_taken(slot):
    """Someone else holds the time (under a race for one time, every loser hears this):
    the message and the way back to that day's free times, from values already in hand;
    nothing is read and the book page is not built again."""
    day = slot.start.astimezone(ZoneInfo(slot.timezone)).date()
    times = url_for(
        "public.day_times",
        provider=slot.provider_id,
        service=slot.service_id,
        clinic=slot.clinic_id,
        date=day.isoformat(),
    )
    return render_in_place(TAKEN, "book_form", "#book-form", status=422, slot=slot, times_url=times)


# --- my visits -------------------------------------------------------------------------


@bp.get("/visits")
def visits():
    status = request.args.get("status", "")
    status = status if status in VISIT_STATUSES else ""
    page = queries.patient_visits_page(
        current_user.id,
        status=status or None,
        # Refunds processed and on their way apart, read with the items (no statement more).
        refunds_done=refund_queries.item_refunds_done(),
        **page_args(20),
    )
    return render(
        LIST, block=htmx_block("results"), page=page, status_filter=status, statuses=VISIT_STATUSES
    )


def _wallet_paise(form, visit_id):
    """The wallet amount asked for, checked against what the patient may use (None when
    invalid): the balance, and what the visit's pending order holds reserved
    (``booking.prices.wallet_available_for_visit``, read only when the balance is short)."""
    if not form.validate():
        return None
    paise = form.wallet.paise or 0
    if not paise:
        return 0  # no wallet asked for: no balance to read
    available = booking_prices.wallet_balance(current_user.id)
    if paise > available:
        available = booking_prices.wallet_available_for_visit(current_user.id, visit_id)
    if paise > available:
        form.wallet.errors = [gettext("Your wallet has %(amount)s.", amount=_inr(available))]
        return None
    return paise


def _inr(paise):
    return current_app.jinja_env.filters["inr"](paise)


def _visit_page(
    visit, *, coupon_form=None, wallet_form=None, pay_form=None, status=None, wallet_paise=0
):
    # The coupon, wallet and pay forms and the wallet's balance show only while the visit
    # awaits payment (a paid visit's page reads no balance), what was refunded only once
    # it is paid (the page shows refunds only then: an unpaid visit's reads none).
    paying = visit.awaits_payment
    wallet_text = paise_to_text(wallet_paise) if wallet_paise else ""
    if paying:
        coupon_form = coupon_form or CouponCodeForm(formdata=None)
        wallet_form = wallet_form or WalletForm(formdata=None, data={"wallet": wallet_text})
        pay_form = pay_form or PayForm(formdata=None, data={"wallet": wallet_text})
    # What the pay button will do with this wallet amount: the amounts it states, and
    # carries for the checkout to compare (``PayForm.shown``).
    quote = booking_prices.pay_quote(visit, wallet_paise)
    lines = {line.item_id: line for line in quote.lines}
    if status is None:
        forms = (coupon_form, wallet_form, pay_form)
        status = 422 if any(form is not None and form.errors for form in forms) else 200
    block = htmx_block("summary", "visit_body")
    return render(
        VISIT,
        block=block,
        status=status,
        visit=visit,
        quote=quote,
        money=refund_queries.visit_money(
            visit, wallet_paise, quote=quote, refunds=not visit.is_open
        ),
        lines=lines,
        coupon_form=coupon_form,
        wallet_form=wallet_form,
        pay_form=pay_form,
        wallet_balance=wallet_queries.shown_balance(visit.patient_id) if paying else 0,
        wallet_paise=wallet_paise,
        steps=plain_steps(timeline(visit)),
        fees=refund_queries.visit_fees(visit),
    )


@bp.get("/visits/<int:visit_id>")
@reads_with_user(WALLET_BALANCE)
def visit(visit_id):
    """An unpaid visit: items, coupon, wallet, pay. A paid one: statuses and timeline.
    ``?wallet=250`` previews the wallet applied (the "Apply wallet" form)."""
    visit = owned_or_404(queries.visit_for_page(visit_id))
    wallet_form = WalletForm(request.args) if "wallet" in request.args else None
    wallet_paise = _wallet_paise(wallet_form, visit.id) if wallet_form else 0
    pending = visit.pending_payment if wallet_form is None else None
    if pending is not None and pending.kind == ORDER:
        # Back from the gateway unpaid: the page shows the order's split ("Pay ₹X" after
        # the wallet's part), so its forms carry that wallet part; an empty one was a new
        # request, which dropped the wallet part and charged the whole visit online.
        wallet_paise = visit.wallet_applied
    return _visit_page(visit, wallet_form=wallet_form, wallet_paise=wallet_paise or 0)


def _back_to_visit(visit, wallet=None):
    return redirect(url_for("patient.visit", visit_id=visit.id, wallet=wallet or None), 303)


@bp.post("/visits/<int:visit_id>/items/<int:item_id>/remove")
def remove_item(visit_id, item_id):
    visit = get_owned_or_404(MasterBooking, visit_id)
    item = db.session.get(IndividualBooking, item_id)
    if item is None or item.master_id != visit.id:
        abort(404)
    name = item.service.name
    try:
        booking_visits.remove_item(current_user, item.id)
    except BookingError as exc:
        flash(translate(exc.message), "error")
    else:
        flash(gettext("%(name)s removed; its slot is free again.", name=name), "success")
    return _back_to_visit(visit)


MSG_COUPON_TRIES = N_("Too many coupon codes tried.")


def _too_many_coupon_tries(_limit):
    """Past COUPON_RATE_LIMIT: the visit page says so beside the code (429), no error page;
    over htmx the 429 is swapped as a 422 is (``swap_form``), not told in portal.js's
    generic words."""
    visit = get_owned_or_404(MasterBooking, request.view_args["visit_id"])
    form = CouponCodeForm(formdata=None)
    form.code.errors = [f"{gettext(MSG_COUPON_TRIES)} {wait_for(_limit)}"]
    return swap_form(_visit_page(visit, coupon_form=form, status=429))


# Every code a patient tries is counted before it is looked at (one atomic increment in
# Redis, across processes), so a code meant for a few cannot be found by trying many, even
# all at once; counting only the refused ones would let parallel tries pass the check.
@bp.post("/visits/<int:visit_id>/coupon")
@limiter.limit(
    lambda: current_app.config["COUPON_RATE_LIMIT"],
    key_func=lambda: f"user:{getattr(current_user, 'id', None)}",
    scope="coupon",
    methods=["POST"],
    on_breach=_too_many_coupon_tries,
)
def apply_coupon(visit_id):
    visit = get_owned_or_404(MasterBooking, visit_id)
    form = CouponCodeForm()
    wallet = request.form.get("wallet", "")
    if form.validate_on_submit():
        try:
            booking_visits.apply_coupon(current_user, visit.id, form.code.data)
        except booking_errors.BookingError as exc:
            apply_booking_error(form, exc, FIELD_MAP)
        else:
            flash(
                gettext("Coupon %(code)s applied.", code=form.code.data.strip().upper()), "success"
            )
            return _back_to_visit(visit, wallet)
    wallet_form = WalletForm(formdata=None, data={"wallet": wallet})
    return _visit_page(
        visit,
        coupon_form=form,
        wallet_form=wallet_form,
        wallet_paise=_wallet_paise(wallet_form, visit.id) or 0,
    )


@bp.post("/visits/<int:visit_id>/coupon/remove")
def remove_coupon(visit_id):
    visit = get_owned_or_404(MasterBooking, visit_id)
    try:
        booking_visits.remove_coupon(current_user, visit.id)
    except BookingError as exc:
        flash(translate(exc.message), "error")
    else:
        flash(N_("Coupon removed."), "success")
    return _back_to_visit(visit, request.form.get("wallet"))


@bp.post("/visits/<int:visit_id>/pay")
def pay(visit_id):
    """Checkout: the wallet part is reserved, the rest goes to Razorpay (the sandbox's page,
    or the hosted checkout form in production); wallet-only → straight to confirmation."""
    # The visit is loaded here only for a page to show: checkout itself finds (and locks)
    # it and refuses another's with NotFound.
    form = PayForm()
    wallet_paise = None
    if form.validate_on_submit():
        wallet_paise = _wallet_paise(form, visit_id)
    if wallet_paise is None:
        return _visit_page(get_owned_or_404(MasterBooking, visit_id), pay_form=form, status=422)
    callback = external_url("patient.visit_paid", visit_id=visit_id)
    try:
        result = booking_checkout.checkout(
            current_user, visit_id, wallet_paise, callback_url=callback, shown=form.shown()
        )
    except NotFound:
        abort(404)
    except booking_errors.BookingError as exc:
        visit = get_owned_or_404(MasterBooking, visit_id)
        apply_booking_error(form, exc, FIELD_MAP)
        return _visit_page(visit, pay_form=form, status=422, wallet_paise=wallet_paise)
    if result.redirect_url is None:
        flash(N_("Paid from your wallet."), "success")
        return redirect(url_for("patient.confirmation", visit_id=visit_id), 303)
    if result.needs_post:  # real Razorpay: its hosted checkout takes a form post
        visit = get_owned_or_404(MasterBooking, visit_id)
        return render(CHECKOUT, visit=visit, action=result.form_action, fields=result.form_fields)
    # The gateway's page is loaded as a page (a boosted post's XHR would swap it into ours).
    return redirect_out(on_this_host(result.redirect_url))


def _verify(params, visit_id):
    """Check the gateway's answer and, when it paid, capture it: the ``paid.Paid`` then
    (what the capture came to), else the PaymentError (its message a fixed text, never the
    request's). Needs no session: the signature over this visit's order is the proof, and
    without it nothing is written."""
    try:
        return booking_checkout.complete_checkout_callback(params, visit_id=visit_id)
    except PaymentError as exc:
        return exc


def _confirmation(visit_id, answer):
    # visit_id, not the returned (committed, so expired) visit's id: the signature was
    # checked for an order of this visit, and reading the id again would be a query. The
    # gateway payment goes along: the page (and a reload of it) says what it came to.
    return redirect(
        url_for("patient.confirmation", visit_id=visit_id, payment=answer.razorpay_payment_id),
        303,
    )


def _tell_unpaid(exc, visit_id):
    """Back to the signed-in owner's visit page (checked by the caller), told why it is
    unpaid and what is left of the hold."""
    hold = None
    if exc.message != booking_errors.MSG_CONFIRMING:
        hold = booking_checkout.hold_after_unpaid_return(current_user, visit_id)
    flash_unpaid(exc, hold)
    return redirect(url_for("patient.visit", visit_id=visit_id), 303)


def _tell_paid(outcome, number, visit_id):
    """Back to the signed-in owner's visit page, told what the payment came to
    (``booking.paid``'s words): where the money went when it did not pay the visit."""
    flash(translate(booking_paid.message(outcome, number)), booking_paid.LEVELS[outcome])
    return redirect(url_for("patient.visit", visit_id=visit_id), 303)


@bp.get("/visits/<int:visit_id>/paid")
def visit_paid(visit_id):
    """Where the (sandbox) checkout returns, with razorpay_* or error[...] query params."""
    get_owned_or_404(MasterBooking, visit_id)
    # visit_id from here on: the callback's commit expires the loaded visit.
    answer = _verify(gateway_returns.callback_params(request.args), visit_id)
    if isinstance(answer, PaymentError):
        return _tell_unpaid(answer, visit_id)
    if answer.elsewhere:  # into the wallet (or refunded): no confirmation to wait for
        return _tell_paid(answer.outcome, answer.number, visit_id)
    return _confirmation(visit_id, answer)


@bp.get("/visits/<int:visit_id>/returned")
def visit_returned(visit_id):
    """Where the gateway's POST return sends the browser when it did not pay the visit:
    ``?outcome=`` a fixed code (``gateway_returns``), told here, where the session is."""
    visit = get_owned_or_404(MasterBooking, visit_id)
    code = request.args.get("outcome")
    elsewhere = gateway_returns.paid_elsewhere(code)
    if elsewhere is not None:
        return _tell_paid(elsewhere, visit.number, visit_id)
    unpaid = gateway_returns.unpaid_error(code)
    if unpaid is None:  # no such code: the page, nothing said
        return redirect(url_for("patient.visit", visit_id=visit_id), 303)
    return _tell_unpaid(unpaid, visit_id)


def gateway_post_return(visit_id):
    """The same return as a form POST from the gateway's hosted checkout: no session cookie
    (SameSite=Lax), no CSRF token, so it is served outside the patient guard and leaves the
    session alone (``gateway_returns``). Verified and written here; the redirect that
    follows is a top-level GET, where the session (and the ownership check) is back."""
    leave_alone()  # whatever is done below, no session cookie to replace the browser's
    answer = _verify(gateway_returns.posted_params(request.form), visit_id)
    if isinstance(answer, PaymentError):
        outcome = gateway_returns.outcome_of(answer)
    elif answer.elsewhere:
        outcome = answer.outcome  # told on the GET, as a code of its own
    else:
        return _confirmation(visit_id, answer)
    return redirect(url_for("patient.visit_returned", visit_id=visit_id, outcome=outcome), 303)


def payment_link_paid():
    """Where Razorpay sends the browser after a payment link was paid (an admin's link
    sent by SMS or mail, or the one the visit page's Pay opened), with razorpay_* query
    params. Public: the link is often opened on a phone that is not signed in. Only a
    signed return of one of our links is acted on (``complete_link_callback``); the page
    names the visit's number and nothing else of the patient, and says what the payment
    came to (``booking.paid``). Its owner, signed in, goes to the visit's own page, told
    the same words."""
    try:
        paid = booking_checkout.complete_link_callback(
            gateway_returns.callback_params(request.args)
        )
    except PaymentError:
        return render(LINK_PAID, paid=None), 400
    if current_user.is_authenticated and current_user.id in paid.owner_ids:
        return _tell_paid(paid.outcome, paid.number, paid.visit_id)
    return render(LINK_PAID, paid=paid)


def _register_gateway_return():
    # POST on the same path as visit_paid, on the unguarded public blueprint.
    from portal.web.public import bp as public_bp

    view = csrf.exempt(gateway_post_return)
    public_bp.add_url_rule(
        f"{bp.url_prefix}/visits/<int:visit_id>/paid",
        endpoint="visit_paid_return",
        view_func=view,
        methods=["POST"],
    )
    # A payment link's return (GET, as Razorpay's links redirect), for anyone.
    public_bp.add_url_rule(
        f"{bp.url_prefix}/links/paid", endpoint="payment_link_paid", view_func=payment_link_paid
    )


_register_gateway_return()


@bp.get("/visits/<int:visit_id>/confirmation")
def confirmation(visit_id):
    """The visit after paying: what the payment came to in ``booking.paid``'s words (the
    gateway payment ``?payment=`` named by the return, else the visit's own), its items
    and its payment's timeline."""
    visit = owned_or_404(queries.visit_for_page(visit_id))
    payment_id = request.args.get("payment", "")[:64] or None
    return render(
        CONFIRMATION,
        visit=visit,
        paid=booking_paid.on_confirmation(visit, payment_id),
        steps=plain_steps(timeline(visit)),
        fees=refund_queries.visit_fees(visit),
    )


@bp.get("/visits/<int:visit_id>/receipt")
def receipt(visit_id):
    """The printable GST invoice of a paid visit."""
    visit = get_owned_or_404(MasterBooking, visit_id)
    try:
        receipt = booking_receipts.receipt(visit)
    except BookingError as exc:
        flash(translate(exc.message), "warning")
        return redirect(url_for("patient.visit", visit_id=visit.id), 303)
    return render(RECEIPT, visit=visit, receipt=receipt, fees=refund_queries.visit_fees(visit))
