import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

import portal.ledger.models  # noqa: F401  (registers the tables before the app fixture builds them)
from portal.extensions import db
from portal.ledger import accounts as chart
from portal.ledger import service
from portal.ledger.check import verify_ledger
from portal.ledger.models import LedgerAccount, LedgerEntry, LedgerTransaction
from portal.ledger.service import (
    EmptyTransaction,
    IdempotencyConflict,
    InsufficientBalance,
    UnbalancedTransaction,
    balance,
    balances,
    credit,
    debit,
    post,
    raw_balance,
    reverse,
)
from tests.querycount import counted_queries

WALLET = chart.patient_wallet(7)
PAYABLE = chart.provider_payable(3)


def capture(key="capture:1", amount=105_900):
    return post(
        "payment_captured",
        [
            debit(chart.GATEWAY_CLEARING, amount),
            credit(chart.UNEARNED_FEES, 100_000),
            credit(chart.PLATFORM_REVENUE, 5_000),
            credit(chart.GST_PAYABLE, amount - 105_000),
        ],
        reference=("payment", 1),
        idempotency_key=key,
    )


def count(model):
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def test_post_balanced_and_balances(ctx):
    txn = capture()
    db.session.commit()
    assert txn.id and txn.reference_type == "payment" and txn.reference_id == "1"
    assert balance(chart.GATEWAY_CLEARING) == 105_900  # asset: debit-normal
    assert balance(chart.UNEARNED_FEES) == 100_000  # liability: credit-normal
    assert raw_balance(chart.UNEARNED_FEES) == -100_000
    assert balance(chart.GST_PAYABLE) == 900
    assert sorted(e.amount for e in txn.entries) == [-100_000, -5_000, -900, 105_900]
    assert verify_ledger() == []


def test_accounts_created_from_chart(ctx):
    post("wallet_credit", [debit(chart.WALLET_ADJUSTMENTS, 500), credit(WALLET, 500)])
    account = service.get_account(WALLET)
    assert (account.kind, account.owner_type, account.owner_id) == ("liability", "user", "7")
    assert service.get_account(chart.WALLET_ADJUSTMENTS).kind == "expense"
    assert balance(WALLET) == 500


def test_refuses_unbalanced_empty_and_unknown(ctx):
    with pytest.raises(UnbalancedTransaction):
        post("x", [debit(chart.BANK, 100), credit(chart.GATEWAY_CLEARING, 99)])
    with pytest.raises(EmptyTransaction):
        post("x", [])
    with pytest.raises(EmptyTransaction):
        post("x", [debit(chart.BANK, 0), credit(chart.GATEWAY_CLEARING, 0)])
    with pytest.raises(ValueError):
        post("x", [debit("bnak", 100), credit(chart.GATEWAY_CLEARING, 100)])
    with pytest.raises(ValueError):
        post("x", [debit("patient_wallet:abc", 100), credit(chart.GATEWAY_CLEARING, 100)])
    with pytest.raises(TypeError):
        post("x", [(chart.BANK, 1.5), (chart.GATEWAY_CLEARING, -1.5)])
    with pytest.raises(ValueError):
        debit(chart.BANK, -1)
    assert count(LedgerTransaction) == 0 and count(LedgerAccount) == 0


def test_zero_lines_dropped(ctx):
    txn = post(
        "x",
        [debit(chart.BANK, 100), credit(chart.GST_PAYABLE, 0), credit(chart.GATEWAY_CLEARING, 100)],
    )
    assert len(txn.entries) == 2


def test_idempotency_key_posts_once(ctx):
    first = capture()
    db.session.commit()
    again = capture()
    assert again.id == first.id
    assert count(LedgerTransaction) == 1 and balance(chart.GATEWAY_CLEARING) == 105_900


def test_idempotency_conflict(ctx):
    capture()
    with pytest.raises(IdempotencyConflict):
        capture(amount=106_000)


