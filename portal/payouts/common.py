"""What the payout use cases share: job names, errors, settings, row locks and readers.

The use cases themselves are split by what they do: ``create`` (a payout from the
payable, TDS), ``sending`` (RazorpayX calls and retries), ``status`` (moving a payout and
its attempt, the ledger on each move), ``admin`` (hold, release, retry now, pay now, sync,
mark failed), ``runs`` (cycles and INSTANT payouts). See docs/payouts.md."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa

from portal.catalog import time_lock
from portal.catalog.models import Provider
from portal.config import policy, setting
from portal.db import utcnow
from portal.domain import tax_ids
from portal.domain.payouts import catch_up_note, join_notes, no_pan_note
from portal.domain.policy import TdsRule
from portal.domain.rates import financial_year
from portal.extensions import db
from portal.ledger import accounts as chart
from portal.ledger.service import balance, balance_column, owned_code
from portal.payouts import models as m

SEND_JOB = "payouts.send"
RETRY_JOB = "payouts.retry"
INSTANT_JOB = "payouts.instant"


class PayoutError(Exception):
    def __init__(self, message):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Skipped:
    """No payout was made; ``reason`` says why (shown to admins and the provider)."""

    provider_id: int
    reason: str
    balance: int = 0


# --- settings -----------------------------------------------------------------------------


# The longest waits: a resend is asked at least hourly (docs/payouts.md), an automatic
# retry at least daily. The exponent is capped before the power is taken: an unbounded
# count (an attempt resent hourly for weeks) would overflow the float (from 2**1024) or the
# timedelta, and the job would fail after its request with nothing scheduled again.
LONGEST_RESEND_WAIT = timedelta(hours=1)
LONGEST_RETRY_WAIT = timedelta(days=1)
_LONGEST_EXPONENT = 40  # 2**40 or 4**40 seconds is far past either cap


def _capped(base, factor, exponent, longest):
    seconds = base * factor ** min(max(exponent, 0), _LONGEST_EXPONENT)
    return timedelta(seconds=min(seconds, longest.total_seconds()))


def retry_backoff(attempt_number):
    """Wait before the automatic retry after attempt ``n`` failed: base × 4^(n−1)
    (default base 5 minutes: 5 min, 20 min), at most a day."""
    base = float(setting("PAYOUT_RETRY_BACKOFF_SECONDS"))
    return _capped(base, 4, attempt_number - 1, LONGEST_RETRY_WAIT)


def resend_backoff(requests_made):
    """Wait before asking RazorpayX again with the same key after no/5xx answer: base ×
    2^(requests−1), at most an hour, however many requests were made."""
    base = float(setting("PAYOUT_RESEND_BACKOFF_SECONDS"))
    return _capped(base, 2, requests_made - 1, LONGEST_RESEND_WAIT)


# --- reading ------------------------------------------------------------------------------


def tds_section(payout):
    """The section a payout's TDS was deducted under: the one stored with it, else (a row
    older than that column) its financial year's rule's. Never a literal: POLICY.md makes
    the section a setting per year."""
    return payout.tds_section or policy().tds_rule_for(payout.financial_year).section


def tds_rule(payout):
    """The TDS rule a payout was deducted under: the rate and threshold stored with it when
    it was made (``create.tds_for_next``), and its section (``tds_section``). Never today's
    rule: a rate changed since does not change what this payout was."""
    return TdsRule(
        from_fy=payout.financial_year,
        rate_bps=payout.tds_rate_bps,
        threshold=payout.tds_threshold,
        section=tds_section(payout),
    )


def tds_note(payout, *, yours=False):
    """Why a payout deducted more than the rule's rate on its own gross, or None: the
    year's TDS catch-up (``domain.payouts.catch_up_note``) under the rule it was deducted
    under, and section 206AA's rate for want of a PAN (``domain.payouts.no_pan_note``:
    to the provider, "Add your PAN …" while none is on file, else that later payouts
    deduct the rule's rate). The admin's payout page (``yours=False``) and the provider's
    earnings page and statement (``yours=True``, through ``reports.payout_tds_note``) both
    read it: they said it by today's rule, so after a rate change an ordinary 10% payout
    read "TDS catch-up … 5%"."""
    higher = payout.tds_higher_section
    catch_up = catch_up_note(
        payout.gross,
        payout.tds,
        tds_rule(payout),
        payout.financial_year,
        yours=yours,
        higher_section=higher,
    )
    if not (higher and payout.tds):
        return catch_up
    # What a PAN changes is said of today's rule: it is the later payouts'.
    pan_rate = policy().tds_rule_for(financial_year(utcnow())).rate_bps
    pan_now = payee_key(payout.provider.pan) is not None if yours else False
    no_pan = no_pan_note(payout.tds_rate_bps, pan_rate, yours=yours, pan_now=pan_now)
    return join_notes(catch_up, no_pan)


def payable_balance(provider_id):
    return balance(chart.provider_payable(provider_id))


def payable_column(provider_id_column):
    """``payable_balance`` of the provider whose id is ``provider_id_column``, as a column
    (or condition) of another statement: no query of its own per provider."""
    return balance_column(
        owned_code(chart.PROVIDER_PAYABLE, provider_id_column),
        chart.PREFIXES[chart.PROVIDER_PAYABLE][0],
    )


def current_fund_account(provider_id):
    return db.session.scalar(
        sa.select(m.FundAccount)
        .where(m.FundAccount.provider_id == provider_id, m.FundAccount.current.is_(True))
        .order_by(m.FundAccount.id.desc())
        .limit(1)
    )


# How many of a provider's accounts (newest first) the payout rule reads: far more than
# any real history of changes, and a bound on what a page of providers loads.
ACCOUNTS_READ = 50


def payout_fund_account(provider_id):
    """The account payouts go to: the current one once it is validated; until then (a new
    account pending, or failed) the last one that was validated while it was current, so a
    change of account never stops payouts to the account that works (review finding).
    An account replaced before its validation came back is never used: the provider gave
    it up, and an active account is not proof it is theirs. None: nothing validated."""
    rows = db.session.scalars(
        sa.select(m.FundAccount)
        .where(m.FundAccount.provider_id == provider_id)
        .order_by(m.FundAccount.id.desc())
        .limit(ACCOUNTS_READ)
    ).all()
    return payout_account_among(rows)


def payout_account_among(rows):
    """``payout_fund_account``'s rule over one provider's accounts, newest first: the one
    rule, for a reader that loads many providers' accounts at once (``fund_accounts_of``)."""
    replaced_at = None  # when the account after this one was saved
    for row in rows:
        # A validated row without its time (written before validated_at was) can be the
        # current one, never proof it was validated before it was replaced.
        validated = row.validated_at
        if row.can_pay and (
            replaced_at is None or (validated is not None and validated <= replaced_at)
        ):
            return row
        replaced_at = row.created_at
    return None


