"""The sandbox's memory: Razorpay-shaped entities and how they change over time.

One store per sandbox app, guarded by one lock. Entities are plain dicts shaped like
Razorpay's JSON, so the HTTP layer returns copies of them as they are. Anything that
happens "later" at Razorpay (refunds settling, payouts moving, validations finishing,
links expiring) is a scheduled step that ``tick()`` runs once its time has come; time is
``clock() + offset`` so tests can jump ahead with ``advance()``.

The store is one class composed of a mixin per resource family (``orders``, ``links``,
``refunds``, ``razorpayx``, ``settlements``); this module holds its state, clock, schedule
and shared helpers.

The mixins' contract: the state is the attributes ``reset()`` assigns (``self.orders``,
``self.payments`` … plain dicts of plain dicts, lists, numbers), read and changed only
inside ``with self.lock:``. Keep it so: ``shared.py`` swaps the lock for one that loads
that state from the sandbox's database when another process changed it and writes it back
when a block changed it (SANDBOX_DATABASE_URL), so a new table added in ``reset()`` is
shared between processes with no change there; state kept anywhere else is per process."""

import copy
import random
import string
import threading
import time

from portal.gateway.sandbox.common import DEFAULT_DELAYS, DEFAULT_OUTCOMES, ApiError, not_found
from portal.gateway.sandbox.links import LinksMixin
from portal.gateway.sandbox.orders import OrdersMixin
from portal.gateway.sandbox.razorpayx import RazorpayXMixin
from portal.gateway.sandbox.refunds import RefundsMixin
from portal.gateway.sandbox.settlements import SettlementsMixin

_ALPHABET = string.ascii_letters + string.digits


