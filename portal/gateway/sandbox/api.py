"""The sandbox's REST API under /v1: the paths the razorpay SDK and RazorpayX clients call."""

import hmac
import time

from flask import Blueprint, current_app, g, jsonify, request

from portal.gateway.sandbox.common import ApiError, not_found
from portal.gateway.sandbox.faults import error_body, shape_answer, shapes_answers

bp = Blueprint("api", __name__, url_prefix="/v1")


def sandbox():
    return current_app.extensions["razorpay_sandbox"]


def store():
    return sandbox().store


@bp.before_request
def _authenticate_and_misbehave():
    sb = sandbox()
    auth = request.authorization
    if (
        auth is None
        or auth.type != "basic"
        or not (
            hmac.compare_digest(str(auth.username or ""), sb.store.key_id)
            and hmac.compare_digest(str(auth.password or ""), sb.store.key_secret)
        )
    ):
        error = ApiError("The api key provided is invalid", status=401, reason="NA", source="NA")
        return jsonify(error.body()), 401
    latency, status, hang = sb.faults.plan(request.method, request.path)
    if latency:
        time.sleep(latency)
    if status == "garbage":  # a proxy's error page, or a body cut short
        return "<html><body>502 Bad Gateway</body></html>", 200, {"Content-Type": "text/html"}
    if isinstance(status, tuple):  # an answer_next fault: JSON not shaped as Razorpay's
        answer_status, answer_body = status
        return answer_body, answer_status, {"Content-Type": "application/json"}
    if status:
        return jsonify(error_body(status)), status
    g.sandbox_hang = hang
    # The clock's due steps and the record faults this answer is shaped by, in one hold of
    # the store's lock: on a shared store each hold is a database transaction, and reading
    # the faults apart (twice, after the handler) made 3-4 of them per call instead of 2.
    # Read as the request starts: no API call changes them.
    with sb.store.lock:
        sb.store.tick()
        g.sandbox_records = sb.faults.records()


@bp.after_request
def _shape(response):
    # The reconciliation faults: the gateway's answer disagrees with what it told us.
    records = g.get("sandbox_records")
    if response.status_code != 200 or not response.is_json or not shapes_answers(records):
        return response
    shaped = shape_answer(records, response.get_json(), request.path)
    if shaped is None:
        missing = jsonify(not_found().body())
        missing.status_code = 400
        return missing
    response.set_data(jsonify(shaped).get_data())
    return response


@bp.after_request
def _hang(response):
    # A "timeout" fault: the work is done and stored, only the answer comes too late.
    if g.get("sandbox_hang"):
        time.sleep(g.sandbox_hang)
    return response


@bp.errorhandler(ApiError)
def _api_error(error):
    return jsonify(error.body()), error.status


def body():
    data = request.get_json(silent=True)
    if data is None:
        if request.form:
            return request.form.to_dict()
        if request.get_data():
            raise ApiError("The request body must be JSON.")
        return {}
    if not isinstance(data, dict):
        raise ApiError("The request body must be a JSON object.")
    return data


def args():
    return request.args.to_dict()


# --- orders and payments ----------------------------------------------------------------


@bp.post("/orders")
def create_order():
    return store().create_order(body())


@bp.get("/orders")
def list_orders():
    return store().list_orders(args())


@bp.get("/orders/<order_id>")
def get_order(order_id):
    return store().get_order(order_id)


@bp.get("/orders/<order_id>/payments")
def order_payments(order_id):
    return store().order_payments(order_id, args())


@bp.get("/payments")
def list_payments():
    return store().list_payments(args())


@bp.get("/payments/<payment_id>")
def get_payment(payment_id):
    return store().get_payment(payment_id)


@bp.post("/payments/<payment_id>/capture")
def capture_payment(payment_id):
    return store().capture_payment(payment_id, body())


# --- refunds -------------------------------------------------------------------------------


def _refund(payment_id, data):
    refund, _created = store().create_refund(
        payment_id, data, request.headers.get("X-Refund-Idempotency")
    )
    return refund


@bp.post("/payments/<payment_id>/refund")
def refund_payment(payment_id):
    return _refund(payment_id, body())


@bp.post("/refunds")
def create_refund():
    data = body()
    payment_id = data.pop("payment_id", None)
    if not payment_id:
        raise ApiError("The payment id field is required.", field="payment_id")
    return _refund(payment_id, data)


@bp.get("/payments/<payment_id>/refunds")
def payment_refunds(payment_id):
    return store().list_refunds(args(), payment_id=payment_id)


@bp.get("/payments/<payment_id>/refunds/<refund_id>")
def payment_refund(payment_id, refund_id):
    return store().get_refund(refund_id, payment_id=payment_id)


@bp.get("/refunds")
def list_refunds():
    return store().list_refunds(args())


@bp.get("/refunds/<refund_id>")
def get_refund(refund_id):
    return store().get_refund(refund_id)


# --- payment links ------------------------------------------------------------------------


def public_url():
    return current_app.config.get("PUBLIC_URL") or request.url_root


@bp.post("/payment_links")
def create_link():
    return store().create_link(body(), public_url())


@bp.get("/payment_links")
def list_links():
    return store().list_links(args())


@bp.get("/payment_links/<link_id>")
def get_link(link_id):
    return store().get_link(link_id)


@bp.post("/payment_links/<link_id>/cancel")
def cancel_link(link_id):
    return store().cancel_link(link_id)


@bp.post("/payment_links/<link_id>/notify_by/<medium>")
def notify_link(link_id, medium):
    return store().notify_link(link_id, medium)


# --- RazorpayX -----------------------------------------------------------------------------


@bp.post("/contacts")
def create_contact():
    contact, created = store().create_contact(body())
    return contact, 201 if created else 200


@bp.get("/contacts/<contact_id>")
def get_contact(contact_id):
    return store().get_contact(contact_id)


@bp.post("/fund_accounts")
def create_fund_account():
    account, created = store().create_fund_account(body())
    return account, 201 if created else 200


@bp.get("/fund_accounts/<fund_account_id>")
def get_fund_account(fund_account_id):
    return store().get_fund_account(fund_account_id)


@bp.post("/fund_accounts/validations")
def create_validation():
    return store().create_validation(body())


@bp.get("/fund_accounts/validations/<validation_id>")
def get_validation(validation_id):
    return store().get_validation(validation_id)


@bp.post("/payouts")
def create_payout():
    payout, _created = store().create_payout(body(), request.headers.get("X-Payout-Idempotency"))
    return payout


@bp.get("/payouts")
def list_payouts():
    return store().list_payouts(args())


@bp.get("/payouts/<payout_id>")
def get_payout(payout_id):
    return store().get_payout(payout_id)


# --- settlements ---------------------------------------------------------------------------


@bp.get("/settlements")
def list_settlements():
    return store().list_settlements(args())


@bp.get("/settlements/recon/combined")
def settlement_recon():
    return store().settlement_recon(args())


@bp.get("/settlements/<settlement_id>")
def get_settlement(settlement_id):
    return store().get_settlement(settlement_id)