def pays_earlier_account(current, payout_account):
    """Whether payouts go to an earlier account than the ``current`` one (it is pending or
    failed validation, and ``payout_account``, the rule's answer, was validated before it):
    what the bank and earnings pages say ("Payouts go to … until the new account is
    validated."), computed once for both."""
    return current is not None and payout_account is not None and payout_account.id != current.id


def fund_accounts_of(provider_ids):
    """``{provider id: its accounts, newest first}`` (the newest ``ACCOUNTS_READ`` each,
    as ``payout_fund_account`` reads them) for many providers, in one statement: a page of
    providers says where each one's payouts go without a query per row."""
    if not provider_ids:
        return {}
    newest = (
        sa.select(
            m.FundAccount.id,
            sa.func.row_number()
            .over(partition_by=m.FundAccount.provider_id, order_by=m.FundAccount.id.desc())
            .label("n"),
        )
        .where(m.FundAccount.provider_id.in_(provider_ids))
        .subquery()
    )
    rows = db.session.scalars(
        sa.select(m.FundAccount)
        .join(newest, newest.c.id == m.FundAccount.id)
        .where(newest.c.n <= ACCOUNTS_READ)
        .order_by(m.FundAccount.provider_id, m.FundAccount.id.desc())
    ).all()
    found = {provider_id: [] for provider_id in provider_ids}
    for row in rows:
        found[row.provider_id].append(row)
    return found


def _for_update(query):
    if db.session.get_bind().dialect.name == "postgresql":
        return query.with_for_update()
    return query


def lock_provider(provider_id):
    """The provider's payout lock, then the provider read afresh: PostgreSQL's
    transaction-scoped advisory lock of its own (``payout-provider:<id>``), not the
    ``providers`` row. A fund account's save holds it through its RazorpayX calls (seconds,
    retries): a row lock held that long queued a patient's hold with the doctor (its
    booking's foreign key) and, behind the catalog's lock order, every catalog edit of the
    clinic (review finding). Payouts of one provider still go one at a time."""
    time_lock.lock_subjects([f"payout-provider:{int(provider_id)}"])
    return db.session.get(Provider, provider_id, populate_existing=True)


# --- the payee: whose payouts count together for TDS ---------------------------------------


def payee_key(pan):
    """A PAN as the deductee it names, or None: ``tax_ids.normal_pan``, as :data:`PAYEE_KEY`
    says it in SQL. The two agree because the column holds a PAN only as ``clean_pan``
    makes it (``catalog.models.PAN_SHAPE``, a check constraint): ``strip`` takes any
    whitespace and ``trim`` only spaces, so a tab kept in the column would lock one payee
    and count another (tests/payouts/test_pan_keys_agree.py)."""
    return tax_ids.normal_pan(pan)


