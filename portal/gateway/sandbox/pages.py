"""Browser pages of the sandbox (hosted checkout, payment-link page) and its control API.

The pages are plain HTML forms: no scripts at all, so they work under a strict CSP and in
a browser test without Razorpay's checkout.js."""

import hmac
import json
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)

from portal.gateway.sandbox.common import ApiError

bp = Blueprint("pages", __name__)

CSS = """
body{font-family:system-ui,sans-serif;background:#f3f5f9;margin:0;color:#1b2330}
main{max-width:26rem;margin:3rem auto;background:#fff;border-radius:.6rem;padding:1.5rem 2rem;
box-shadow:0 2px 12px rgba(0,0,0,.08)}
h1{font-size:1.1rem;margin:0 0 .25rem}.amount{font-size:1.8rem;font-weight:700;margin:.5rem 0}
.muted{color:#5b6576;font-size:.85rem}fieldset{border:1px solid #d8dde6;border-radius:.4rem;
margin:1rem 0}label{display:block;padding:.3rem 0}.row{display:flex;gap:.75rem}
button{flex:1;padding:.7rem;border-radius:.4rem;border:0;font-size:1rem;cursor:pointer}
.pay{background:#2b63d9;color:#fff}.fail{background:#e8ebf0;color:#8a1c1c}
.banner{background:#fff3cd;padding:.5rem .75rem;border-radius:.4rem;font-size:.85rem}
.error{background:#fde2e2;padding:.5rem .75rem;border-radius:.4rem}
"""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }} · Razorpay sandbox</title>
<link rel="stylesheet" href="{{ url_for('pages.css') }}"></head>
<body><main>
<p class="banner">Razorpay sandbox: no real money moves.</p>
{% if error %}<p class="error" role="alert">{{ error }}</p>{% endif %}
{% if payable %}
<h1>{{ title }}</h1>
<p class="muted">{{ description }}</p>
<p class="amount">{{ amount }}</p>
<form method="post" action="{{ action }}">
  {% for name, value in hidden.items() %}
  <input type="hidden" name="{{ name }}" value="{{ value }}">{% endfor %}
  <fieldset><legend>Pay with</legend>
    <label><input type="radio" name="method" value="upi" checked> UPI</label>
    <label><input type="radio" name="method" value="card"> Card</label>
    <label><input type="radio" name="method" value="netbanking"> Netbanking</label>
  </fieldset>
  <div class="row">
    <button class="pay" type="submit" name="outcome" value="success">Pay {{ amount }}</button>
    <button class="fail" type="submit" name="outcome" value="failure">Fail payment</button>
  </div>
