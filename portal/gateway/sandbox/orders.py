"""Sandbox orders, the checkout's payment attempts and payments."""

import copy

from portal.gateway.sandbox.common import ApiError, gateway_fee, sign


class OrdersMixin:
    """Part of :class:`~portal.gateway.sandbox.store.SandboxStore` (its state, lock and helpers)."""

    def create_order(self, data):
        with self.lock:
            amount = self._amount(data)
            receipt = data.get("receipt")
            if receipt is not None and len(str(receipt)) > 40:
                raise ApiError(
                    "receipt: The receipt may not be greater than 40 characters.", field="receipt"
                )
            order = {
                "id": self.new_id("order"),
                "entity": "order",
                "amount": amount,
                "amount_paid": 0,
                "amount_due": amount,
                "currency": self._currency(data),
                "receipt": receipt,
                "offer_id": None,
                "status": "created",
                "attempts": 0,
                "notes": self._notes(data),
                "created_at": self.now(),
            }
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

    def pay_order(
        self, order_id, *, method="upi", succeed=True, email=None, contact=None, _link=None
    ):
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
                    status="failed",
                    error_code="BAD_REQUEST_ERROR",
                    error_description="Your payment didn't go through as it was declined by "
                    "the bank. Try another payment method or contact your "
                    "bank.",
                    error_source="bank",
                    error_step="payment_authorization",
                    error_reason="payment_failed",
                )
                self._event("razorpay", "payment.failed", payment=payment)
                return copy.deepcopy(payment)
            payment["status"] = "authorized"
            self._event("razorpay", "payment.authorized", payment=payment)
            # Orders capture automatically (payment_capture=1 semantics).
            fee, tax = gateway_fee(payment["amount"])
            payment.update(status="captured", captured=True, fee=fee, tax=tax)
            self._captured_at[payment["id"]] = self.now()  # the entity has no such field
            order.update(status="paid", amount_paid=order["amount"], amount_due=0)
            self._event("razorpay", "payment.captured", payment=payment)
            self._event("razorpay", "order.paid", payment=payment, order=order)
            if _link is not None:
                _link.update(
                    status="paid",
                    amount_paid=_link["amount"],
                    updated_at=self.now(),
                    order_id=order["id"],
                )
                _link["payments"] = (_link["payments"] or []) + [
                    {
                        "amount": payment["amount"],
                        "created_at": payment["created_at"],
                        "method": method,
                        "payment_id": payment["id"],
                        "plink_id": _link["id"],
                        "status": "captured",
                        "updated_at": self.now(),
                    }
                ]
                self._event(
                    "razorpay",
                    "payment_link.paid",
                    payment_link=_link,
                    order=order,
                    payment=payment,
                )
            return copy.deepcopy(payment)

    def _new_payment(self, order, method, email, contact):
        payment = {
            "id": self.new_id("pay"),
            "entity": "payment",
            "amount": order["amount"],
            "currency": order["currency"],
            "status": "created",
            "order_id": order["id"],
            "invoice_id": None,
            "international": False,
            "method": method,
            "amount_refunded": 0,
            "refund_status": None,
            "captured": False,
            "description": None,
            "card_id": None,
            "bank": None,
            "wallet": None,
            "vpa": None,
            "email": email or "patient@example.com",
            "contact": contact or "+919000090000",
            "notes": copy.deepcopy(order["notes"]),
            "fee": None,
            "tax": None,
            "error_code": None,
            "error_description": None,
            "error_source": None,
            "error_step": None,
            "error_reason": None,
            "acquirer_data": {},
            # Given the details a while before the Pay that ends it (DELAYS).
            "created_at": self.now() - int(self.delays["payment_approval"]),
        }
        if method == "upi":
            payment["vpa"] = "patient@okhdfcbank"
            # Razorpay's newer payment entity says it again, with the account type behind it.
            payment["upi"] = {"payer_account_type": "bank_account", "vpa": payment["vpa"]}
            payment["acquirer_data"] = {
                "rrn": str(self._random.randrange(10**11, 10**12)),
                "upi_transaction_id": self.new_id("upi")[4:],
            }
        elif method == "card":
            payment["card_id"] = self.new_id("card")
            payment["card"] = {
                "id": payment["card_id"],
                "entity": "card",
                "name": "Sandbox Patient",
                "last4": "1111",
                "network": "Visa",
                "type": "credit",
                "issuer": None,
                "international": False,
                "emi": False,
            }
            payment["acquirer_data"] = {"auth_code": str(self._random.randrange(10**5, 10**6))}
        elif method == "netbanking":
            payment["bank"] = "HDFC"
            payment["acquirer_data"] = {
                "bank_transaction_id": str(self._random.randrange(10**9, 10**10))
            }
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
            raise ApiError(
                "Only payments which have been authorized and not yet captured can be captured"
            )
