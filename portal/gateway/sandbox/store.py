"""The sandbox's memory: Razorpay-shaped entities and how they change over time.

One store per sandbox app, guarded by one lock. Entities are plain dicts shaped like
Razorpay's JSON, so the HTTP layer returns copies of them as they are. Anything that
happens "later" at Razorpay (refunds settling, payouts moving, validations finishing,
links expiring) is a scheduled step that ``tick()`` runs once its time has come; time is
``clock() + offset`` so tests can jump ahead with ``advance()``."""
import copy
import hashlib
import hmac
import json
import random
import re
import string
import threading
import time
from datetime import date, datetime
from zoneinfo import ZoneInfo

IST = ZoneInfo("Asia/Kolkata")
_ALPHABET = string.ascii_letters + string.digits

DEFAULT_DELAYS = {
    "refund": 3.0,             # pending -> processed / failed
    "refund_optimum": 1.0,     # instant refunds settle sooner
    "payout_queue": 1.0,       # queued -> processing
    "payout_process": 3.0,     # processing -> processed / failed / reversed
    "validation": 2.0,         # created -> completed / failed
    "settlement": 0.0,         # seconds after an IST day ends before it settles by itself
}
# Outcomes chosen when nothing more specific is asked for (see Faults and notes).
DEFAULT_OUTCOMES = {"refund": "processed", "payout": "processed", "validation": "active"}

FEE_BPS = 200          # 2% gateway fee on payments
GST_BPS = 1800         # 18% GST on that fee
PAYOUT_FEE = 500       # ₹5 per payout, plus GST
IMPS_LIMIT = 5_00_000_00  # ₹5 lakh
IFSC = re.compile(r"^[A-Z]{4}0[A-Z0-9]{6}$")
VPA = re.compile(r"^[A-Za-z0-9.\-_]{2,256}@[A-Za-z]{2,64}$")
BANKS = {"HDFC": "HDFC Bank", "ICIC": "ICICI Bank", "SBIN": "State Bank of India",
         "UTIB": "Axis Bank", "KKBK": "Kotak Mahindra Bank"}


class ApiError(Exception):
    """An error answered in Razorpay's body shape."""

    def __init__(self, description, *, status=400, code="BAD_REQUEST_ERROR", field=None,
                 reason="input_validation_failed", source="business", step="NA",
                 metadata=None):
        super().__init__(description)
        self.description = description
        self.status = status
        self.code = code
        self.field = field
        self.reason = reason
        self.source = source
        self.step = step
        self.metadata = metadata or {}

    def body(self):
        error = {"code": self.code, "description": self.description, "source": self.source,
                 "step": self.step, "reason": self.reason, "metadata": self.metadata}
        if self.field:
            error["field"] = self.field
        return {"error": error}


def not_found():
    return ApiError("The id provided does not exist", reason="NA", source="NA")


def round_half_up(numerator, denominator):
    return (2 * numerator + denominator) // (2 * denominator)


def gateway_fee(amount):
    """(fee, tax): Razorpay's ``fee`` includes the GST on it, ``tax`` is that GST."""
    base = round_half_up(amount * FEE_BPS, 10_000)
    tax = round_half_up(base * GST_BPS, 10_000)
    return base + tax, tax


def sign(message, secret):
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def fingerprint(body):
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


