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
is called before any transaction is opened, so no lock is held over the network. A day
with more recon rows than ``MAX_PAGES`` pages hold is refused whole, never stored cut."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from portal.audit.service import record
from portal.config import setting
from portal.db import savepoint, unit_of_work, utcnow
from portal.domain.timezone import CLINIC_TZ
from portal.extensions import db
from portal.gateway import get_payin
from portal.gateway.errors import GatewayError
from portal.ledger import accounts as chart
from portal.ledger.check import SETTLEMENT_KIND
from portal.ledger.service import LedgerError, post

from .models import Settlement, SettlementItem

PAGE = 100
RECON_PAGE = 1000  # Razorpay's largest page of recon rows
# 10,000 settlements in one window, 100,000 recon rows in one day: beyond the clinic's
# days. More is refused (SettlementError), never read cut.
MAX_PAGES = 100


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


def ingest(since=None, until=None, actor=None) -> IngestResult:
    """Store and post every settlement the gateway made in ``[since, until]`` (default:
    the last ``SETTLEMENT_LOOKBACK_DAYS`` days). Raises :class:`SettlementError` when the
    gateway cannot be read; settlements stored before the failure stay stored (each is
    its own unit of work), none is half-stored."""
    until = until or utcnow()
    since = since or until - timedelta(days=setting("SETTLEMENT_LOOKBACK_DAYS"))
    payin = get_payin()
    result = IngestResult()
    try:
        listed = _list_settlements(payin, since, until)
        known = set(
            db.session.scalars(
                sa.select(Settlement.razorpay_settlement_id).where(
                    Settlement.razorpay_settlement_id.in_(
                        [str(s.get("id")) for s in listed if isinstance(s, dict)]
                    )
                )
            )
        )
        cache = {}
        for raw in sorted(listed, key=lambda s: (s.get("created_at") or 0, str(s.get("id")))):
            result.seen += 1
            if not isinstance(raw, dict) or not raw.get("id"):
                raise SettlementError("the gateway sent a settlement without an id")
            if raw["id"] in known or raw.get("status") != "processed":
                continue
            settled_at = _from_unix(_int(raw.get("created_at"), "settlement time"))
            day = settled_at.astimezone(CLINIC_TZ).date()
            try:
                rows = [
                    r
                    for r in _recon_rows(payin, day, cache)
                    if isinstance(r, dict) and r.get("settlement_id") == raw["id"]
                ]
                if _store(raw, settled_at, rows, actor):
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
        for row in rows:
            created = row.get("created_at")
            settlement.items.append(
                SettlementItem(
                    entity_id=str(row["entity_id"]),
                    entity_type=str(row.get("type") or "payment"),
                    amount=_int(row.get("amount") or 0, "recon amount"),
                    fee=_int(row.get("fee") or 0, "recon fee"),
                    tax=_int(row.get("tax") or 0, "recon tax"),
                    payment_entity_id=row.get("payment_id"),
                    order_id=row.get("order_id"),
                    method=(str(row["method"])[:32] if row.get("method") else None),
                    created_at=_from_unix(created) if created else None,
                )
            )
        txn = post(
            SETTLEMENT_KIND,
            [
                (chart.BANK, amount),
                (chart.GATEWAY_FEES, fees - tax),
                (chart.GST_INPUT, tax),
                (chart.GATEWAY_CLEARING, -(amount + fees)),
            ],
            reference=("settlement", settlement.id),
            idempotency_key=f"settlement:{raw['id']}",
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
    return True
