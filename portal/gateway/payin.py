"""Pay-in through the official razorpay SDK: orders, checkout signatures, payment links,
refunds, settlements.

The SDK sets no timeout and keeps no status code on its errors; a small requests session
adds both, and every call is mapped to the typed errors of ``portal.gateway.errors``.
Retries: reads, and writes that carry an idempotency key, are retried on network errors
and 5xx; other writes are retried only when the request surely never left."""

import threading
import time
from datetime import datetime
from urllib.parse import urlencode

import razorpay
import requests
from razorpay.errors import SignatureVerificationError
from urllib3.exceptions import NewConnectionError

from portal.gateway import errors
from portal.gateway.retry import DEADLINE, with_retries

PRODUCTION_URL = "https://api.razorpay.com"


class _Session(requests.Session):
    """A default timeout, and the last answer kept (per thread) for error mapping."""

    def __init__(self, timeout):
        super().__init__()
        self.timeout = timeout
        self._local = threading.local()

    def request(self, method, url, **kwargs):
        kwargs.setdefault("timeout", self.timeout)
        self._local.response = None
        response = super().request(method, url, **kwargs)
        self._local.response = response
        return response

    @property
    def last_response(self):
        return getattr(self._local, "response", None)

    def forget_response(self):
        """Before a call: a response left by an earlier call must not be read as its."""
        self._local.response = None


class _Client(razorpay.Client):
    """The SDK's client with its own version looked up once: the SDK reads its package
    metadata (importlib.metadata) for the User-Agent on every request, a third of the
    client's CPU per list page in the reconciliation benchmark."""

    _version = None

    def _get_version(self):
        if self._version is None:
            self._version = super()._get_version()
        return self._version


def _unix(value):
    return int(value.timestamp()) if isinstance(value, datetime) else int(value)