class SandboxStore:
    def __init__(self, *, key_id, key_secret, account_id="acc_Sandbox0000001",
                 x_account_number="2323230000000000", clock=time.time, delays=None,
                 seed=None, emit=None, faults=None):
        self.key_id = key_id
        self.key_secret = key_secret
        self.account_id = account_id
        self.x_account_number = x_account_number
        self.clock = clock
        self.offset = 0.0
        self.delays = {**DEFAULT_DELAYS, **(delays or {})}
        self.faults = faults
        self.lock = threading.RLock()
        self._random = random.Random(seed)
        self._emit = emit or (lambda source, event, payload: None)
        self.reset()

    def reset(self):
        with self.lock:
            self.orders, self.payments, self.links, self.refunds = {}, {}, {}, {}
            self.contacts, self.fund_accounts, self.validations = {}, {}, {}
            self.payouts, self.settlements = {}, {}
            self.notifications = []       # what Razorpay would have sent by SMS/email
            self._schedule = []           # [due, seq, action, entity_id]
            self._step_time = None
            self._seq = 0
            self._refund_keys = {}        # X-Refund-Idempotency -> (fingerprint, id)
            self._payout_keys = {}        # X-Payout-Idempotency -> (fingerprint, id)
            self._settled = {}            # payment/refund id -> settlement id
            self._outcome = {}            # entity id -> forced outcome

    # --- time ---------------------------------------------------------------------------

    def now_f(self):
        return self.clock() + self.offset

    def now(self):
        return int(self.now_f())

    def advance(self, seconds=0.0):
        """Move the sandbox's clock forward and run whatever fell due."""
        with self.lock:
            self.offset += float(seconds)
            self.tick()

    def tick(self):
        with self.lock:
            now = self.now_f()
            while True:
                due = [s for s in self._schedule if s[0] <= now]
                if not due:
                    break
                step = min(due)
                self._schedule.remove(step)
                # Follow-up steps count from when this one was due, not from now, so one
                # big advance() runs a whole lifecycle.
                self._step_time = step[0]
                try:
                    getattr(self, "_step_" + step[2])(step[3])
                finally:
                    self._step_time = None
            for link in self.links.values():
                expire_by = link["expire_by"]
                if link["status"] in ("created", "partially_paid") and expire_by \
                        and expire_by <= now:
                    link["status"] = "expired"
                    link["expired_at"] = int(now)
                    link["updated_at"] = int(now)
                    self._event("razorpay", "payment_link.expired", payment_link=link)
            self._auto_settle(now)

    def _later(self, delay_key, action, entity_id):
        self._seq += 1
        start = self._step_time if self._step_time is not None else self.now_f()
        self._schedule.append([start + self.delays[delay_key], self._seq, action, entity_id])

    def pending_steps(self):
        with self.lock:
            return len(self._schedule)

    def force_outcome(self, entity_id, outcome):
        """Decide how a refund, payout or validation ends (tests, demos)."""
        with self.lock:
            self._outcome[entity_id] = outcome

    def _outcome_for(self, kind, entity, notes=None):
        if entity["id"] in self._outcome:
            return self._outcome[entity["id"]]
        if notes and isinstance(notes, dict) and notes.get("sandbox_outcome"):
            return notes["sandbox_outcome"]
        if self.faults is not None:
            chosen = self.faults.outcome(kind)
            if chosen:
                return chosen
        return DEFAULT_OUTCOMES[kind]

    # --- helpers -----------------------------------------------------------------------

    def new_id(self, prefix):
        return prefix + "_" + "".join(self._random.choice(_ALPHABET) for _ in range(14))

    def _event(self, source, name, **entities):
        self._emit(source, name, {k: copy.deepcopy(v) for k, v in entities.items()})

    @staticmethod
    def _get(table, entity_id):
        try:
            return table[entity_id]
        except KeyError:
            raise not_found() from None

    @staticmethod
    def _amount(data, field="amount", minimum=100):
        amount = data.get(field)
        if isinstance(amount, bool) or not isinstance(amount, int):
            if isinstance(amount, str) and amount.isdigit():
                amount = int(amount)
            else:
                raise ApiError(f"The {field} must be an integer.", field=field)
        if amount < minimum:
            raise ApiError(f"The {field} must be atleast INR {minimum / 100:.2f}.",
                           field=field)
        return amount

    @staticmethod
    def _currency(data):
        currency = data.get("currency", "INR")
        if currency != "INR":
            raise ApiError("The sandbox supports INR only.", field="currency")
        return currency

    @staticmethod
    def _notes(data):
        notes = data.get("notes") or {}
        if isinstance(notes, list):  # Razorpay answers empty notes as []
            notes = {}
        if not isinstance(notes, dict) or len(notes) > 15:
            raise ApiError("The notes should be a map of at most 15 keys.", field="notes")
        return notes

    def _page(self, items, args):
        """Razorpay's collection: newest first, count/skip/from/to."""
        try:
            count = min(int(args.get("count", 10)), 100)
            skip = int(args.get("skip", 0))
            start = int(args.get("from", 0))
            end = int(args.get("to", 2**40))
        except ValueError:
            raise ApiError("count, skip, from and to must be integers.") from None
        chosen = [i for i in items if start <= i["created_at"] <= end]
        chosen.sort(key=lambda i: i["created_at"], reverse=True)
        chosen = chosen[skip:skip + count]
        return {"entity": "collection", "count": len(chosen),
                "items": copy.deepcopy(chosen)}

    # --- orders and payments ---------------------------------------------------------

    def create_order(self, data):
        with self.lock:
            amount = self._amount(data)
            receipt = data.get("receipt")
            if receipt is not None and len(str(receipt)) > 40:
                raise ApiError("receipt: The receipt may not be greater than 40 characters.",
                               field="receipt")
            order = {"id": self.new_id("order"), "entity": "order", "amount": amount,
                     "amount_paid": 0, "amount_due": amount, "currency": self._currency(data),
                     "receipt": receipt, "offer_id": None, "status": "created", "attempts": 0,
                     "notes": self._notes(data), "created_at": self.now()}
            self.orders[order["id"]] = order
            return copy.deepcopy(order)

    def get_order(self, order_id):
        with self.lock:
            return copy.deepcopy(self._get(self.orders, order_id))

    def list_orders(self, args):
        with self.lock:
            items = list(self.orders.values())
            if args.get("receipt"):
                items = [o for o in items if o["receipt"] == args["receipt"]]
            return self._page(items, args)

    def order_payments(self, order_id, args=None):
        with self.lock:
            self._get(self.orders, order_id)
            items = [p for p in self.payments.values() if p["order_id"] == order_id]
            return self._page(items, args or {"count": 100})

    def pay_order(self, order_id, *, method="upi", succeed=True, email=None, contact=None,
                  _link=None):
        """What the checkout page does: one payment attempt against an order."""
        with self.lock:
            order = self._get(self.orders, order_id)
            if order["status"] == "paid":
                raise ApiError("Order has already been paid.", field="order_id")
            order["attempts"] += 1
            order["status"] = "attempted"
            payment = self._new_payment(order, method, email, contact)
            self.payments[payment["id"]] = payment
            if not succeed:
                payment.update(
                    status="failed", error_code="BAD_REQUEST_ERROR",
                    error_description="Your payment didn't go through as it was declined by "
                                      "the bank. Try another payment method or contact your "
                                      "bank.",
                    error_source="bank", error_step="payment_authorization",
                    error_reason="payment_failed")
                self._event("razorpay", "payment.failed", payment=payment)
                return copy.deepcopy(payment)
            payment["status"] = "authorized"
            self._event("razorpay", "payment.authorized", payment=payment)
            # Orders capture automatically (payment_capture=1 semantics).
            fee, tax = gateway_fee(payment["amount"])
            payment.update(status="captured", captured=True, fee=fee, tax=tax)
            order.update(status="paid", amount_paid=order["amount"], amount_due=0)
            self._event("razorpay", "payment.captured", payment=payment)
            self._event("razorpay", "order.paid", payment=payment, order=order)
            if _link is not None:
                _link.update(status="paid", amount_paid=_link["amount"],
                             updated_at=self.now(), order_id=order["id"])
                _link["payments"] = (_link["payments"] or []) + [{
                    "amount": payment["amount"], "created_at": payment["created_at"],
                    "method": method, "payment_id": payment["id"], "plink_id": _link["id"],
                    "status": "captured", "updated_at": self.now()}]
                self._event("razorpay", "payment_link.paid", payment_link=_link,
                            order=order, payment=payment)
            return copy.deepcopy(payment)

    def _new_payment(self, order, method, email, contact):
        payment = {
            "id": self.new_id("pay"), "entity": "payment", "amount": order["amount"],
            "currency": order["currency"], "status": "created", "order_id": order["id"],
            "invoice_id": None, "international": False, "method": method,
            "amount_refunded": 0, "refund_status": None, "captured": False,
            "description": None, "card_id": None, "bank": None, "wallet": None, "vpa": None,
            "email": email or "patient@example.com", "contact": contact or "+919000090000",
            "notes": copy.deepcopy(order["notes"]), "fee": None, "tax": None,
            "error_code": None, "error_description": None, "error_source": None,
            "error_step": None, "error_reason": None,
            "acquirer_data": {}, "created_at": self.now()}
        if method == "upi":
            payment["vpa"] = "patient@okhdfcbank"
            payment["acquirer_data"] = {"rrn": str(self._random.randrange(10**11, 10**12)),
                                        "upi_transaction_id": self.new_id("upi")[4:]}
        elif method == "card":
            payment["card_id"] = self.new_id("card")
            payment["card"] = {"id": payment["card_id"], "entity": "card",
                               "name": "Sandbox Patient", "last4": "1111",
                               "network": "Visa", "type": "credit", "issuer": None,
                               "international": False, "emi": False}
            payment["acquirer_data"] = {"auth_code": str(self._random.randrange(10**5, 10**6))}
        elif method == "netbanking":
            payment["bank"] = "HDFC"
            payment["acquirer_data"] = {"bank_transaction_id":
                                        str(self._random.randrange(10**9, 10**10))}
        return payment

    def checkout_signature(self, order_id, payment_id):
        return sign(f"{order_id}|{payment_id}", self.key_secret)

    def get_payment(self, payment_id):
        with self.lock:
            return copy.deepcopy(self._get(self.payments, payment_id))

    def list_payments(self, args):
        with self.lock:
            return self._page(list(self.payments.values()), args)

    def capture_payment(self, payment_id, data):
        # Orders here capture automatically, so nothing is ever left to capture.
        with self.lock:
            payment = self._get(self.payments, payment_id)
            if payment["captured"]:
                raise ApiError("This payment has already been captured")
            raise ApiError("Only payments which have been authorized and not yet captured "
                           "can be captured")

    # --- payment links -----------------------------------------------------------------

    def create_link(self, data, public_url):
        with self.lock:
            amount = self._amount(data)
            if data.get("accept_partial"):
                raise ApiError("The sandbox does not support partial payments on links.",
                               field="accept_partial")
            now = self.now()
            expire_by = data.get("expire_by")
            if expire_by is not None:
                if not isinstance(expire_by, int) or expire_by < now + 15 * 60:
                    raise ApiError("expire_by should be at least 15 minutes after current time",
                                   field="expire_by")
            reference_id = data.get("reference_id")
            if reference_id:
                if len(str(reference_id)) > 40:
                    raise ApiError("The reference id may not be greater than 40 characters.",
                                   field="reference_id")
                if any(l["reference_id"] == reference_id and l["status"] != "cancelled"
                       for l in self.links.values()):
                    raise ApiError(f"Payment Link with reference id {reference_id} already "
                                   "exists", field="reference_id")
            customer = data.get("customer") or {}
            notify = data.get("notify") or {}
            link_id = self.new_id("plink")
            link = {
                "id": link_id, "entity": "payment_link", "accept_partial": False,
                "amount": amount, "amount_paid": 0, "currency": self._currency(data),
                "callback_url": data.get("callback_url") or "",
                "callback_method": data.get("callback_method") or "",
                "cancelled_at": 0, "created_at": now, "updated_at": now,
                "customer": {k: customer.get(k) for k in ("name", "email", "contact")
                             if customer.get(k)},
                "description": data.get("description") or "",
                "expire_by": expire_by or 0, "expired_at": 0,
                "first_min_partial_amount": 0, "notes": self._notes(data) or None,
                "notify": {"sms": bool(notify.get("sms")), "email": bool(notify.get("email"))},
                "order_id": "", "payments": None, "reference_id": reference_id or "",
                "reminder_enable": bool(data.get("reminder_enable", False)), "reminders": [],
                "short_url": f"{public_url.rstrip('/')}/pl/{link_id}",
                "status": "created", "upi_link": False, "user_id": ""}
            self.links[link_id] = link
            for medium in ("sms", "email"):
                if link["notify"][medium]:
                    self._notify(link, medium)
            return copy.deepcopy(link)

    def _notify(self, link, medium):
        to = link["customer"].get("contact" if medium == "sms" else "email")
        self.notifications.append({"payment_link_id": link["id"], "medium": medium, "to": to,
                                   "short_url": link["short_url"], "at": self.now()})

    def notify_link(self, link_id, medium):
        with self.lock:
            link = self._get(self.links, link_id)
            if medium not in ("sms", "email"):
                raise ApiError("medium must be sms or email", field="medium")
            if link["status"] != "created":
                raise ApiError(f"Payment link is {link['status']}; it cannot be sent.")
            self._notify(link, medium)
            return {"success": True}

    def get_link(self, link_id):
        with self.lock:
            return copy.deepcopy(self._get(self.links, link_id))

    def list_links(self, args):
        with self.lock:
            items = list(self.links.values())
            if args.get("reference_id"):
                items = [l for l in items if l["reference_id"] == args["reference_id"]]
            if args.get("payment_id"):
                items = [l for l in items
                         if any(p["payment_id"] == args["payment_id"]
                                for p in l["payments"] or [])]
            page = self._page(items, {**args, "count": args.get("count", 100)})
            return {"payment_links": page["items"]}

    def cancel_link(self, link_id):
        with self.lock:
            link = self._get(self.links, link_id)
            if link["status"] not in ("created", "partially_paid"):
                raise ApiError(f"Payment link cannot be cancelled as it is already "
                               f"{link['status']}")
            link.update(status="cancelled", cancelled_at=self.now(), updated_at=self.now())
            self._event("razorpay", "payment_link.cancelled", payment_link=link)
            return copy.deepcopy(link)

    def pay_link(self, link_id, *, method="upi", succeed=True):
        with self.lock:
            link = self._get(self.links, link_id)
            if link["status"] != "created":
                raise ApiError(f"This payment link is {link['status']}.")
            order_id = link["order_id"]
            if not order_id:
                order = self.create_order({"amount": link["amount"],
                                           "receipt": link["reference_id"] or None,
                                           "notes": link["notes"] or {}})
                order_id = link["order_id"] = order["id"]
            payment = self.pay_order(order_id, method=method, succeed=succeed,
                                     email=link["customer"].get("email"),
                                     contact=link["customer"].get("contact"), _link=link)
            return payment, copy.deepcopy(link)

    def link_signature(self, link, payment_id):
        return sign(f"{link['id']}|{link['reference_id']}|{link['status']}|{payment_id}",
                    self.key_secret)

    # --- refunds -----------------------------------------------------------------------

    def create_refund(self, payment_id, data, idempotency_key=None):
        with self.lock:
            if idempotency_key:
                known = self._refund_keys.get(idempotency_key)
                digest = fingerprint({"payment_id": payment_id, **data})
                if known:
                    if known[0] != digest:
                        raise ApiError("Different request body sent for the same "
                                       "idempotency header", field="X-Refund-Idempotency")
                    return copy.deepcopy(self.refunds[known[1]]), False
            payment = self._get(self.payments, payment_id)
            if payment["status"] not in ("captured", "refunded"):
                raise ApiError("The payment has not been captured, so it cannot be refunded.",
                               field="payment_id")
            remaining = payment["amount"] - payment["amount_refunded"]
            if remaining <= 0:
                raise ApiError("The payment has been fully refunded already",
                               field="payment_id")
            amount = self._amount(data) if data.get("amount") is not None else remaining
            if amount > remaining:
                raise ApiError("The refund amount provided is greater than amount captured",
                               field="amount")
            speed = data.get("speed", "normal")
            if speed not in ("normal", "optimum"):
                raise ApiError("The selected speed is invalid.", field="speed")
            notes = self._notes(data)
            refund = {"id": self.new_id("rfnd"), "entity": "refund", "amount": amount,
                      "currency": payment["currency"], "payment_id": payment_id,
                      "notes": notes, "receipt": data.get("receipt"),
                      "acquirer_data": {"arn": None}, "created_at": self.now(),
                      "batch_id": None, "status": "pending",
                      "speed_processed": "normal", "speed_requested": speed}
            self.refunds[refund["id"]] = refund
            if idempotency_key:
                self._refund_keys[idempotency_key] = (digest, refund["id"])
            self._apply_refund(payment, amount)
            self._event("razorpay", "refund.created", refund=refund, payment=payment)
            self._later("refund_optimum" if speed == "optimum" else "refund",
                        "refund", refund["id"])
            return copy.deepcopy(refund), True

    @staticmethod
    def _apply_refund(payment, delta):
        payment["amount_refunded"] += delta
        refunded = payment["amount_refunded"]
        payment["refund_status"] = (None if refunded == 0 else
                                    "full" if refunded == payment["amount"] else "partial")
        payment["status"] = "refunded" if refunded == payment["amount"] else "captured"

    def _step_refund(self, refund_id):
        refund = self.refunds[refund_id]
        payment = self.payments[refund["payment_id"]]
        if self._outcome_for("refund", refund, refund["notes"]) == "failed":
            refund["status"] = "failed"
            self._apply_refund(payment, -refund["amount"])
            self._event("razorpay", "refund.failed", refund=refund, payment=payment)
            return
        refund["status"] = "processed"
        refund["speed_processed"] = "instant" if refund["speed_requested"] == "optimum" \
            else "normal"
        refund["acquirer_data"] = {"arn": str(self._random.randrange(10**22, 10**23))}
        self._event("razorpay", "refund.processed", refund=refund, payment=payment)

    def get_refund(self, refund_id, payment_id=None):
        with self.lock:
            refund = self._get(self.refunds, refund_id)
            if payment_id and refund["payment_id"] != payment_id:
                raise not_found()
            return copy.deepcopy(refund)

    def list_refunds(self, args, payment_id=None):
        with self.lock:
            items = list(self.refunds.values())
            if payment_id:
                self._get(self.payments, payment_id)
                items = [r for r in items if r["payment_id"] == payment_id]
            return self._page(items, args)

    # --- RazorpayX: contacts, fund accounts, validations -----------------------------

    def create_contact(self, data):
        with self.lock:
            name = (data.get("name") or "").strip()
            if not 3 <= len(name) <= 50:
                raise ApiError("The name must be between 3 and 50 characters.", field="name")
            kind = data.get("type")
            if kind and kind not in ("vendor", "customer", "employee", "self"):
                raise ApiError("Invalid type: " + str(kind), field="type")
            fields = {"name": name, "contact": data.get("contact"), "email": data.get("email"),
                      "type": kind, "reference_id": data.get("reference_id")}
            for existing in self.contacts.values():  # Razorpay returns an identical contact
                if all(existing[k] == v for k, v in fields.items()):
                    return copy.deepcopy(existing), False
            contact = {"id": self.new_id("cont"), "entity": "contact", **fields,
                       "batch_id": None, "active": True, "notes": self._notes(data),
                       "created_at": self.now()}
            self.contacts[contact["id"]] = contact
            return copy.deepcopy(contact), True

    def get_contact(self, contact_id):
        with self.lock:
            return copy.deepcopy(self._get(self.contacts, contact_id))

    def create_fund_account(self, data):
        with self.lock:
            contact_id = data.get("contact_id")
            if contact_id not in self.contacts:
                raise ApiError("The contact id provided does not exist", field="contact_id")
            kind = data.get("account_type")
            if kind == "bank_account":
                bank = data.get("bank_account") or {}
                ifsc = str(bank.get("ifsc", "")).upper()
                number = str(bank.get("account_number", ""))
                if not IFSC.match(ifsc):
                    raise ApiError("Invalid IFSC Code in Bank Account", field="ifsc")
                if not (5 <= len(number) <= 35 and number.isalnum()):
                    raise ApiError("Invalid account number", field="account_number")
                if not (bank.get("name") or "").strip():
                    raise ApiError("The name field is required.", field="name")
                details = {"bank_account": {"ifsc": ifsc,
                                            "bank_name": BANKS.get(ifsc[:4], "Sandbox Bank"),
                                            "name": bank["name"].strip(), "notes": [],
                                            "account_number": number}}
            elif kind == "vpa":
                address = str((data.get("vpa") or {}).get("address", ""))
                if not VPA.match(address):
                    raise ApiError("Invalid VPA", field="address")
                user, handle = address.split("@")
                details = {"vpa": {"username": user, "handle": handle, "address": address}}
            else:
                raise ApiError("The account type must be bank_account or vpa.",
                               field="account_type")
            for existing in self.fund_accounts.values():
                if existing["contact_id"] == contact_id and existing["account_type"] == kind \
                        and existing[kind] == details[kind]:
                    return copy.deepcopy(existing), False
            account = {"id": self.new_id("fa"), "entity": "fund_account",
                       "contact_id": contact_id, "account_type": kind, **details,
                       "batch_id": None, "active": True, "created_at": self.now()}
            self.fund_accounts[account["id"]] = account
            return copy.deepcopy(account), True

    def get_fund_account(self, fund_account_id):
        with self.lock:
            return copy.deepcopy(self._get(self.fund_accounts, fund_account_id))

    def _check_account_number(self, data):
        if str(data.get("account_number")) != self.x_account_number:
            raise ApiError("The account number is invalid.", field="account_number")

    def create_validation(self, data):
        with self.lock:
            self._check_account_number(data)
            fa_id = (data.get("fund_account") or {}).get("id")
            if fa_id not in self.fund_accounts:
                raise ApiError("The fund account id provided does not exist",
                               field="fund_account_id")
            amount = self._amount(data, minimum=100) if "amount" in data else 100
            validation = {"id": self.new_id("fav"), "entity": "fund_account.validation",
                          "fund_account": copy.deepcopy(self.fund_accounts[fa_id]),
                          "status": "created", "amount": amount, "currency": "INR",
                          "notes": self._notes(data),
                          "results": {"account_status": None, "registered_name": None},
                          "created_at": self.now(), "utr": None}
            self.validations[validation["id"]] = validation
            self._later("validation", "validation", validation["id"])
            return copy.deepcopy(validation)

    def _step_validation(self, validation_id):
        validation = self.validations[validation_id]
        account = validation["fund_account"]
        outcome = self._outcome_for("validation", validation, validation["notes"])
        # Account numbers ending 0000 and VPAs starting "invalid" stand for dead accounts.
        if account["account_type"] == "bank_account" and \
                account["bank_account"]["account_number"].endswith("0000"):
            outcome = "invalid"
        if account["account_type"] == "vpa" and account["vpa"]["username"].startswith("invalid"):
            outcome = "invalid"
        if outcome == "failed":
            validation["status"] = "failed"
            self._event("razorpayx", "fund_account.validation.failed",
                        **{"fund_account.validation": validation})
            return
        name = (account["bank_account"]["name"] if account["account_type"] == "bank_account"
                else self.contacts[account["contact_id"]]["name"])
        validation["status"] = "completed"
        validation["utr"] = str(self._random.randrange(10**11, 10**12))
        validation["results"] = {"account_status": "invalid" if outcome == "invalid"
                                 else "active",
                                 "registered_name": None if outcome == "invalid" else name}
        self._event("razorpayx", "fund_account.validation.completed",
                    **{"fund_account.validation": validation})

    def get_validation(self, validation_id):
        with self.lock:
            return copy.deepcopy(self._get(self.validations, validation_id))

    # --- RazorpayX: payouts -------------------------------------------------------------

    def create_payout(self, data, idempotency_key):
        with self.lock:
            if not idempotency_key:
                raise ApiError("X-Payout-Idempotency header is required",
                               field="X-Payout-Idempotency")
            if not 4 <= len(idempotency_key) <= 36:
                raise ApiError("X-Payout-Idempotency must be 4 to 36 characters long",
                               field="X-Payout-Idempotency")
            digest = fingerprint(data)
            known = self._payout_keys.get(idempotency_key)
            if known:
                if known[0] != digest:
                    raise ApiError("Different request body sent for the same idempotency "
                                   "header", field="X-Payout-Idempotency")
                return copy.deepcopy(self.payouts[known[1]]), False
            self._check_account_number(data)
            account = self.fund_accounts.get(data.get("fund_account_id"))
            if account is None:
                raise ApiError("The fund account id provided does not exist",
                               field="fund_account_id")
            amount = self._amount(data)
            mode = data.get("mode")
            allowed = ("UPI",) if account["account_type"] == "vpa" else ("IMPS", "NEFT", "RTGS")
            if mode not in allowed:
                raise ApiError(f"Invalid combination of payout mode ({mode}) and fund account "
                               f"type ({account['account_type']}).", field="mode")
            if mode == "IMPS" and amount > IMPS_LIMIT:
                raise ApiError("Amount exceeds maximum amount allowed.", field="amount")
            if not data.get("purpose"):
                raise ApiError("The purpose field is required.", field="purpose")
            narration = data.get("narration")
            if narration and (len(narration) > 30 or
                              not re.fullmatch(r"[A-Za-z0-9 ]+", narration)):
                raise ApiError("The narration must be at most 30 letters, digits or spaces.",
                               field="narration")
            tax = round_half_up(PAYOUT_FEE * GST_BPS, 10_000)
            payout = {
                "id": self.new_id("pout"), "entity": "payout",
                "fund_account_id": account["id"], "amount": amount,
                "currency": self._currency(data), "notes": self._notes(data),
                "fees": PAYOUT_FEE + tax, "tax": tax, "status": "queued",
                "purpose": data["purpose"], "utr": None, "mode": mode,
                "reference_id": data.get("reference_id"), "narration": narration,
                "batch_id": None, "failure_reason": None, "created_at": self.now(),
                "fee_type": None,
                "status_details": {"reason": None, "description": None, "source": None},
                "merchant_id": self.account_id[4:], "status_details_id": None,
                "error": {"source": None, "reason": None, "description": None, "code": "NA",
                          "step": "NA", "metadata": {}}}
            self.payouts[payout["id"]] = payout
            self._payout_keys[idempotency_key] = (digest, payout["id"])
            self._event("razorpayx", "payout.queued", payout=payout)
            self._later("payout_queue", "payout_process", payout["id"])
            return copy.deepcopy(payout), True

    def _step_payout_process(self, payout_id):
        payout = self.payouts[payout_id]
        payout["status"] = "processing"
        self._event("razorpayx", "payout.initiated", payout=payout)
        self._later("payout_process", "payout_finish", payout_id)

    def _step_payout_finish(self, payout_id):
        payout = self.payouts[payout_id]
        outcome = self._outcome_for("payout", payout, payout["notes"])
        if outcome == "failed":
            payout.update(status="failed", failure_reason="Beneficiary bank is down",
                          status_details={"reason": "beneficiary_bank_down",
                                          "description": "Beneficiary bank is down.",
                                          "source": "beneficiary_bank"},
                          error={"source": "beneficiary_bank", "reason": "bank_account_invalid",
                                 "description": "Beneficiary bank is down.",
                                 "code": "BAD_REQUEST_ERROR", "step": "NA", "metadata": {}})
            self._event("razorpayx", "payout.failed", payout=payout)
        elif outcome == "reversed":
            payout.update(status="reversed", failure_reason="Payout reversed by the bank",
                          utr=str(self._random.randrange(10**11, 10**12)),
                          status_details={"reason": "beneficiary_account_closed",
                                          "description": "Beneficiary account is closed.",
                                          "source": "beneficiary_bank"})
            self._event("razorpayx", "payout.reversed", payout=payout)
        else:
            payout.update(status="processed", utr=str(self._random.randrange(10**11, 10**12)),
                          status_details={"reason": "payout_processed",
                                          "description": "Payout is processed.",
                                          "source": "beneficiary_bank"})
            self._event("razorpayx", "payout.processed", payout=payout)

    def get_payout(self, payout_id):
        with self.lock:
            return copy.deepcopy(self._get(self.payouts, payout_id))

    def list_payouts(self, args):
        with self.lock:
            self._check_account_number(args)
            items = list(self.payouts.values())
            for key in ("reference_id", "fund_account_id", "status", "mode"):
                if args.get(key):
                    items = [p for p in items if p[key] == args[key]]
            return self._page(items, args)

    # --- settlements -------------------------------------------------------------------

    def _ist_day(self, ts):
        return datetime.fromtimestamp(ts, IST).date()

    def _auto_settle(self, now):
        """A finished IST day settles by itself once the settlement delay has passed."""
        today = self._ist_day(now - self.delays["settlement"])
        days = {self._ist_day(p["created_at"]) for p in self.payments.values()
                if p["captured"] and p["id"] not in self._settled}
        days |= {self._ist_day(r["created_at"]) for r in self.refunds.values()
                 if r["status"] == "processed" and r["id"] not in self._settled}
        for day in sorted(d for d in days if d < today):
            self.settle_day(day)

    def settle_day(self, day):
        """Settle one IST day's captured payments and refunds (less fees and tax)."""
        with self.lock:
            if isinstance(day, str):
                day = date.fromisoformat(day)
            start = datetime.combine(day, datetime.min.time(), IST).timestamp()
            end = start + 86400
            payments = [p for p in self.payments.values() if p["captured"]
                        and start <= p["created_at"] < end and p["id"] not in self._settled]
            refunds = [r for r in self.refunds.values() if r["status"] == "processed"
                       and start <= r["created_at"] < end and r["id"] not in self._settled]
            if not payments and not refunds:
                return None
            fees = sum(p["fee"] for p in payments)
            tax = sum(p["tax"] for p in payments)
            amount = sum(p["amount"] for p in payments) - fees - sum(r["amount"]
                                                                    for r in refunds)
            settlement = {"id": self.new_id("setl"), "entity": "settlement", "amount": amount,
                          "status": "processed", "fees": fees, "tax": tax,
                          "utr": self.new_id("utr")[4:], "created_at": self.now(),
                          "_day": day.isoformat()}
            self.settlements[settlement["id"]] = settlement
            for item in payments + refunds:
                self._settled[item["id"]] = settlement["id"]
            return self._public_settlement(settlement)

    @staticmethod
    def _public_settlement(settlement):
        return {k: v for k, v in copy.deepcopy(settlement).items() if not k.startswith("_")}

    def get_settlement(self, settlement_id):
        with self.lock:
            return self._public_settlement(self._get(self.settlements, settlement_id))

    def list_settlements(self, args):
        with self.lock:
            page = self._page(list(self.settlements.values()), args)
            page["items"] = [self._public_settlement(s) for s in page["items"]]
            return page

    def settlement_recon(self, args):
        """Rows of settled payments and refunds for a settlement day (or month), IST."""
        with self.lock:
            try:
                year, month = int(args["year"]), int(args["month"])
                day = int(args["day"]) if args.get("day") else None
            except (KeyError, ValueError):
                raise ApiError("year and month are required integers", field="year") from None
            rows = []
            for settlement in self.settlements.values():
                when = self._ist_day(settlement["created_at"])  # the settlement's date
                if (when.year, when.month) != (year, month) or (day and when.day != day):
                    continue
                for entity_id, setl_id in self._settled.items():
                    if setl_id == settlement["id"]:
                        rows.append(self._recon_row(entity_id, settlement))
            rows.sort(key=lambda r: (r["created_at"], r["entity_id"]))
            skip = int(args.get("skip", 0))
            count = min(int(args.get("count", 1000)), 1000)
            rows = rows[skip:skip + count]
            return {"entity": "collection", "count": len(rows), "items": rows}

    def _recon_row(self, entity_id, settlement):
        if entity_id.startswith("pay_"):
            p = self.payments[entity_id]
            order = self.orders.get(p["order_id"]) or {}
            return {"entity_id": p["id"], "type": "payment", "debit": 0,
                    "credit": p["amount"] - p["fee"], "amount": p["amount"],
                    "currency": p["currency"], "fee": p["fee"], "tax": p["tax"],
                    "on_hold": False, "settled": True, "created_at": p["created_at"],
                    "settled_at": settlement["created_at"], "settlement_id": settlement["id"],
                    "posted_at": settlement["created_at"], "credit_type": "default",
                    "description": p["description"], "notes": p["notes"], "payment_id": None,
                    "settlement_utr": settlement["utr"], "order_id": p["order_id"],
                    "order_receipt": order.get("receipt"), "method": p["method"],
                    "card_network": (p.get("card") or {}).get("network"),
                    "card_issuer": None, "card_type": (p.get("card") or {}).get("type"),
                    "dispute_id": None}
        r = self.refunds[entity_id]
        p = self.payments[r["payment_id"]]
        return {"entity_id": r["id"], "type": "refund", "debit": r["amount"], "credit": 0,
                "amount": r["amount"], "currency": r["currency"], "fee": 0, "tax": 0,
                "on_hold": False, "settled": True, "created_at": r["created_at"],
                "settled_at": settlement["created_at"], "settlement_id": settlement["id"],
                "posted_at": settlement["created_at"], "credit_type": "default",
                "description": None, "notes": r["notes"], "payment_id": p["id"],
                "settlement_utr": settlement["utr"], "order_id": p["order_id"],
                "order_receipt": (self.orders.get(p["order_id"]) or {}).get("receipt"),
                "method": p["method"], "card_network": None, "card_issuer": None,
                "card_type": None, "dispute_id": None}