class SandboxStore(OrdersMixin, LinksMixin, RefundsMixin, RazorpayXMixin, SettlementsMixin):
    def __init__(
        self,
        *,
        key_id,
        key_secret,
        account_id="acc_Sandbox0000001",
        x_account_number="2323230000000000",
        clock=time.time,
        delays=None,
        seed=None,
        emit=None,
        faults=None,
    ):
        self.key_id = key_id
        self.key_secret = key_secret
        self.account_id = account_id
        self.x_account_number = x_account_number
        self.clock = clock
        self.delays = {**DEFAULT_DELAYS, **(delays or {})}
        self.faults = faults
        self.lock = threading.RLock()
        self._random = random.Random(seed)
        self._emit = emit or (lambda source, event, payload: None)
        self.reset()

    def reset(self):
        with self.lock:
            # The clock too: a test's advance() left the next test's gateway days ahead of
            # the portal (its day settled nothing, its payments were too new to reconcile).
            self.offset = 0.0
            self.orders, self.payments, self.links, self.refunds = {}, {}, {}, {}
            self.contacts, self.fund_accounts, self.validations = {}, {}, {}
            self.payouts, self.settlements = {}, {}
            self.notifications = []  # what Razorpay would have sent by SMS/email
            self._schedule = []  # [due, seq, action, entity_id]
            self._step_time = None
            self._seq = 0
            self._refund_keys = {}  # X-Refund-Idempotency -> (fingerprint, id)
            self._payout_keys = {}  # X-Payout-Idempotency -> (fingerprint, id)
            self._settled = {}  # payment/refund id -> settlement id
            self._captured_at = {}  # payment id -> its capture (settled by its day)
            self._outcome = {}  # entity id -> forced outcome
            # The reconciliation faults about the records (faults.RECORD_FAULTS), kept here
            # so that every process serving this sandbox answers with them.
            self.record_faults = {"alter": {}, "hide": [], "duplicate": [], "unsettle": []}

    # --- time ---------------------------------------------------------------------------

    def now_f(self):
        return self.clock() + self.offset

    def now(self):
        return int(self.now_f())

    def advance(self, seconds=0.0):
        """Move the sandbox's clock forward and run whatever fell due."""
        with self.lock:
            self.offset += float(seconds)
            self.tick()

    def tick(self):
        with self.lock:
            now = self.now_f()
            while True:
                due = [s for s in self._schedule if s[0] <= now]
                if not due:
                    break
                step = min(due)
                self._schedule.remove(step)
                # Follow-up steps count from when this one was due, not from now, so one
                # big advance() runs a whole lifecycle.
                self._step_time = step[0]
                try:
                    getattr(self, "_step_" + step[2])(step[3])
                finally:
                    self._step_time = None
            for link in self.links.values():
                expire_by = link["expire_by"]
                if (
                    link["status"] in ("created", "partially_paid")
                    and expire_by
                    and expire_by <= now
                ):
                    link["status"] = "expired"
                    link["expired_at"] = int(now)
                    link["updated_at"] = int(now)
                    self._event("razorpay", "payment_link.expired", payment_link=link)
            self._auto_settle(now)

    def _later(self, delay_key, action, entity_id):
        self._seq += 1
        start = self._step_time if self._step_time is not None else self.now_f()
        self._schedule.append([start + self.delays[delay_key], self._seq, action, entity_id])

    def pending_steps(self):
        with self.lock:
            return len(self._schedule)

    def force_outcome(self, entity_id, outcome):
        """Decide how a refund, payout or validation ends (tests, demos)."""
        with self.lock:
            self._outcome[entity_id] = outcome

    def _outcome_for(self, kind, entity, notes=None):
        if entity["id"] in self._outcome:
            return self._outcome[entity["id"]]
        if notes and isinstance(notes, dict) and notes.get("sandbox_outcome"):
            return notes["sandbox_outcome"]
        if self.faults is not None:
            chosen = self.faults.outcome(kind)
            if chosen:
                return chosen
        return DEFAULT_OUTCOMES[kind]

    # --- helpers -----------------------------------------------------------------------

    def new_id(self, prefix):
        return prefix + "_" + "".join(self._random.choice(_ALPHABET) for _ in range(14))

    def _event(self, source, name, **entities):
        self._emit(source, name, {k: copy.deepcopy(v) for k, v in entities.items()})

    @staticmethod
    def _get(table, entity_id):
        try:
            return table[entity_id]
        except KeyError:
            raise not_found() from None

    @staticmethod
    def _amount(data, field="amount", minimum=100):
        amount = data.get(field)
        if isinstance(amount, bool) or not isinstance(amount, int):
            if isinstance(amount, str) and amount.isascii() and amount.isdigit():
                amount = int(amount)
            else:
                raise ApiError(f"The {field} must be an integer.", field=field)
        if amount < minimum:
            raise ApiError(f"The {field} must be atleast INR {minimum / 100:.2f}.", field=field)
        return amount

    @staticmethod
    def _currency(data):
        currency = data.get("currency", "INR")
        if currency != "INR":
            raise ApiError("The sandbox supports INR only.", field="currency")
        return currency

    @staticmethod
    def _notes(data):
        notes = data.get("notes") or {}
        if isinstance(notes, list):  # Razorpay answers empty notes as []
            notes = {}
        if not isinstance(notes, dict) or len(notes) > 15:
            raise ApiError("The notes should be a map of at most 15 keys.", field="notes")
        return notes

    def _page(self, items, args):
        """Razorpay's collection: newest first, count/skip/from/to."""
        try:
            count = min(int(args.get("count", 10)), 100)
            skip = int(args.get("skip", 0))
            start = int(args.get("from", 0))
            end = int(args.get("to", 2**40))
        except ValueError:
            raise ApiError("count, skip, from and to must be integers.") from None
        chosen = [i for i in items if start <= i["created_at"] <= end]
        chosen.sort(key=lambda i: i["created_at"], reverse=True)
        chosen = chosen[skip : skip + count]
        return {"entity": "collection", "count": len(chosen), "items": copy.deepcopy(chosen)}
