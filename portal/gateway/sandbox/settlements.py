"""Sandbox settlements: each finished IST day settles; the recon report."""

import copy
from datetime import date, datetime

from portal.gateway.sandbox.common import IST, ApiError


class SettlementsMixin:
    """Part of :class:`~portal.gateway.sandbox.store.SandboxStore` (its state, lock and helpers)."""

    def _ist_day(self, ts):
        return datetime.fromtimestamp(ts, IST).date()

    def _capture_time(self, payment):
        """Razorpay settles a payment by its capture's day, which may be after its
        creation's (``DELAYS["payment_approval"]``); a state saved before capture times
        were kept: its creation."""
        return self._captured_at.get(payment["id"], payment["created_at"])

    def _auto_settle(self, now):
        """A finished IST day settles by itself once the settlement delay has passed."""
        today = self._ist_day(now - self.delays["settlement"])
        days = {
            self._ist_day(self._capture_time(p))
            for p in self.payments.values()
            if p["captured"] and p["id"] not in self._settled
        }
        days |= {
            self._ist_day(r["created_at"])
            for r in self.refunds.values()
            if r["status"] == "processed" and r["id"] not in self._settled
        }
        for day in sorted(d for d in days if d < today):
            self.settle_day(day)

    def settle_day(self, day):
        """Settle one IST day's captured payments and refunds (less fees and tax)."""
        with self.lock:
            if isinstance(day, str):
                day = date.fromisoformat(day)
            start = datetime.combine(day, datetime.min.time(), IST).timestamp()
            end = start + 86400
            payments = [
                p
                for p in self.payments.values()
                if p["captured"]
                and start <= self._capture_time(p) < end
                and p["id"] not in self._settled
            ]
            refunds = [
                r
                for r in self.refunds.values()
                if r["status"] == "processed"
                and start <= r["created_at"] < end
                and r["id"] not in self._settled
            ]
            if not payments and not refunds:
                return None
            fees = sum(p["fee"] for p in payments)
            tax = sum(p["tax"] for p in payments)
            amount = sum(p["amount"] for p in payments) - fees - sum(r["amount"] for r in refunds)
            settlement = {
                "id": self.new_id("setl"),
                "entity": "settlement",
                "amount": amount,
                "status": "processed",
                "fees": fees,
                "tax": tax,
                "utr": self.new_id("utr")[4:],
                "created_at": self.now(),
                "_day": day.isoformat(),
            }
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
            rows = rows[skip : skip + count]
            return {"entity": "collection", "count": len(rows), "items": rows}

    def _recon_row(self, entity_id, settlement):
        if entity_id.startswith("pay_"):
            p = self.payments[entity_id]
            order = self.orders.get(p["order_id"]) or {}
            return {
                "entity_id": p["id"],
                "type": "payment",
                "debit": 0,
                "credit": p["amount"] - p["fee"],
                "amount": p["amount"],
                "currency": p["currency"],
                "fee": p["fee"],
                "tax": p["tax"],
                "on_hold": False,
                "settled": True,
                "created_at": p["created_at"],
                "settled_at": settlement["created_at"],
                "settlement_id": settlement["id"],
                "posted_at": settlement["created_at"],
                "credit_type": "default",
                "description": p["description"],
                "notes": p["notes"],
                "payment_id": None,
                "settlement_utr": settlement["utr"],
                "order_id": p["order_id"],
                "order_receipt": order.get("receipt"),
                "method": p["method"],
                "card_network": (p.get("card") or {}).get("network"),
                "card_issuer": None,
                "card_type": (p.get("card") or {}).get("type"),
                "dispute_id": None,
            }
        r = self.refunds[entity_id]
        p = self.payments[r["payment_id"]]
        return {
            "entity_id": r["id"],
            "type": "refund",
            "debit": r["amount"],
            "credit": 0,
            "amount": r["amount"],
            "currency": r["currency"],
            "fee": 0,
            "tax": 0,
            "on_hold": False,
            "settled": True,
            "created_at": r["created_at"],
            "settled_at": settlement["created_at"],
            "settlement_id": settlement["id"],
            "posted_at": settlement["created_at"],
            "credit_type": "default",
            "description": None,
            "notes": r["notes"],
            "payment_id": p["id"],
            "settlement_utr": settlement["utr"],
            "order_id": p["order_id"],
            "order_receipt": (self.orders.get(p["order_id"]) or {}).get("receipt"),
            "method": p["method"],
            "card_network": None,
            "card_issuer": None,
            "card_type": None,
            "dispute_id": None,
        }