def test_idempotency_race_resolved_by_unique_constraint(ctx, monkeypatch):
    """A concurrent request posted the same key between our check and our insert: the
    unique constraint refuses ours inside the SAVEPOINT and we return theirs, with the
    rest of our unit of work intact."""
    first = capture()
    db.session.commit()
    post("other", [debit(chart.BANK, 1), credit(chart.GATEWAY_CLEARING, 1)])  # earlier work
    real = service._by_key
    calls = {"n": 0}

    def stale(key):
        calls["n"] += 1
        return None if calls["n"] == 1 else real(key)

    monkeypatch.setattr(service, "_by_key", stale)
    again = capture()
    assert again.id == first.id and calls["n"] == 2
    db.session.commit()
    assert count(LedgerTransaction) == 2  # the capture once, plus the earlier work kept
    assert verify_ledger() == []


def test_unique_constraint_in_database(ctx):
    capture()
    db.session.commit()
    db.session.add(LedgerTransaction(kind="dup", idempotency_key="capture:1"))
    with pytest.raises(IntegrityError):
        db.session.flush()
    db.session.rollback()


def test_posting_is_part_of_the_callers_transaction(ctx):
    """post() flushes inside a SAVEPOINT; the caller's rollback undoes it (on SQLite too)."""
    capture()
    db.session.rollback()
    assert count(LedgerTransaction) == 0 and count(LedgerEntry) == 0
    assert balance(chart.GATEWAY_CLEARING) == 0


def test_entry_amount_check_constraint(ctx):
    txn = capture()
    account = service.get_account(chart.BANK) or service.ensure_account(chart.BANK)
    db.session.add(LedgerEntry(transaction_id=txn.id, account_id=account.id, amount=0))
    with pytest.raises(IntegrityError):
        db.session.flush()
    db.session.rollback()


def test_account_kind_check_constraint(ctx):
    db.session.add(LedgerAccount(code="weird", kind="magic"))
    with pytest.raises(IntegrityError):
        db.session.flush()
    db.session.rollback()


def test_append_only(ctx):
    txn = capture()
    db.session.commit()
    txn.entries[0].amount = 1
    with pytest.raises(RuntimeError, match="append-only"):
        db.session.flush()
    db.session.rollback()


def test_reverse(ctx):
    txn = capture()
    back = reverse(txn, idempotency_key="capture:1:reversed")
    assert back.kind == "payment_captured_reversal" and back.reference_id == "1"
    assert balance(chart.GATEWAY_CLEARING) == 0 and balance(chart.UNEARNED_FEES) == 0
    assert reverse(txn, idempotency_key="capture:1:reversed").id == back.id


def test_require_non_negative_wallet(ctx):
    post("topup", [debit(chart.WALLET_ADJUSTMENTS, 1_000), credit(WALLET, 1_000)])
    post(
        "wallet_use",
        [debit(WALLET, 600), credit(chart.UNEARNED_FEES, 600)],
        require_non_negative=[WALLET],
    )
    with pytest.raises(InsufficientBalance) as err:
        post(
            "wallet_use",
            [debit(WALLET, 401), credit(chart.UNEARNED_FEES, 401)],
            require_non_negative=[WALLET],
        )
    assert err.value.balance == -1
    assert balance(WALLET) == 400
    assert count(LedgerTransaction) == 2
    db.session.commit()
    assert verify_ledger() == []


def test_balances_of_the_codes_asked_only(ctx):
    """A page reads its own rows' balances: another provider's account is not read, an
    account asked for that does not exist yet is left out (its balance is 0)."""
    post("earn", [debit(chart.UNEARNED_FEES, 9_500), credit(PAYABLE, 9_500)])
    post("earn", [debit(chart.UNEARNED_FEES, 100), credit(chart.provider_payable(4), 100)])
    post("penalty", [debit(PAYABLE, 25_000), credit(chart.PENALTY_REVENUE, 25_000)])
    assert balances([PAYABLE, chart.provider_payable(5)]) == {"provider_payable:3": -15_500}
    assert balances(code for code in [chart.provider_payable(4)]) == {"provider_payable:4": 100}
    assert balances([]) == {}


def test_a_balance_read_as_a_column_is_the_balance(ctx):
    capture()
    post("wallet_credit", [debit(chart.WALLET_ADJUSTMENTS, 700), credit(WALLET, 700)])
    db.session.commit()
    codes = [chart.GATEWAY_CLEARING, chart.UNEARNED_FEES, WALLET, chart.patient_wallet(8)]
    columns = [service.balance_column(sa.literal(c), chart.describe(c)[0]) for c in codes]
    read = list(db.session.execute(sa.select(*columns)).one())
    assert read == [balance(code) for code in codes] == [105_900, 100_000, 700, 0]