PAYEE_KEY = sa.func.nullif(sa.func.upper(sa.func.trim(Provider.pan)), "")


def has_pan(provider_id):
    """Whether the provider has a PAN on file now (:data:`PAYEE_KEY`: not blank): without
    one, TDS past the threshold is section 206AA's rate. A payout reads it under its own
    lock instead (``create._create``); this is for what a page previews."""
    key = db.session.scalar(sa.select(PAYEE_KEY).where(Provider.id == provider_id))
    return key is not None


def same_payee(provider_id):
    """The condition on ``Payout`` of the payouts that count with ``provider_id``'s for TDS
    (decision: docs/decisions.md, "TDS per PAN"): those of every profile carrying the same
    PAN *now* (a doctor who is also on the portal as their own lab is one deductee in Form
    26Q), or the profile's own while it has no PAN. A subquery: no statement of its own."""
    own_pan = sa.select(PAYEE_KEY).where(Provider.id == provider_id).scalar_subquery()
    return sa.or_(
        m.Payout.provider_id == provider_id,
        m.Payout.provider_id.in_(sa.select(Provider.id).where(own_pan == PAYEE_KEY)),
    )


def lock_payee(provider):
    """The payee's payout lock, taken right after the provider's (:func:`lock_provider`)
    by whatever makes a payout or confirms its TDS: PostgreSQL's transaction-scoped
    advisory lock ``payout-pan:<PAN>`` while the profile has a PAN on file (none
    without: its count is its own, and the provider's lock guards it). TDS is counted
    per PAN (:func:`same_payee`), so two profiles of one PAN paid at once take turns: the
    second replays the year with the first's payout in it. Lock order: the provider's
    payout lock, then this, and nothing holding this takes another provider's payout lock
    (a payout is one provider's unit of work), so no two wait for each other in a circle.
    A no-op on SQLite (the embedded mode's unit of work holds the process lock)."""
    key = payee_key(provider.pan) if provider is not None else None
    if key is not None:
        time_lock.lock_subjects([_payee_subject(key)])


def _payee_subject(key):
    return f"payout-pan:{key}"


def lock_pan_write(provider_id, pan):
    """Before ``provider_id``'s PAN is written (``pan``, as typed; None: cleared), in a
    payout's lock order: the provider's payout lock (:func:`lock_provider`), then the payee
    locks of the PAN on file and of ``pan``, in one statement (sorted: two writes moving
    PANs between them never wait in a circle; a payout holds one). A payout of the profile
    being made commits first: it locked the payee by the PAN it read, and its replay
    (:func:`same_payee`) reads the PAN again, so a PAN written in between let two payouts
    to one PAN each miss the other (review r3_races). So does one of another profile of
    either PAN ("Pay now" checks the net it showed, then pays, under the payee's lock).
    A payout started meanwhile waits, and reads the new PAN. The PAN on file is read
    under the provider's lock: every PAN write takes it (``catalog.pan.wait_for_payouts``).
    Nothing holding these takes the catalog's locks, which the write takes after them."""
    provider = lock_provider(provider_id)
    keys = {payee_key(pan), payee_key(provider.pan) if provider is not None else None}
    time_lock.lock_subjects([_payee_subject(key) for key in keys if key is not None])


def lock_payout(payout_id):
    return db.session.scalar(
        _for_update(
            sa.select(m.Payout)
            .where(m.Payout.id == payout_id)
            .execution_options(populate_existing=True)
        )
    )


def lock_fund_account(fund_account_id):
    """The fund account, locked and read afresh: what another session committed while
    this one waited is what it sees (a poll and the webhook applying one validation)."""
    return db.session.scalar(
        _for_update(
            sa.select(m.FundAccount)
            .where(m.FundAccount.id == fund_account_id)
            .execution_options(populate_existing=True)
        )
    )


def current_attempt(payout):
    return db.session.scalar(
        sa.select(m.PayoutAttempt)
        .where(m.PayoutAttempt.payout_id == payout.id)
        .order_by(m.PayoutAttempt.number.desc())
        .limit(1)
        .execution_options(populate_existing=True)
    )


def new_key():
    return str(uuid.uuid4())  # 36 characters: RazorpayX accepts 4–36


def snapshot(payout):
    return {
        "status": payout.status,
        "attempts": payout.attempts,
        "gross": payout.gross,
        "tds": payout.tds,
        "net": payout.net,
        "held": payout.held,
        "razorpay_payout_id": payout.razorpay_payout_id,
        "returned": payout.returned,
    }
