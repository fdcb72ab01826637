"""RazorpayX over httpx against the sandbox: contacts, fund accounts, validations, payouts."""

import pytest

from portal.gateway import errors


@pytest.fixture
def bank_account(payouts):
    contact = payouts.create_contact(
        "Dr Meera Rao", email="meera@example.com", reference_id="provider-7"
    )
    return payouts.create_fund_account(
        contact["id"],
        bank_account={
            "name": "Meera Rao",
            "ifsc": "HDFC0000123",
            "account_number": "50100012345678",
        },
    )


def test_contacts_and_fund_accounts(payouts):
    contact = payouts.create_contact(
        "Dr Meera Rao", email="meera@example.com", reference_id="provider-7"
    )
    assert contact["id"].startswith("cont_") and contact["type"] == "vendor"
    # RazorpayX answers an identical contact with the one it has.
    again = payouts.create_contact(
        "Dr Meera Rao", email="meera@example.com", reference_id="provider-7"
    )
    assert again["id"] == contact["id"]
    bank = payouts.create_fund_account(
        contact["id"],
        bank_account={
            "name": "Meera Rao",
            "ifsc": "hdfc0000123",
            "account_number": "50100012345678",
        },
    )
    assert bank["id"].startswith("fa_") and bank["account_type"] == "bank_account"
    assert bank["bank_account"]["bank_name"] == "HDFC Bank"
    assert bank["bank_account"]["ifsc"] == "HDFC0000123"
    vpa = payouts.create_fund_account(contact["id"], vpa="meera@okaxis")
    assert vpa["vpa"] == {"username": "meera", "handle": "okaxis", "address": "meera@okaxis"}
    assert payouts.fetch_fund_account(vpa["id"])["contact_id"] == contact["id"]
    with pytest.raises(errors.BadRequest) as bad:
        payouts.create_fund_account(
            contact["id"],
            bank_account={"name": "Meera", "ifsc": "NOTANIFSC", "account_number": "123456"},
        )
    assert bad.value.field == "ifsc"


def test_fund_account_validation(payouts, sandbox, bank_account):
    validation = payouts.validate_fund_account(bank_account["id"])
    assert validation["id"].startswith("fav_") and validation["status"] == "created"
    sandbox.advance(5)
    done = payouts.fetch_validation(validation["id"])
    assert done["status"] == "completed"
    assert done["results"] == {"account_status": "active", "registered_name": "Meera Rao"}
    dead = payouts.create_fund_account(
        bank_account["contact_id"],
        bank_account={"name": "Meera Rao", "ifsc": "SBIN0000001", "account_number": "1234560000"},
    )
    check = payouts.validate_fund_account(dead["id"])
    sandbox.advance(5)
    assert payouts.fetch_validation(check["id"])["results"]["account_status"] == "invalid"
    assert [e["event"] for e in sandbox.events()] == [
        "fund_account.validation.completed",
        "fund_account.validation.completed",
    ]


def test_payout_statuses_over_time(payouts, sandbox, bank_account):
    payout = payouts.create_payout(
        "po-cycle-1",
        fund_account_id=bank_account["id"],
        amount=1_25_000_00,
        mode="NEFT",
        purpose="vendor bill",
        reference_id="cycle-2025-04",
        narration="Clinic payout",
    )
    assert payout["id"].startswith("pout_") and payout["status"] == "queued"
    assert (payout["fees"], payout["tax"]) == (590, 90)
    sandbox.advance(1)
    assert payouts.fetch_payout(payout["id"])["status"] == "processing"
    sandbox.advance(3)
    done = payouts.fetch_payout(payout["id"])
    assert done["status"] == "processed" and done["utr"]
    assert [e["event"] for e in sandbox.events()] == [
        "payout.queued",
        "payout.initiated",
        "payout.processed",
    ]
    assert payouts.list_payouts(reference_id="cycle-2025-04")[0]["id"] == payout["id"]


@pytest.mark.parametrize("outcome", ["failed", "reversed"])
def test_payout_can_fail_or_be_reversed(payouts, sandbox, bank_account, outcome):
    sandbox.set_faults(payout_outcome=outcome)
    payout = payouts.create_payout(
        "po-" + outcome, fund_account_id=bank_account["id"], amount=50_000
    )
    sandbox.advance(10)
    final = payouts.fetch_payout(payout["id"])
    assert final["status"] == outcome and final["status_details"]["reason"]
    assert sandbox.events()[-1]["event"] == f"payout.{outcome}"


def test_one_idempotency_key_makes_one_payout(payouts, sandbox, bank_account):
    kwargs = {
        "fund_account_id": bank_account["id"],
        "amount": 75_000,
        "mode": "IMPS",
        "reference_id": "payout-9",
    }
    first = payouts.create_payout("payout-9-key", **kwargs)
    second = payouts.create_payout("payout-9-key", **kwargs)
    assert second["id"] == first["id"]
    assert len(sandbox.store.payouts) == 1
    with pytest.raises(errors.IdempotencyConflict):
        payouts.create_payout("payout-9-key", **{**kwargs, "amount": 80_000})
    assert len(sandbox.store.payouts) == 1
    assert len(payouts.list_payouts()) == 1


def test_payout_survives_timeouts_without_paying_twice(make_payouts, sandbox, bank_account):
    # The sandbox creates the payout, then answers too late; the retry reuses the key.
    payouts = make_payouts(timeout=0.3, retries=3)
    sandbox.set_faults(timeout_next=2, timeout_seconds=1.0, match="POST /v1/payouts")
    payout = payouts.create_payout(
        "po-timeout-1", fund_account_id=bank_account["id"], amount=10_000
    )
    assert list(sandbox.store.payouts) == [payout["id"]]


def test_payout_outcome_unknown_then_retried_later(make_payouts, sandbox, bank_account):
    payouts = make_payouts(timeout=0.3, retries=1)
    sandbox.set_faults(timeout_next=5, timeout_seconds=1.0, match="POST /v1/payouts")
    with pytest.raises(errors.GatewayTimeout) as lost:
        payouts.create_payout("po-timeout-2", fund_account_id=bank_account["id"], amount=10_000)
    assert lost.value.retryable and lost.value.idempotency_key == "po-timeout-2"
    assert len(sandbox.store.payouts) == 1  # made at RazorpayX, though we never heard
    sandbox.reset_faults()
    payout = payouts.create_payout(
        "po-timeout-2", fund_account_id=bank_account["id"], amount=10_000
    )
    assert list(sandbox.store.payouts) == [payout["id"]]


def test_payout_5xx_is_retried_and_validation_errors_are_not(payouts, sandbox, bank_account):
    sandbox.set_faults(fail_next=2, error_status=503, match="POST /v1/payouts")
    payout = payouts.create_payout("po-5xx", fund_account_id=bank_account["id"], amount=10_000)
    assert list(sandbox.store.payouts) == [payout["id"]]
    with pytest.raises(errors.BadRequest) as bad:
        payouts.create_payout(
            "po-upi", fund_account_id=bank_account["id"], amount=10_000, mode="UPI"
        )
    assert bad.value.field == "mode" and not bad.value.retryable
    with pytest.raises(ValueError):
        payouts.create_payout("abc", fund_account_id=bank_account["id"], amount=10_000)


def test_wrong_account_number_is_refused(make_payouts, bank_account):
    other = make_payouts(account_number="999")
    with pytest.raises(errors.BadRequest) as bad:
        other.create_payout("po-acct", fund_account_id=bank_account["id"], amount=10_000)
    assert bad.value.field == "account_number"
