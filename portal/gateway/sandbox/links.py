"""Sandbox payment links: create, notify, cancel, pay, expire (in ``tick``)."""

import copy

from portal.gateway.sandbox.common import ApiError, sign


class LinksMixin:
    """Part of :class:`~portal.gateway.sandbox.store.SandboxStore` (its state, lock and helpers)."""

    def create_link(self, data, public_url):
        with self.lock:
            amount = self._amount(data)
            if data.get("accept_partial"):
                raise ApiError(
                    "The sandbox does not support partial payments on links.",
                    field="accept_partial",
                )
            now = self.now()
            expire_by = data.get("expire_by")
            if expire_by is not None:
                if not isinstance(expire_by, int) or expire_by < now + 15 * 60:
                    raise ApiError(
                        "expire_by should be at least 15 minutes after current time",
                        field="expire_by",
                    )
            reference_id = data.get("reference_id")
            if reference_id:
                if len(str(reference_id)) > 40:
                    raise ApiError(
                        "The reference id may not be greater than 40 characters.",
                        field="reference_id",
                    )
                if any(
                    link["reference_id"] == reference_id and link["status"] != "cancelled"
                    for link in self.links.values()
                ):
                    raise ApiError(
                        f"Payment Link with reference id {reference_id} already exists",
                        field="reference_id",
                    )
            customer = data.get("customer") or {}
            notify = data.get("notify") or {}
            link_id = self.new_id("plink")
            link = {
                "id": link_id,
                "entity": "payment_link",
                "accept_partial": False,
                "amount": amount,
                "amount_paid": 0,
                "currency": self._currency(data),
                "callback_url": data.get("callback_url") or "",
                "callback_method": data.get("callback_method") or "",
                "cancelled_at": 0,
                "created_at": now,
                "updated_at": now,
                "customer": {
                    k: customer.get(k) for k in ("name", "email", "contact") if customer.get(k)
                },
                "description": data.get("description") or "",
                "expire_by": expire_by or 0,
                "expired_at": 0,
                "first_min_partial_amount": 0,
                "notes": self._notes(data) or None,
                "notify": {"sms": bool(notify.get("sms")), "email": bool(notify.get("email"))},
                "order_id": "",
                "payments": None,
                "reference_id": reference_id or "",
                "reminder_enable": bool(data.get("reminder_enable", False)),
                "reminders": [],
                "short_url": f"{public_url.rstrip('/')}/pl/{link_id}",
                "status": "created",
                "upi_link": False,
                "user_id": "",
            }
            self.links[link_id] = link
            for medium in ("sms", "email"):
                if link["notify"][medium]:
                    self._notify(link, medium)
            return copy.deepcopy(link)

    def _notify(self, link, medium):
        to = link["customer"].get("contact" if medium == "sms" else "email")
        self.notifications.append(
            {
                "payment_link_id": link["id"],
                "medium": medium,
                "to": to,
                "short_url": link["short_url"],
                "at": self.now(),
            }
        )

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
                items = [link for link in items if link["reference_id"] == args["reference_id"]]
            if args.get("payment_id"):
                items = [
                    link
                    for link in items
                    if any(p["payment_id"] == args["payment_id"] for p in link["payments"] or [])
                ]
            page = self._page(items, {**args, "count": args.get("count", 100)})
            return {"payment_links": page["items"]}

    def cancel_link(self, link_id):
        with self.lock:
            link = self._get(self.links, link_id)
            if link["status"] not in ("created", "partially_paid"):
                raise ApiError(
                    f"Payment link cannot be cancelled as it is already {link['status']}"
                )
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
                order = self.create_order(
                    {
                        "amount": link["amount"],
                        "receipt": link["reference_id"] or None,
                        "notes": link["notes"] or {},
                    }
                )
                order_id = link["order_id"] = order["id"]
            payment = self.pay_order(
                order_id,
                method=method,
                succeed=succeed,
                email=link["customer"].get("email"),
                contact=link["customer"].get("contact"),
                _link=link,
            )
            return payment, copy.deepcopy(link)

    def link_signature(self, link, payment_id):
        return sign(
            f"{link['id']}|{link['reference_id']}|{link['status']}|{payment_id}", self.key_secret
        )