</form>
{% else %}
<h1>{{ title }}</h1><p>{{ message }}</p>
{% if details %}<dl>{% for k, v in details.items() %}<dt>{{ k }}</dt><dd><code>{{ v }}</code>
</dd>{% endfor %}</dl>{% endif %}
{% endif %}
</main></body></html>"""


def sandbox():
    return current_app.extensions["razorpay_sandbox"]


def rupees(paise):
    return f"₹{paise // 100:,}.{paise % 100:02d}"


def _compiled_page():
    """PAGE compiled once per app: ``render_template_string`` compiled it again for every
    page (each checkout's, then its answer's), a few milliseconds of CPU each time."""
    kept = current_app.extensions
    if "sandbox_page" not in kept:
        kept["sandbox_page"] = current_app.jinja_env.from_string(PAGE)
    return kept["sandbox_page"]


def page(status=200, **context):
    context.setdefault("payable", False)
    context.setdefault("error", None)
    html = render_template(_compiled_page(), **context)
    return Response(
        html,
        status=status,
        headers={
            "Content-Security-Policy": "default-src 'none'; style-src 'self'; form-action *; "
            "frame-ancestors 'none'; base-uri 'none'",
            "Cache-Control": "no-store",
        },
    )


def with_params(url, params):
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url):
    """(scheme, host, port) of an absolute http(s) URL, or None for anything a browser
    might read differently from us: a backslash, whitespace or control characters,
    user info (``https://portal@evil``), no host."""
    if not isinstance(url, str) or any(c == "\\" or c.isspace() or ord(c) < 32 for c in url):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or "@" in parts.netloc:
        return None
    return parts.scheme, parts.hostname.lower(), port or DEFAULT_PORTS[parts.scheme]


def allowed_callback(url):
    """Is ``url`` on the merchant's own site? The callback origins configured (the portal's
    PUBLIC_URL, or the origins of the webhook URLs when the sandbox runs on its own), and,
    when mounted in the portal, the portal's origin this page was served from."""
    origin = origin_of(url)
    if origin is None:
        return False
    allowed = {origin_of(o) for o in current_app.config.get("CALLBACK_ORIGINS") or ()}
    if current_app.config.get("MOUNTED"):
        allowed.add(origin_of(request.host_url))
    return origin in allowed


def safe_callback(url):
    """A callback URL the checkout may redirect to, else 400: the sandbox must not be an
    open redirect on the portal's origin."""
    if not url:
        return None
    if not allowed_callback(url):
        abort(400, "callback_url must be a page of the merchant's own site")
    return url


@bp.before_request
def _tick():
    sandbox().store.tick()


@bp.get("/_static/sandbox.css")
def css():
    return Response(CSS, mimetype="text/css", headers={"Cache-Control": "max-age=3600"})


# --- hosted checkout --------------------------------------------------------------------


def checkout_page(order_id, callback_url, status=200, error=None):
    store = sandbox().store
    try:
        order = store.get_order(order_id)
    except ApiError:
        return page(404, title="Unknown order", message="This order does not exist.")
    if order["status"] == "paid":
        return page(409, title="Already paid", message="This order has been paid.")
    return page(
        status,
        payable=True,
        error=error,
        title="Clinic Portal (sandbox merchant)",
        description=f"Order {order_id} · receipt {order['receipt'] or '-'}",
        amount=rupees(order["amount"]),
        action=url_for("pages.checkout_submit", order_id=order_id),
        hidden={"callback_url": callback_url or ""},
    )


@bp.get("/checkout/<order_id>")
def checkout(order_id):
    return checkout_page(order_id, safe_callback(request.args.get("callback_url")))


@bp.post("/v1/checkout/embedded")
def hosted_checkout():
    """Razorpay's hosted (script-free) checkout entry: a form posted by the merchant page."""
    if request.form.get("key_id") != sandbox().store.key_id:
        return page(401, title="Invalid key", message="The key_id is not this sandbox's.")
    return checkout_page(
        request.form.get("order_id", ""), safe_callback(request.form.get("callback_url"))
    )


@bp.post("/checkout/<order_id>")
def checkout_submit(order_id):
    store = sandbox().store
    callback_url = safe_callback(request.form.get("callback_url"))
    method = request.form.get("method", "upi")
    if method not in ("upi", "card", "netbanking"):
        method = "upi"
    succeed = request.form.get("outcome") != "failure"
    try:
        payment = store.pay_order(order_id, method=method, succeed=succeed)
    except ApiError as error:
        return checkout_page(order_id, callback_url, status=400, error=error.description)
    if succeed:
        params = {
            "razorpay_payment_id": payment["id"],
            "razorpay_order_id": order_id,
            "razorpay_signature": store.checkout_signature(order_id, payment["id"]),
        }
    else:
        params = failure_params(payment)
    if callback_url:
        return redirect(with_params(callback_url, params), code=303)
    return page(
        title="Payment " + ("successful" if succeed else "failed"),
        message="No callback_url was given; these are the callback parameters.",
        details=params,
    )


def failure_params(payment):
    return {
        "error[code]": payment["error_code"],
        "error[description]": payment["error_description"],
        "error[source]": payment["error_source"],
        "error[step]": payment["error_step"],
        "error[reason]": payment["error_reason"],
        "error[metadata]": json.dumps(
            {"payment_id": payment["id"], "order_id": payment["order_id"]}
        ),
    }


# --- payment links ------------------------------------------------------------------------


@bp.get("/pl/<link_id>")
def link_page(link_id, status=200, error=None):
    store = sandbox().store
    try:
        link = store.get_link(link_id)
    except ApiError:
        return page(404, title="Unknown link", message="This payment link does not exist.")
    if link["status"] != "created":
        return page(
            410 if link["status"] in ("expired", "cancelled") else 200,
            title=f"Payment link {link['status']}",
            message=f"This payment link is {link['status']}.",
        )
    return page(
        status,
        payable=True,
        error=error,
        title="Clinic Portal (sandbox merchant)",
        description=link["description"] or f"Payment link {link_id}",
        amount=rupees(link["amount"]),
        action=url_for("pages.link_submit", link_id=link_id),
        hidden={},
    )


@bp.post("/pl/<link_id>")
def link_submit(link_id):
    store = sandbox().store
    method = request.form.get("method", "upi")
    if method not in ("upi", "card", "netbanking"):
        method = "upi"
    succeed = request.form.get("outcome") != "failure"
    try:
        payment, link = store.pay_link(link_id, method=method, succeed=succeed)
    except ApiError as error:
        return link_page(link_id, status=400, error=error.description)
    if not succeed:
        return link_page(link_id, status=402, error=payment["error_description"])
    params = {
        "razorpay_payment_id": payment["id"],
        "razorpay_payment_link_id": link["id"],
        "razorpay_payment_link_reference_id": link["reference_id"],
        "razorpay_payment_link_status": link["status"],
        "razorpay_signature": store.link_signature(link, payment["id"]),
    }
    if link["callback_url"] and allowed_callback(link["callback_url"]):
        return redirect(with_params(link["callback_url"], params), code=303)
    return page(
        title="Payment successful",
        message="Thank you, the payment was received.",
        details={"Payment id": payment["id"]},
    )


# --- control API: tests and demos steer the sandbox -----------------------------------


@bp.before_app_request
def _control_needs_a_key():
    """The control API moves time, forces outcomes and resets everything: only for a caller
    with the sandbox's own key (HTTP basic, as its /v1 API) or, when it is mounted in the
    portal, a signed-in admin of the portal (``CONTROL_AUTHORIZER``). Never anonymous."""
    if not request.path.startswith("/_control/"):
        return None
    store = sandbox().store
    auth = request.authorization
    if (
        auth is not None
        and auth.type == "basic"
        and hmac.compare_digest(str(auth.username or ""), store.key_id)
        and hmac.compare_digest(str(auth.password or ""), store.key_secret)
    ):
        return None
    authorizer = current_app.config.get("CONTROL_AUTHORIZER")
    if authorizer is not None and authorizer(request.environ):
        return None
    error = ApiError("The api key provided is invalid", status=401, reason="NA", source="NA")
    response = jsonify(error.body())
    response.status_code = 401
    response.headers["WWW-Authenticate"] = 'Basic realm="sandbox control"'
    return response


def control_json():
    data = request.get_json(silent=True)
    return data if isinstance(data, dict) else {}


@bp.get("/_control/state")
def state():
    sb = sandbox()
    return {
        "now": sb.store.now(),
        "faults": sb.faults.snapshot(),
        "pending_steps": sb.store.pending_steps(),
        "pending_webhooks": len(sb.webhooks.pending),
        "delivered_webhooks": len(sb.webhooks.delivered),
        "failed_webhooks": len(sb.webhooks.failed),
        "dropped_webhooks": len(sb.webhooks.dropped),
    }


@bp.post("/_control/faults")
def set_faults():
    data = control_json()
    sb = sandbox()
    if data.pop("reset", False):
        sb.faults.reset()
    try:
        return sb.faults.set(**data)
    except ValueError as error:
        return {"error": str(error)}, 400


@bp.post("/_control/advance")
def advance():
    data = control_json()
    sb = sandbox()
    sb.advance(float(data.get("seconds", 0)))
    return {"now": sb.store.now()}


@bp.post("/_control/deliver")
def deliver():
    return {"results": sandbox().deliver_pending()}


@bp.post("/_control/settle")
def settle():
    day = control_json().get("date") or sandbox().today().isoformat()
    return {"settlement": sandbox().store.settle_day(day)}


@bp.post("/_control/outcome")
def outcome():
    data = control_json()
    sandbox().store.force_outcome(data.get("id"), data.get("outcome"))
    return {"ok": True}


@bp.post("/_control/reset")
def reset():
    sandbox().reset()
    return {"ok": True}


@bp.get("/_control/events")
def events():
    return {"events": list(sandbox().webhooks.events)}


@bp.get("/_control/notifications")
def notifications():
    return {"notifications": list(sandbox().store.notifications)}
