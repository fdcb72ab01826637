"""Sandbox RazorpayX: contacts, fund accounts, validations and payouts
(``X-Payout-Idempotency``; queued → processing → processed | failed | reversed)."""

import copy
import re

from portal.gateway.sandbox.common import (
    BANKS,
    GST_BPS,
    IFSC,
    IMPS_LIMIT,
    PAYOUT_FEE,
    VPA,
    ApiError,
    fingerprint,
    round_half_up,
)


class RazorpayXMixin:
    """Part of :class:`~portal.gateway.sandbox.store.SandboxStore` (its state, lock and helpers)."""

    def create_contact(self, data):
        with self.lock:
            name = (data.get("name") or "").strip()
            if not 3 <= len(name) <= 50:
                raise ApiError("The name must be between 3 and 50 characters.", field="name")
            kind = data.get("type")
            if kind and kind not in ("vendor", "customer", "employee", "self"):
                raise ApiError("Invalid type: " + str(kind), field="type")
            fields = {
                "name": name,
                "contact": data.get("contact"),
                "email": data.get("email"),
                "type": kind,
                "reference_id": data.get("reference_id"),
            }
            for existing in self.contacts.values():  # Razorpay returns an identical contact
                if all(existing[k] == v for k, v in fields.items()):
                    return copy.deepcopy(existing), False
            contact = {
                "id": self.new_id("cont"),
                "entity": "contact",
                **fields,
                "batch_id": None,
                "active": True,
                "notes": self._notes(data),
                "created_at": self.now(),
            }
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
                details = {
                    "bank_account": {
                        "ifsc": ifsc,
                        "bank_name": BANKS.get(ifsc[:4], "Sandbox Bank"),
                        "name": bank["name"].strip(),
                        "notes": [],
                        "account_number": number,
                    }
                }
            elif kind == "vpa":
                address = str((data.get("vpa") or {}).get("address", ""))
                if not VPA.match(address):
                    raise ApiError("Invalid VPA", field="address")
                user, handle = address.split("@")
                details = {"vpa": {"username": user, "handle": handle, "address": address}}
            else:
                raise ApiError(
                    "The account type must be bank_account or vpa.", field="account_type"
                )
            for existing in self.fund_accounts.values():
                if (
                    existing["contact_id"] == contact_id
                    and existing["account_type"] == kind
                    and existing[kind] == details[kind]
                ):
                    return copy.deepcopy(existing), False
            account = {
                "id": self.new_id("fa"),
                "entity": "fund_account",
                "contact_id": contact_id,
                "account_type": kind,
                **details,
                "batch_id": None,
                "active": True,
                "created_at": self.now(),
            }
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
                raise ApiError(
                    "The fund account id provided does not exist", field="fund_account_id"
                )
            amount = self._amount(data, minimum=100) if "amount" in data else 100
            validation = {
                "id": self.new_id("fav"),
                "entity": "fund_account.validation",
                "fund_account": copy.deepcopy(self.fund_accounts[fa_id]),
                "status": "created",
                "amount": amount,
                "currency": "INR",
                "notes": self._notes(data),
                "results": {"account_status": None, "registered_name": None},
                "created_at": self.now(),
                "utr": None,
            }
            self.validations[validation["id"]] = validation
            self._later("validation", "validation", validation["id"])
            return copy.deepcopy(validation)

    def _step_validation(self, validation_id):
        validation = self.validations[validation_id]
        account = validation["fund_account"]
        outcome = self._outcome_for("validation", validation, validation["notes"])
        # Account numbers ending 0000 and VPAs starting "invalid" stand for dead accounts.
        if account["account_type"] == "bank_account" and account["bank_account"][
            "account_number"
        ].endswith("0000"):
            outcome = "invalid"
        if account["account_type"] == "vpa" and account["vpa"]["username"].startswith("invalid"):
            outcome = "invalid"
        if outcome == "failed":
            validation["status"] = "failed"
            self._event(
                "razorpayx",
                "fund_account.validation.failed",
                **{"fund_account.validation": validation},
            )
            return
        name = (
            account["bank_account"]["name"]
            if account["account_type"] == "bank_account"
            else self.contacts[account["contact_id"]]["name"]
        )
        validation["status"] = "completed"
        validation["utr"] = str(self._random.randrange(10**11, 10**12))
        validation["results"] = {
            "account_status": "invalid" if outcome == "invalid" else "active",
            "registered_name": None if outcome == "invalid" else name,
        }
        self._event(
            "razorpayx",
            "fund_account.validation.completed",
            **{"fund_account.validation": validation},
        )

    def get_validation(self, validation_id):
        with self.lock:
            return copy.deepcopy(self._get(self.validations, validation_id))

    # --- RazorpayX: payouts -------------------------------------------------------------

    def create_payout(self, data, idempotency_key):
        with self.lock:
            if not idempotency_key:
                raise ApiError(
                    "X-Payout-Idempotency header is required", field="X-Payout-Idempotency"
                )
            if not 4 <= len(idempotency_key) <= 36:
                raise ApiError(
                    "X-Payout-Idempotency must be 4 to 36 characters long",
                    field="X-Payout-Idempotency",
                )
            digest = fingerprint(data)
            known = self._payout_keys.get(idempotency_key)
            if known:
                if known[0] != digest:
                    raise ApiError(
                        "Different request body sent for the same idempotency header",
                        field="X-Payout-Idempotency",
                    )
                return copy.deepcopy(self.payouts[known[1]]), False
            self._check_account_number(data)
            account = self.fund_accounts.get(data.get("fund_account_id"))
            if account is None:
                raise ApiError(
                    "The fund account id provided does not exist", field="fund_account_id"
                )
            amount = self._amount(data)
            mode = data.get("mode")
            allowed = ("UPI",) if account["account_type"] == "vpa" else ("IMPS", "NEFT", "RTGS")
            if mode not in allowed:
                raise ApiError(
                    f"Invalid combination of payout mode ({mode}) and fund account "
                    f"type ({account['account_type']}).",
                    field="mode",
                )
            if mode == "IMPS" and amount > IMPS_LIMIT:
                raise ApiError("Amount exceeds maximum amount allowed.", field="amount")
            if not data.get("purpose"):
                raise ApiError("The purpose field is required.", field="purpose")
            narration = data.get("narration")
            if narration and (len(narration) > 30 or not re.fullmatch(r"[A-Za-z0-9 ]+", narration)):
                raise ApiError(
                    "The narration must be at most 30 letters, digits or spaces.", field="narration"
                )
            tax = round_half_up(PAYOUT_FEE * GST_BPS, 10_000)
            payout = {
                "id": self.new_id("pout"),
                "entity": "payout",
                "fund_account_id": account["id"],
                "amount": amount,
                "currency": self._currency(data),
                "notes": self._notes(data),
                "fees": PAYOUT_FEE + tax,
                "tax": tax,
                "status": "queued",
                "purpose": data["purpose"],
                "utr": None,
                "mode": mode,
                "reference_id": data.get("reference_id"),
                "narration": narration,
                "batch_id": None,
                "failure_reason": None,
                "created_at": self.now(),
                "fee_type": None,
                "status_details": {"reason": None, "description": None, "source": None},
                "merchant_id": self.account_id[4:],
                "status_details_id": None,
                "error": {
                    "source": None,
                    "reason": None,
                    "description": None,
                    "code": "NA",
                    "step": "NA",
                    "metadata": {},
                },
            }
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
            payout.update(
                status="failed",
                failure_reason="Beneficiary bank is down",
                status_details={
                    "reason": "beneficiary_bank_down",
                    "description": "Beneficiary bank is down.",
                    "source": "beneficiary_bank",
                },
                error={
                    "source": "beneficiary_bank",
                    "reason": "bank_account_invalid",
                    "description": "Beneficiary bank is down.",
                    "code": "BAD_REQUEST_ERROR",
                    "step": "NA",
                    "metadata": {},
                },
            )
            self._event("razorpayx", "payout.failed", payout=payout)
        elif outcome == "reversed":
            payout.update(
                status="reversed",
                failure_reason="Payout reversed by the bank",
                utr=str(self._random.randrange(10**11, 10**12)),
                status_details={
                    "reason": "beneficiary_account_closed",
                    "description": "Beneficiary account is closed.",
                    "source": "beneficiary_bank",
                },
            )
            self._event("razorpayx", "payout.reversed", payout=payout)
        else:
            payout.update(
                status="processed",
                utr=str(self._random.randrange(10**11, 10**12)),
                status_details={
                    "reason": "payout_processed",
                    "description": "Payout is processed.",
                    "source": "beneficiary_bank",
                },
            )
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
