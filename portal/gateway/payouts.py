"""Payouts through RazorpayX REST over httpx (the razorpay SDK has no payouts API).

Every payout carries an ``X-Payout-Idempotency`` key chosen by the caller and reused on
every retry, so a retry after a timeout finds the payout the first attempt created
instead of paying twice."""

import time

import httpx

from portal.gateway import errors, tls
from portal.gateway.payin import PRODUCTION_URL, _unix
from portal.gateway.retry import with_retries

MODES = ("IMPS", "NEFT", "RTGS", "UPI")


class RazorpayXPayouts:
    def __init__(
        self,
        key_id,
        key_secret,
        account_number,
        base_url=PRODUCTION_URL,
        *,
        timeout=10.0,
        retries=3,
        backoff=0.5,
        transport=None,
        sleep=time.sleep,
    ):
        if not key_id or not key_secret:
            raise errors.AuthenticationFailed("RAZORPAY_KEY_ID / RAZORPAY_KEY_SECRET not set")
        self.account_number = account_number
        self.retries = retries
        self.backoff = backoff
        self.timeout = float(timeout or 0)
        self._sleep = sleep
        self.http = httpx.Client(
            base_url=base_url.rstrip("/") + "/v1",
            auth=(key_id, key_secret),
            timeout=timeout,
            transport=transport,
            verify=tls.context(),
            headers={"User-Agent": "clinic-portal/0.1"},
        )

    def close(self):
        self.http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _request(
        self,
        method,
        path,
        *,
        json=None,
        params=None,
        headers=None,
        retry_ambiguous=True,
        idempotency_key=None,
    ):
        """One API call with retries on network errors and 5xx; typed errors out."""

        def attempt():
            try:
                response = self.http.request(
                    method, path, json=json, params=params, headers=headers
                )
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:  # never reached it
                error = errors.GatewayUnavailable(f"RazorpayX unreachable: {exc}")
                error.ambiguous = False
                raise error from None
            except httpx.RequestError as exc:  # timeouts, dropped or undecodable answers
                raise errors.GatewayTimeout(
                    f"No answer from RazorpayX: {exc!r}", idempotency_key=idempotency_key
                ) from None
            try:
                body = response.json()
            except ValueError:
                body = errors.NOT_JSON
            if response.is_success:
                if isinstance(body, dict):
                    return body
                raise errors.unreadable_success(response.status_code, body, "RazorpayX")
            raise errors.from_response(
                response.status_code, body, response.reason_phrase, who="RazorpayX"
            )

        return with_retries(
            attempt,
            retries=self.retries,
            backoff=self.backoff,
            sleep=self._sleep,
            retry_ambiguous=retry_ambiguous,
            timeout=self.timeout,
        )

    # --- contacts and fund accounts --------------------------------------------------
    # RazorpayX answers an identical create with the existing entity, so retries are safe.

    def create_contact(
        self, name, *, email=None, contact=None, type="vendor", reference_id=None, notes=None
    ):
        data = {
            "name": name,
            "email": email,
            "contact": contact,
            "type": type,
            "reference_id": reference_id,
            "notes": notes or {},
        }
        return self._request(
            "POST", "/contacts", json={k: v for k, v in data.items() if v is not None}
        )

    def fetch_contact(self, contact_id):
        return self._request("GET", f"/contacts/{contact_id}")

    def create_fund_account(self, contact_id, *, bank_account=None, vpa=None):
        """``bank_account={"name", "ifsc", "account_number"}`` or ``vpa="name@bank"``."""
        if (bank_account is None) == (vpa is None):
            raise ValueError("give exactly one of bank_account or vpa")
        data = {"contact_id": contact_id}
        if bank_account is not None:
            data.update(account_type="bank_account", bank_account=dict(bank_account))
        else:
            data.update(account_type="vpa", vpa={"address": vpa})
        return self._request("POST", "/fund_accounts", json=data)

    def fetch_fund_account(self, fund_account_id):
        return self._request("GET", f"/fund_accounts/{fund_account_id}")

    def validate_fund_account(self, fund_account_id, *, amount=100, notes=None):
        """Start a validation (penny drop / VPA check); the result comes by webhook
        ``fund_account.validation.completed`` (validation_results.account_status; older
        samples: results) or by fetching."""
        data = {
            "account_number": self.account_number,
            "fund_account": {"id": fund_account_id},
            "amount": int(amount),
            "currency": "INR",
            "notes": notes or {},
        }
        # Not idempotent at RazorpayX: a lost answer is not retried (it would pay again).
        return self._request("POST", "/fund_accounts/validations", json=data, retry_ambiguous=False)

    def fetch_validation(self, validation_id):
        return self._request("GET", f"/fund_accounts/validations/{validation_id}")

    # --- payouts -------------------------------------------------------------------------

    def create_payout(
        self,
        idempotency_key,
        *,
        fund_account_id,
        amount,
        mode="IMPS",
        purpose="payout",
        reference_id=None,
        narration=None,
        notes=None,
        queue_if_low_balance=True,
    ):
        """Pay ``amount`` paise. Call again with the same key and arguments after any
        retryable error: RazorpayX returns the payout the key already made."""
        if not idempotency_key or not 4 <= len(idempotency_key) <= 36:
            raise ValueError("X-Payout-Idempotency must be 4 to 36 characters")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        data = {
            "account_number": self.account_number,
            "fund_account_id": fund_account_id,
            "amount": int(amount),
            "currency": "INR",
            "mode": mode,
            "purpose": purpose,
            "queue_if_low_balance": queue_if_low_balance,
            "notes": notes or {},
        }
        if reference_id:
            data["reference_id"] = reference_id
        if narration:
            data["narration"] = narration
        return self._request(
            "POST",
            "/payouts",
            json=data,
            headers={"X-Payout-Idempotency": idempotency_key},
            idempotency_key=idempotency_key,
        )

    def fetch_payout(self, payout_id):
        return self._request("GET", f"/payouts/{payout_id}")

    def list_payouts(self, **filters):
        params = {"account_number": self.account_number, **filters}
        return errors.items_of(self._request("GET", "/payouts", params=params), "RazorpayX")

    def list_payouts_page(self, start, end, *, count=100, skip=0):
        """One page of the payouts created in [start, end] (unix seconds or datetimes),
        newest first: the raw collection, for reconciliation."""
        params = {
            "account_number": self.account_number,
            "from": _unix(start),
            "to": _unix(end),
            "count": int(count),
            "skip": int(skip),
        }
        return self._request("GET", "/payouts", params=params)
