"""Reading Razorpay's settlements into ours and posting each one to the ledger.

``ingest(since, until)`` lists the gateway's settlements created in the window (count/skip
pages), and for each one it has not stored yet reads the recon rows of the settlement's
day (``/settlements/recon/combined``), keeps the rows of that settlement and, in one unit
of work per settlement, stores it with its rows and posts::

    Dr bank            amount          (what reached the bank)
    Dr gateway_fees    fees − tax      (Razorpay's fee)
    Dr gst_input       tax             (GST on the fee, input tax credit)
    Cr gateway_clearing amount + fees  (what left the gateway's hold for us)

with the key ``settlement:<razorpay id>``: re-running a window stores and posts nothing
twice (the unique settlement id and the ledger's idempotency key both say so). The gateway
is called before any transaction is opened, so no lock is held over the network.

Razorpay's gross (``amount + fees``) is payments − refunds − transfers ± adjustments, while
gateway clearing held only the payments and refunds. So once a settlement's recon rows are
complete (when stored, or when late rows complete it) the signed total of its other rows
(``checks.adjusted``: transfers, chargebacks, amounts credited back) is posted once, key
``settlement:<razorpay id>:adjustments``::

    Dr gateway_adjustments  Cr gateway_clearing   what they took (a credit: the reverse)

and clearing is zero for a settled period. A debit among them (money Razorpay kept, a
chargeback; the portal makes no transfers) raises a HIGH admin alert, once.

Each recon row is signed by its own ``credit`` and ``debit`` (``checks.signed_amount``).
Razorpay's recon rows may come late: a stored settlement whose rows do not reach its gross
yet (``checks.is_complete``, kept as ``Settlement.rows_complete``) has its day read again
by every later ingest that lists it, and the rows it lacks are added (the header's
posting, keyed, stays as it was; the adjustments are posted when the rows complete).
Once the rows are complete and the header's fees or tax still differ from theirs, the
settlement is flagged once: an audit row ``settlement.rows_differ`` and a HIGH admin
alert. One still incomplete when it leaves the lookback is flagged once the
same way by the daily job (``flag_left_incomplete``): audit ``settlement.left_incomplete``.
A day with more recon rows than ``MAX_PAGES`` pages hold is refused whole, never stored
cut."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from portal import events
from portal.audit.service import record
from portal.config import setting
from portal.db import savepoint, unit_of_work, utcnow
from portal.domain.rates import format_inr
from portal.domain.timezone import CLINIC_TZ
from portal.extensions import db
from portal.gateway import get_payin
from portal.gateway.errors import GatewayError
from portal.ledger import accounts as chart
from portal.ledger.check import (
    ADJUSTMENTS_SUFFIX,
    SETTLEMENT_ADJUSTMENTS_KIND,
    SETTLEMENT_KEY,
    SETTLEMENT_KIND,
)
from portal.ledger.models import LedgerTransaction
from portal.ledger.service import LedgerError, post

from . import checks
from .models import Settlement, SettlementItem

PAGE = 100
RECON_PAGE = 1000  # Razorpay's largest page of recon rows
# 10,000 settlements in one window, 100,000 recon rows in one day: beyond the clinic's
# days. More is refused (SettlementError), never read cut.
MAX_PAGES = 100
SETTLEMENT_MISMATCH = "SETTLEMENT_MISMATCH"
SETTLEMENT_ADJUSTMENT = "SETTLEMENT_ADJUSTMENT"


class SettlementError(Exception):
    """The gateway could not be read (or answered nonsense); nothing was half-stored."""

    def __init__(self, message):
        super().__init__(message)
        self.message = message


log = logging.getLogger("portal.settlements")


@dataclass
class IngestResult:
    seen: int = 0
    stored: list[str] = field(default_factory=list)
    # (settlement id, why) for one that could not be stored; the others still are, and the
    # next run tries it again (nothing of it was written)
    refused: list[tuple[str, str]] = field(default_factory=list)
    # stored earlier without some of their recon rows (Razorpay's report was late); the
    # rows were added this time
    completed: list[str] = field(default_factory=list)

    @property
    def new(self):
        return len(self.stored)


def _unix(dt):
    return int(dt.timestamp())


def _from_unix(value):
    return datetime.fromtimestamp(int(value), UTC)


def _int(value, name):
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            return int(str(value))
        except (TypeError, ValueError):
            raise SettlementError(f"the gateway sent a {name} that is not a number") from None
    return value


def _list_settlements(payin, since, until):
    items, skip = [], 0
    for page in range(MAX_PAGES + 1):
        chunk = payin.fetch_settlements(
            **{"from": _unix(since), "to": _unix(until), "count": PAGE, "skip": skip}
        )
        if not isinstance(chunk, list):
            raise SettlementError("the gateway's settlement list is not a list")
        if page == MAX_PAGES and chunk:  # a page past the limit, the limit's all full
            raise SettlementError(
                f"Razorpay lists more than {MAX_PAGES} pages of {PAGE} settlements "
                "in the window; fetch fewer days"
            )
        items.extend(chunk)
        if len(chunk) < PAGE:
            break
        skip += PAGE
    return items


def _recon_rows(payin, day, cache):
    """Every recon row of the settlements made on ``day``, or SettlementError when the
    day holds more than ``MAX_PAGES`` full pages (kept for the day: its every settlement
    is refused, nothing of them stored without the rows past the limit)."""
    if day not in cache:
        rows, skip = [], 0
        for page in range(MAX_PAGES + 1):
            chunk = payin.settlement_recon(
                day.year, day.month, day.day, count=RECON_PAGE, skip=skip
            )
            if not isinstance(chunk, list):
                raise SettlementError("the gateway's recon report is not a list")
            if page == MAX_PAGES and chunk:
                cache[day] = SettlementError(
                    f"Razorpay's recon report of {day.isoformat()} has more than "
                    f"{MAX_PAGES} pages of {RECON_PAGE} rows; none of that day is stored"
                )
                break
            rows.extend(chunk)
            if len(chunk) < RECON_PAGE:
                cache[day] = rows
                break
            skip += RECON_PAGE
    if isinstance(cache[day], SettlementError):
        raise cache[day]
    return cache[day]


def _once_each(rows):
    """A settlement's recon rows, each entity once. The report is read page by page
    (count/skip), so a row can come twice, and two items of one entity would break the
    unique index and refuse the settlement run after run. Copies that agree are one row;
    copies that disagree refuse it (SettlementError): which one is true cannot be told."""
    kept = {}
    for row in rows:
        entity = row.get("entity_id")
        if entity is None:  # malformed: ``_item`` refuses it
            kept[id(row)] = row
        elif str(entity) not in kept:
            kept[str(entity)] = row
        elif kept[str(entity)] != row:
            raise SettlementError(
                f"Razorpay's recon report lists {entity} twice with different figures"
            )
    return list(kept.values())


def _stored(razorpay_ids):
    """Razorpay settlement id -> (id, settled_at, rows_complete) of ours, for those stored:
    plain values, which a unit of work's commit does not expire (reading them again would
    open a transaction before the next gateway call)."""
    if not razorpay_ids:
        return {}
    rows = db.session.execute(
        sa.select(
            Settlement.razorpay_settlement_id,
            Settlement.id,
            Settlement.settled_at,
            Settlement.rows_complete,
        ).where(Settlement.razorpay_settlement_id.in_(sorted(razorpay_ids)))
    )
    return {rid: row for rid, *row in rows}


def lookback_start(until):
    """Where the window read by default (the daily job's) starts, for a read at ``until``."""
    return until - timedelta(days=setting("SETTLEMENT_LOOKBACK_DAYS"))


def ingest(since=None, until=None, actor=None) -> IngestResult:
    """Store and post every settlement the gateway made in ``[since, until]`` (default:
    the last ``SETTLEMENT_LOOKBACK_DAYS`` days). Raises :class:`SettlementError` when the
    gateway cannot be read; settlements stored before the failure stay stored (each is
    its own unit of work), none is half-stored."""
    until = until or utcnow()
    since = since or lookback_start(until)
    payin = get_payin()
    result = IngestResult()
    try:
        listed = _list_settlements(payin, since, until)
        known = _stored({str(s.get("id")) for s in listed if isinstance(s, dict)})
        cache = {}
        for raw in sorted(listed, key=lambda s: (s.get("created_at") or 0, str(s.get("id")))):
            result.seen += 1
            if not isinstance(raw, dict) or not raw.get("id"):
                raise SettlementError("the gateway sent a settlement without an id")
            stored = known.get(raw["id"])
            if stored is not None:
                stored_id, settled_at, rows_complete = stored
                if rows_complete:
                    continue
                # Its rows were incomplete when stored: read its day again (below).
            elif raw.get("status") != "processed":
                continue
            else:
                settled_at = _from_unix(_int(raw.get("created_at"), "settlement time"))
            day = settled_at.astimezone(CLINIC_TZ).date()
            try:
                rows = _once_each(
                    [
                        r
                        for r in _recon_rows(payin, day, cache)
                        if isinstance(r, dict) and r.get("settlement_id") == raw["id"]
                    ]
                )
                if stored is not None:
                    if _add_late_rows(stored_id, rows, actor):
                        result.completed.append(raw["id"])
                elif _store(raw, settled_at, rows, actor):
                    result.stored.append(raw["id"])
            except SettlementError as exc:  # this day's report cannot be read whole
                log.warning("settlement %s not stored: %s", raw["id"], exc.message)
                result.refused.append((raw["id"], exc.message))
            except (IntegrityError, LedgerError, KeyError, TypeError, ValueError) as exc:
                # One malformed settlement (a recon row without its entity, one already
                # stored under another settlement, nothing to post) must not hold up every
                # later one: this loop goes oldest first, every day.
                log.warning("settlement %s not stored: %r", raw["id"], exc)
                result.refused.append((raw["id"], f"{type(exc).__name__}: {exc}"[:300]))
    except GatewayError as exc:
        raise SettlementError(f"Razorpay could not be read: {exc}") from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise SettlementError(f"Razorpay answered something unexpected ({exc})") from exc
    return result


def _store(raw, settled_at, rows, actor) -> bool:
    amount = _int(raw.get("amount"), "settlement amount")
    fees = _int(raw.get("fees") or 0, "settlement fee")
    tax = _int(raw.get("tax") or 0, "settlement tax")
    with unit_of_work():
        try:
            with savepoint(db.session):
                settlement = Settlement(
                    razorpay_settlement_id=raw["id"],
                    status=str(raw.get("status")),
                    amount=amount,
                    fees=fees,
                    tax=tax,
                    utr=(str(raw["utr"])[:40] if raw.get("utr") else None),
                    settled_at=settled_at,
                )
                db.session.add(settlement)
                db.session.flush()
        except IntegrityError:
            return False  # stored meanwhile by another run (the job and "fetch now")
        items = [_item(row) for row in rows]
        settlement.items.extend(items)
        txn = post(
            SETTLEMENT_KIND,
            [
                (chart.BANK, amount),
                (chart.GATEWAY_FEES, fees - tax),
                (chart.GST_INPUT, tax),
                (chart.GATEWAY_CLEARING, -(amount + fees)),
            ],
            reference=("settlement", settlement.id),
            idempotency_key=f"{SETTLEMENT_KEY}{raw['id']}",
            memo=f"Razorpay settlement {raw['id']} (UTR {settlement.utr or '—'})",
        )
        settlement.ledger_transaction_id = txn.id
        record(
            actor,
            "settlement.ingested",
            "settlement",
            settlement.id,
            after={
                "razorpay_settlement_id": raw["id"],
                "amount": amount,
                "fees": fees,
                "tax": tax,
                "items": len(rows),
            },
        )
        _check(settlement, items, actor)
    return True


def _item(row):
    created = row.get("created_at")
    credit, debit = row.get("credit"), row.get("debit")
    return SettlementItem(
        entity_id=str(row["entity_id"]),
        entity_type=str(row.get("type") or "payment")[:16],
        amount=_int(row.get("amount") or 0, "recon amount"),
        credit=None if credit is None else _int(credit, "recon credit"),
        debit=None if debit is None else _int(debit, "recon debit"),
        fee=_int(row.get("fee") or 0, "recon fee"),
        tax=_int(row.get("tax") or 0, "recon tax"),
        payment_entity_id=row.get("payment_id"),
        order_id=row.get("order_id"),
        method=(str(row["method"])[:32] if row.get("method") else None),
        created_at=_from_unix(created) if created else None,
    )


def _totals(items):
    return checks.totals_of((i.signed_amount, i.fee, i.tax) for i in items)


def _add_late_rows(settlement_id, rows, actor) -> bool:
    """Add the recon rows a stored settlement lacks (read again from its day's report).
    Its ledger posting is the header's and stays as it was; only the rows are added."""
    with unit_of_work():
        # Locked: the job and "fetch now" add the same rows (and flag) once.
        settlement = db.session.scalar(
            sa.select(Settlement).where(Settlement.id == settlement_id).with_for_update()
        )
        have = list(
            db.session.scalars(
                sa.select(SettlementItem).where(SettlementItem.settlement_id == settlement_id)
            )
        )
        known = {i.entity_id for i in have}
        added = [_item(r) for r in rows if str(r["entity_id"]) not in known]
        if not added:
            return False
        for item in added:
            item.settlement_id = settlement.id
            db.session.add(item)
        db.session.flush()
        record(
            actor,
            "settlement.items_added",
            "settlement",
            settlement.id,
            after={
                "razorpay_settlement_id": settlement.razorpay_settlement_id,
                "added": sorted(i.entity_id for i in added)[:50],
                "count": len(added),
            },
        )
        _check(settlement, have + added, actor)
    return True


def _check(settlement, items, actor):
    """Keep whether a settlement's rows (``items``, all of them) are complete; once they
    are, post its transfers and adjustments, and flag it if they do not add up to its
    header: an audit row and a HIGH admin alert. Called in the unit of work that stored its
    rows or completed them; a complete settlement is never read again, so this happens
    once. Incomplete rows are not flagged: the next ingest reads them again, and the daily
    job flags them if they leave the lookback so."""
    totals = _totals(items)
    settlement.rows_complete = checks.is_complete(settlement.amount, settlement.fees, totals)
    if not settlement.rows_complete:
        return
    _post_adjustments(settlement, items, actor)
    diffs = checks.differences(settlement.amount, settlement.fees, settlement.tax, totals)
    if not diffs:
        return
    _flag(
        settlement,
        diffs,
        actor,
        action="settlement.rows_differ",
        title="A settlement does not add up to its payments",
        dedupe_key=f"settlement-mismatch:{settlement.id}",
    )


def adjustments_key(razorpay_settlement_id):
    """The ledger key of a settlement's transfers and adjustments."""
    return f"{SETTLEMENT_KEY}{razorpay_settlement_id}{ADJUSTMENTS_SUFFIX}"


def _post_adjustments(settlement, items, actor):
    """Post the signed total of a complete settlement's transfers and adjustments between
    gateway clearing and ``gateway_adjustments`` (key ``settlement:<id>:adjustments``),
    and raise a HIGH alert, once per settlement, if any of them is a debit."""
    rows = [i for i in items if checks.is_adjustment(i.entity_type)]
    total = checks.adjusted((i.entity_type, i.signed_amount) for i in rows)
    rid = settlement.razorpay_settlement_id
    if total:  # rows netting to nothing post nothing (the ledger has no zero lines)
        post(
            SETTLEMENT_ADJUSTMENTS_KIND,
            [(chart.GATEWAY_ADJUSTMENTS, -total), (chart.GATEWAY_CLEARING, total)],
            reference=("settlement", settlement.id),
            idempotency_key=adjustments_key(rid),
            memo=f"Razorpay settlement {rid}: transfers and adjustments ({len(rows)} rows)",
        )
        record(
            actor,
            "settlement.adjustments_posted",
            "settlement",
            settlement.id,
            after={
                "razorpay_settlement_id": rid,
                "adjusted": total,
                "rows": sorted(i.entity_id for i in rows)[:50],
            },
        )
    debits = [i for i in rows if i.signed_amount < 0]
    if not debits:
        return
    taken = -sum(i.signed_amount for i in debits)
    listed = ", ".join(
        f"{i.entity_id} ({i.entity_type}) {format_inr(-i.signed_amount, always_show_paise=True)}"
        for i in sorted(debits, key=lambda i: i.entity_id)[:10]
    ) + (", …" if len(debits) > 10 else "")
    events.settlement_alert.send(
        "settlements",
        severity="HIGH",
        kind=SETTLEMENT_ADJUSTMENT,
        title="Razorpay kept money from a settlement",
        message=f"Razorpay settlement {rid} took {format_inr(taken, always_show_paise=True)} "
        f"besides its payments, refunds and fees: {listed}. A chargeback or dispute debit "
        "(or a transfer, which the portal never makes): check it in Razorpay's dashboard, "
        "a dispute may still be contested. Posted to gateway_adjustments.",
        link=f"/admin/settlements/{settlement.id}",
        dedupe_key=f"settlement-adjustment:{settlement.id}",
    )


def post_stored_adjustments(actor=None) -> list[str]:
    """Post the transfers and adjustments of the settlements stored complete before they
    were posted (``flask settlements post-adjustments``, once after the upgrade that
    brought the posting: a complete settlement is never read again). Each in its own unit
    of work, the settlement locked; one whose key is posted already is left (so running it
    again posts and raises nothing). Returns the Razorpay ids posted."""
    ids = db.session.scalars(
        sa.select(Settlement.id)
        .where(
            Settlement.rows_complete.is_(True),
            sa.exists().where(
                SettlementItem.settlement_id == Settlement.id,
                SettlementItem.entity_type.not_in((checks.PAYMENT, checks.REFUND)),
            ),
        )
        .order_by(Settlement.settled_at, Settlement.id)
    ).all()
    posted = []
    for settlement_id in ids:
        with unit_of_work():
            settlement = db.session.scalar(
                sa.select(Settlement).where(Settlement.id == settlement_id).with_for_update()
            )
            key = adjustments_key(settlement.razorpay_settlement_id)
            if db.session.scalar(
                sa.select(LedgerTransaction.id).where(LedgerTransaction.idempotency_key == key)
            ):
                continue
            items = db.session.scalars(
                sa.select(SettlementItem).where(SettlementItem.settlement_id == settlement.id)
            ).all()
            _post_adjustments(settlement, items, actor)  # its alert is raised once
            if checks.adjusted((i.entity_type, i.signed_amount) for i in items):
                posted.append(settlement.razorpay_settlement_id)
    return posted


def flag_left_incomplete(before, actor=None) -> list[str]:
    """Flag, once each, the stored settlements made before ``before`` whose rows never
    reached their gross: the daily job calls it with the start of the window it has just
    read, so each of these has been read for the last time. An audit row
    ``settlement.left_incomplete`` and a HIGH admin alert, as a settlement whose rows
    differ; ``left_incomplete_at`` marks it for the settlements page. Each in its own unit
    of work, the settlement locked (two jobs at once flag it once); nothing is read from
    the gateway. Returns the Razorpay ids flagged."""
    ids = db.session.scalars(
        sa.select(Settlement.id)
        .where(
            Settlement.rows_complete.is_(False),
            Settlement.left_incomplete_at.is_(None),
            Settlement.settled_at < before,
        )
        .order_by(Settlement.settled_at, Settlement.id)
    ).all()
    flagged = []
    for settlement_id in ids:
        with unit_of_work():
            settlement = db.session.scalar(
                sa.select(Settlement).where(Settlement.id == settlement_id).with_for_update()
            )
            if settlement.rows_complete or settlement.left_incomplete_at is not None:
                continue  # completed or flagged meanwhile
            settlement.left_incomplete_at = utcnow()
            items = db.session.scalars(
                sa.select(SettlementItem).where(SettlementItem.settlement_id == settlement.id)
            ).all()
            diffs = checks.differences(
                settlement.amount, settlement.fees, settlement.tax, _totals(items)
            )
            _flag(
                settlement,
                diffs,
                actor,
                action="settlement.left_incomplete",
                title="A settlement's recon rows never added up",
                dedupe_key=f"settlement-incomplete:{settlement.id}",
                more=(
                    f"It left the {setting('SETTLEMENT_LOOKBACK_DAYS')}-day lookback "
                    "incomplete and is no longer read."
                ),
            )
            flagged.append(settlement.razorpay_settlement_id)
    return flagged


def _flag(settlement, diffs, actor, *, action, title, dedupe_key, more=None):
    """The audit row and the HIGH admin alert of a settlement that does not add up."""
    note = checks.describe(diffs)
    record(
        actor,
        action,
        "settlement",
        settlement.id,
        after={"razorpay_settlement_id": settlement.razorpay_settlement_id, **diffs},
    )
    log.warning("settlement %s: %s", settlement.razorpay_settlement_id, note)
    events.settlement_alert.send(
        "settlements",
        severity="HIGH",
        kind=SETTLEMENT_MISMATCH,
        title=title,
        message=f"Razorpay settlement {settlement.razorpay_settlement_id}: {note}. "
        + (f"{more} " if more else "")
        + "The ledger posted the settlement as the bank saw it.",
        link=f"/admin/settlements/{settlement.id}",
        dedupe_key=dedupe_key,
    )