def test_an_owners_code_spelled_in_sql_is_the_charts(ctx):
    for prefix, code_of in (
        (chart.PATIENT_WALLET, chart.patient_wallet),
        (chart.PROVIDER_PAYABLE, chart.provider_payable),
    ):
        for owner in (1, 7, 12_345):
            spelled = sa.select(service.owned_code(prefix, sa.literal(owner, sa.Integer)))
            assert db.session.scalar(spelled) == code_of(owner)


def test_a_kept_balance_is_shown_until_a_posting(app):
    with app.test_request_context("/"):
        post("wallet_credit", [debit(chart.WALLET_ADJUSTMENTS, 700), credit(WALLET, 700)])
        service.keep_balance(WALLET, 123)  # as if read with another statement
        with counted_queries() as statements:
            assert service.shown_balance(WALLET) == 123
        assert statements == []
        assert balance(WALLET) == 700  # a decision never reads the kept value
        assert service.shown_balance(chart.patient_wallet(8)) == 0  # not kept: read
        post("wallet_credit", [debit(chart.WALLET_ADJUSTMENTS, 300), credit(WALLET, 300)])
        assert service.shown_balance(WALLET) == 1_000  # the posting dropped it
        db.session.commit()
    with app.app_context():  # outside a request nothing is kept
        service.keep_balance(WALLET, 5)
        assert service.shown_balance(WALLET) == 1_000
        db.session.remove()


def test_entries_for_reference(ctx):
    capture()
    post(
        "other", [debit(chart.BANK, 1), credit(chart.GATEWAY_CLEARING, 1)], reference=("payment", 2)
    )
    assert [t.kind for t in service.entries_for("payment", 1)] == ["payment_captured"]


def test_verify_ledger_finds_problems(ctx):
    capture()
    db.session.commit()
    bank = service.ensure_account(chart.BANK)
    broken = LedgerTransaction(kind="broken")
    db.session.add(broken)
    db.session.flush()
    db.session.add(LedgerEntry(transaction_id=broken.id, account_id=bank.id, amount=5))
    db.session.add(LedgerTransaction(kind="empty"))
    wallet = LedgerAccount(code=WALLET, kind="liability")
    db.session.add(wallet)
    db.session.add(LedgerAccount(code="mystery", kind="asset"))
    db.session.add(LedgerAccount(code=chart.GST_PAYABLE + "x", kind="asset"))
    db.session.flush()
    odd = LedgerTransaction(kind="overdraw")
    db.session.add(odd)
    db.session.flush()
    db.session.add_all(
        [
            LedgerEntry(transaction_id=odd.id, account_id=wallet.id, amount=300),
            LedgerEntry(transaction_id=odd.id, account_id=bank.id, amount=-300),
        ]
    )
    db.session.commit()
    problems = verify_ledger()
    text = "\n".join(problems)
    assert f"transaction {broken.id} does not balance" in text
    assert "has 1 entry" in text and "has 0 entries" in text
    assert "mystery is not in the chart" in text
    assert f"wallet {WALLET} is below zero: -300 paise" in text
    assert "all entries together sum to 5 paise" in text


def test_cli_check(app):
    from portal.ledger.cli import ledger_cli

    runner = app.test_cli_runner()
    # The ledger alone: the gateway's side has tests of its own (test_gateway_clearing).
    result = runner.invoke(ledger_cli, ["check", "--no-gateway"])
    assert result.exit_code == 0 and "OK" in result.output
    with app.app_context():
        capture()
        db.session.commit()
    result = runner.invoke(ledger_cli, ["balance", chart.GST_PAYABLE])
    assert result.exit_code == 0 and "900 paise (₹9.00)" in result.output
    with app.app_context():
        db.session.add(LedgerTransaction(kind="empty"))
        db.session.commit()
    result = runner.invoke(ledger_cli, ["check", "--no-gateway"])
    assert result.exit_code == 1 and "problem" in result.output
