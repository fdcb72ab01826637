"""Sandbox refunds: full or partial, ``X-Refund-Idempotency``, pending → processed | failed."""

import copy

from portal.gateway.sandbox.common import ApiError, fingerprint, not_found


class RefundsMixin:
    """Part of :class:`~portal.gateway.sandbox.store.SandboxStore` (its state, lock and helpers)."""

    def create_refund(self, payment_id, data, idempotency_key=None):
        with self.lock:
            if idempotency_key:
                known = self._refund_keys.get(idempotency_key)
                digest = fingerprint({"payment_id": payment_id, **data})
                if known:
                    if known[0] != digest:
                        raise ApiError(
                            "Different request body sent for the same idempotency header",
                            field="X-Refund-Idempotency",
                        )
                    return copy.deepcopy(self.refunds[known[1]]), False
            payment = self._get(self.payments, payment_id)
            if payment["status"] not in ("captured", "refunded"):
                raise ApiError(
                    "The payment has not been captured, so it cannot be refunded.",
                    field="payment_id",
                )
            remaining = payment["amount"] - payment["amount_refunded"]
            if remaining <= 0:
                raise ApiError("The payment has been fully refunded already", field="payment_id")
            amount = self._amount(data) if data.get("amount") is not None else remaining
            if amount > remaining:
                raise ApiError(
                    "The refund amount provided is greater than amount captured", field="amount"
                )
            speed = data.get("speed", "normal")
            if speed not in ("normal", "optimum"):
                raise ApiError("The selected speed is invalid.", field="speed")
            notes = self._notes(data)
            refund = {
                "id": self.new_id("rfnd"),
                "entity": "refund",
                "amount": amount,
                "currency": payment["currency"],
                "payment_id": payment_id,
                "notes": notes,
                "receipt": data.get("receipt"),
                "acquirer_data": {"arn": None},
                "created_at": self.now(),
                "batch_id": None,
                "status": "pending",
                "speed_processed": "normal",
                "speed_requested": speed,
            }
            self.refunds[refund["id"]] = refund
            if idempotency_key:
                self._refund_keys[idempotency_key] = (digest, refund["id"])
            self._apply_refund(payment, amount)
            self._event("razorpay", "refund.created", refund=refund, payment=payment)
            self._later(
                "refund_optimum" if speed == "optimum" else "refund", "refund", refund["id"]
            )
            return copy.deepcopy(refund), True

    @staticmethod
    def _apply_refund(payment, delta):
        payment["amount_refunded"] += delta
        refunded = payment["amount_refunded"]
        payment["refund_status"] = (
            None if refunded == 0 else "full" if refunded == payment["amount"] else "partial"
        )
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
        refund["speed_processed"] = (
            "instant" if refund["speed_requested"] == "optimum" else "normal"
        )
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