class RazorpayPayIn:
    def __init__(
        self,
        key_id,
        key_secret,
        base_url=PRODUCTION_URL,
        *,
        timeout=10.0,
        retries=2,
        backoff=0.5,
        session=None,
        sleep=time.sleep,
    ):
        if not key_id or not key_secret:
            raise errors.AuthenticationFailed("RAZORPAY_KEY_ID / RAZORPAY_KEY_SECRET not set")
        self.base_url = base_url.rstrip("/")
        self.retries = retries
        self.backoff = backoff
        self.timeout = float(timeout or 0)
        self._sleep = sleep
        self.session = session or _Session(timeout)
        self.client = _Client(
            session=self.session, auth=(key_id, key_secret), base_url=self.base_url
        )
        self.client.set_app_details({"title": "clinic-portal", "version": "0.1"})
        self.key_id = key_id

    def close(self):
        self.session.close()

    @property
    def is_sandbox(self):
        return self.base_url != PRODUCTION_URL

    # --- calling the SDK ------------------------------------------------------------------

    def _call(self, fn, *args, retry_ambiguous=True, idempotency_key=None, **kwargs):
        """Run one SDK call with retries; raise typed errors."""

        def attempt():
            forget = getattr(self.session, "forget_response", None)
            if forget is not None:
                forget()
            try:
                answer = fn(*args, **kwargs)
            except Exception as exc:  # narrowed by _translate, which re-raises the rest
                error, ambiguous = self._translate(exc, idempotency_key)
            else:
                if isinstance(answer, dict):
                    return answer
                # Every call we make answers an object; a 2xx with anything else (``[]``,
                # ``null``) is unreadable, and the request may have been made.
                response = getattr(self.session, "last_response", None)
                status = response.status_code if response is not None else None
                error, ambiguous = errors.unreadable_success(status, answer), True
            error.ambiguous = ambiguous
            raise error

        return with_retries(
            attempt,
            retries=self.retries,
            backoff=self.backoff,
            sleep=self._sleep,
            retry_ambiguous=retry_ambiguous,
            timeout=self.timeout,
        )

    def _translate(self, exc, idempotency_key):
        """(typed error, whether the request may have taken effect)."""
        response = getattr(self.session, "last_response", None)
        # An answer came and the SDK failed reading it: its own errors for an error answer,
        # JSONDecodeError for a body that is not JSON, and TypeError or the like when the
        # body is JSON but not Razorpay's error object (``null``, ``42``, ``"an error"``,
        # ``{"error": null}``: it indexes into them). The answer is what counts.
        if response is not None and (
            isinstance(
                exc,
                (
                    requests.exceptions.JSONDecodeError,
                    razorpay.errors.BadRequestError,
                    razorpay.errors.GatewayError,
                    razorpay.errors.ServerError,
                ),
            )
            or not isinstance(exc, requests.exceptions.RequestException)
        ):
            try:
                body = response.json()
            except ValueError:
                body = errors.NOT_JSON
            if response.ok:  # a 2xx the SDK could not read
                return errors.unreadable_success(response.status_code, body), True
            error = errors.from_response(response.status_code, body, str(exc))
            return error, isinstance(error, errors.GatewayUnavailable)
        if isinstance(
            exc,
            razorpay.errors.BadRequestError
            | razorpay.errors.GatewayError
            | razorpay.errors.ServerError,
        ):
            return errors.from_response(None, None, str(exc)), True  # no answer kept to read
        if isinstance(exc, requests.exceptions.ConnectTimeout) or (
            isinstance(exc, requests.exceptions.ConnectionError)
            and isinstance(
                getattr(exc.args[0] if exc.args else None, "reason", None), NewConnectionError
            )
        ):
            return errors.GatewayUnavailable(f"Razorpay unreachable: {exc}"), False
        # Timeouts, dropped connections, and an answer cut off or undecodable on the way
        # back (ChunkedEncodingError, ContentDecodingError, ...): the request may have been
        # made, so the outcome is unknown and the retry reuses the key.
        if isinstance(exc, requests.exceptions.RequestException):
            return errors.GatewayTimeout(
                f"No answer from Razorpay: {exc!r}", idempotency_key=idempotency_key
            ), True
        raise exc

    # --- orders, payments, checkout ---------------------------------------------------

    def create_order(self, amount, receipt, notes=None, currency="INR"):
        """An order for ``amount`` paise. A retry after a lost answer may leave an unpaid
        orphan order at Razorpay; nobody is ever sent to it, and it expires."""
        data = {
            "amount": int(amount),
            "currency": currency,
            "receipt": receipt,
            "notes": notes or {},
        }
        return self._call(self.client.order.create, data)

    def fetch_order(self, order_id):
        return self._call(self.client.order.fetch, order_id)

    def fetch_order_payments(self, order_id):
        return errors.items_of(self._call(self.client.order.payments, order_id))

    def fetch_payment(self, payment_id):
        return self._call(self.client.payment.fetch, payment_id)

    def verify_payment_signature(self, order_id, payment_id, signature):
        """The checkout callback's signature, checked by the SDK's own utility."""
        try:
            return bool(
                self.client.utility.verify_payment_signature(
                    {
                        "razorpay_order_id": order_id,
                        "razorpay_payment_id": payment_id,
                        "razorpay_signature": signature or "",
                    }
                )
            )
        except SignatureVerificationError:
            return False

    def hosted_checkout(
        self,
        order_id,
        callback_url,
        *,
        name="Clinic Portal",
        description="",
        prefill=None,
        cancel_url=None,
    ):
        """Razorpay's script-free hosted checkout: a form the browser posts to Razorpay.
        Returns (action URL, fields); render the fields as hidden inputs."""
        fields = {
            "key_id": self.key_id,
            "order_id": order_id,
            "name": name,
            "description": description,
            "callback_url": callback_url,
        }
        if cancel_url:
            fields["cancel_url"] = cancel_url
        for key, value in (prefill or {}).items():
            fields[f"prefill[{key}]"] = value
        return self.base_url + "/v1/checkout/embedded", fields

    def checkout_url(self, order_id, callback_url):
        """A plain link to the sandbox's checkout page (sandbox only)."""
        if not self.is_sandbox:
            raise RuntimeError("checkout_url exists only on the sandbox; use hosted_checkout")
        return f"{self.base_url}/checkout/{order_id}?{urlencode({'callback_url': callback_url})}"

    # --- payment links -----------------------------------------------------------------

    def create_payment_link(
        self,
        amount,
        *,
        reference_id,
        expire_by,
        description="",
        customer=None,
        notify=None,
        callback_url=None,
        notes=None,
        reminder_enable=False,
    ):
        """A payment link; ``reference_id`` is unique at Razorpay, so after a lost answer
        the link is looked up by it instead of being created twice."""
        data = {
            "amount": int(amount),
            "currency": "INR",
            "accept_partial": False,
            "reference_id": reference_id,
            "expire_by": _unix(expire_by),
            "description": description,
            "customer": customer or {},
            "notify": notify or {"sms": False, "email": False},
            "reminder_enable": reminder_enable,
            "notes": notes or {},
        }
        if callback_url:
            data.update(callback_url=callback_url, callback_method="get")
        attempt, started = 0, time.monotonic()
        while True:
            try:
                return self._call(self.client.payment_link.create, data, retry_ambiguous=False)
            except errors.GatewayUnavailable as error:
                last = error
            except errors.BadRequest as error:
                if error.field != "reference_id":
                    raise
                last = error  # "already exists": our lost first attempt, most likely
            found = self._find_link_quietly(reference_id)
            if found is not None:
                return found
            attempt += 1
            over = time.monotonic() - started + 2 * self.timeout > DEADLINE  # a create, a find
            if attempt > self.retries or over or isinstance(last, errors.BadRequest):
                raise last
            self._sleep(self.backoff * 2 ** (attempt - 1))

    def _find_link_quietly(self, reference_id):
        try:
            return self.find_payment_link(reference_id)
        except errors.GatewayUnavailable:
            return None

    def find_payment_link(self, reference_id):
        links = (
            self._call(self.client.payment_link.all, {"reference_id": reference_id}).get(
                "payment_links"
            )
            or []
        )
        live = [link for link in links if link["status"] != "cancelled"]
        return live[0] if live else None

    def fetch_payment_link(self, link_id):
        return self._call(self.client.payment_link.fetch, link_id)

    def cancel_payment_link(self, link_id):
        return self._call(self.client.payment_link.cancel, link_id)

    def notify_payment_link(self, link_id, medium="sms"):
        return self._call(self.client.payment_link.notifyBy, link_id, medium)

    def verify_payment_link_signature(self, link_id, reference_id, status, payment_id, signature):
        try:
            return bool(
                self.client.utility.verify_payment_link_signature(
                    {
                        "payment_link_id": link_id,
                        "payment_link_reference_id": reference_id,
                        "payment_link_status": status,
                        "razorpay_payment_id": payment_id,
                        "razorpay_signature": signature or "",
                    }
                )
            )
        except SignatureVerificationError:
            return False

    # --- refunds -------------------------------------------------------------------------

    def create_refund(
        self, payment_id, amount, idempotency_key, *, speed="normal", notes=None, receipt=None
    ):
        """Refund ``amount`` paise of a captured payment. The same ``idempotency_key``
        (sent as X-Refund-Idempotency) on every retry: one refund however often it runs."""
        if not idempotency_key:
            raise ValueError("a refund needs an idempotency key")
        data = {"amount": int(amount), "speed": speed, "notes": notes or {}}
        if receipt:
            data["receipt"] = receipt
        return self._call(
            self.client.payment.refund,
            payment_id,
            data,
            headers={"X-Refund-Idempotency": idempotency_key},
            idempotency_key=idempotency_key,
        )

    def fetch_refund(self, refund_id):
        return self._call(self.client.refund.fetch, refund_id)

    def fetch_payment_refunds(self, payment_id):
        """The payment's refunds, up to Razorpay's page of 100 (one visit's items refund far
        fewer)."""
        return errors.items_of(
            self._call(self.client.payment.fetch_multiple_refund, payment_id, {"count": 100})
        )

    # --- lists for reconciliation (from/to unix seconds, count <= 100, skip) ----------

    @staticmethod
    def _window(start, end, count, skip):
        return {"from": _unix(start), "to": _unix(end), "count": int(count), "skip": int(skip)}

    def list_payments(self, start, end, *, count=100, skip=0):
        """One page of the payments created in [start, end], newest first (the raw answer)."""
        return self._call(self.client.payment.all, self._window(start, end, count, skip))

    def list_refunds(self, start, end, *, count=100, skip=0):
        return self._call(self.client.refund.all, self._window(start, end, count, skip))

    def list_settlements(self, start, end, *, count=100, skip=0):
        return self._call(self.client.settlement.all, self._window(start, end, count, skip))

    # --- what the gateway holds for us --------------------------------------------------

    LIST_PAGE = 100  # Razorpay's largest count

    def _all(self, collection):
        """Every item of a list API (newest first, count/skip pages), to the last page:
        no cap, since a sum of the newest N is a wrong sum, not a smaller one (review
        finding: 100,000 items, and 100,050 captured payments read ₹50 short). An item
        listed twice (a new one arriving between two pages pushes the older ones a place
        down) is counted once, by its id."""
        page, skip = self.LIST_PAGE, 0
        items = {}
        while True:
            chunk = self._call(collection.all, {"count": page, "skip": skip}).get("items") or []
            for item in chunk:
                items.setdefault(item["id"], item)
            if len(chunk) < page:
                return list(items.values())
            skip += page

    def account_position(self):
        """What the gateway's own lists say it took in and paid out, for the ledger check
        (``portal.ledger.check.verify_gateway_clearing``): captured, refunded and settled
        paise, and the processed settlements by id (``"settlements"``: id -> amount +
        fees, which a settlement takes out of what the gateway holds), compared one by one
        with the ledger's settlement postings."""
        captured = sum(
            int(p["amount"])
            for p in self._all(self.client.payment)
            if p.get("captured") or p.get("status") in ("captured", "refunded")
        )
        refunds = self._all(self.client.refund)
        refunded = sum(int(r["amount"]) for r in refunds if r.get("status") == "processed")
        settlements = {
            str(s["id"]): int(s["amount"]) + int(s.get("fees") or 0)
            for s in self._all(self.client.settlement)
            if s.get("status") == "processed"
        }
        return {
            "captured": captured,
            "refunded": refunded,
            "settled": sum(settlements.values()),
            "settlements": settlements,
        }

    # --- settlements ---------------------------------------------------------------------

    def fetch_settlements(self, **params):
        return errors.items_of(self._call(self.client.settlement.all, params))

    def fetch_settlement(self, settlement_id):
        return self._call(self.client.settlement.fetch, settlement_id)

    def settlement_recon(self, year, month, day=None, count=None, skip=None):
        params = {"year": year, "month": month}
        if day:
            params["day"] = day
        if count is not None:
            params.update(count=count, skip=skip or 0)
        return errors.items_of(self._call(self.client.settlement.report, params))
