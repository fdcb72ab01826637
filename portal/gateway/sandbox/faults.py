"""Fault injection: how the sandbox misbehaves, set per run (config) or per test.

Random choices come from one seeded generator, so a failing run can be replayed.

The reconciliation faults that describe the gateway's records (``RECORD_FAULTS``: amounts
altered, records hidden or listed twice, payments left out of a settlement) are part of
what the gateway *is*, not of how one process misbehaves: once a sandbox has a store
(``keep_records_in``) they are kept in the store's state, which ``shared.py`` shares
between processes. So what a reconciliation run found (in a worker, or in the process that
loaded the demo) is what a sync or the ledger check sees in the web process (review
finding: the demo's faults lived in the loader's memory, and the served gateway answered
clean). The others (latency, errors, webhook shaping) stay per process."""

import copy
import random
import threading

DEFAULTS = {
    "latency_ms": 0,  # added to every API request
    "error_rate": 0.0,  # share of API requests answered with error_status
    "error_status": 500,  # 500 SERVER_ERROR, 502 GATEWAY_ERROR, 503, 504
    "fail_next": 0,  # the next N API requests fail with error_status, unprocessed
    "timeout_next": 0,  # the next N API requests are processed, then hang
    "timeout_seconds": 5.0,  # how long a hang lasts (longer than the client's timeout)
    "match": "",  # only requests whose "METHOD /path" contains this text
    "duplicate_webhooks": 0.0,  # chance (True = always) a webhook is delivered twice
    "out_of_order": False,  # deliver each batch of webhooks newest first
    "drop_webhooks": 0.0,  # chance (True = always) a webhook is never delivered
    "refund_outcome": None,  # processed | failed
    "payout_outcome": None,  # processed | failed | reversed
    "validation_outcome": None,  # active | invalid | failed
    "seed": 0,
    # Reconciliation faults (docs/reconciliation.md): the gateway's records disagree with
    # what the portal was told. They shape API answers, not the stored entities.
    "drop_events": "",  # comma-separated event names never delivered ("payment.captured,...")
    "alter": {},  # entity id -> {field: value} the API answers with (amount, status, created_at)
    "hide": [],  # entity ids the API does not know (lists leave them out, fetches 404)
    "duplicate": [],  # entity ids a list answer returns twice
    "unsettle": [],  # payment ids the settlement recon leaves out (a settlement missing them)
    "garbage_next": 0,  # the next N API requests are answered 200 with a body that is not JSON
    # The next N API requests are answered answer_status with answer_body (raw text, sent
    # as JSON), unprocessed: JSON that is not Razorpay's error object ("[]", "null", ...).
    "answer_next": 0,
    "answer_status": 400,
    "answer_body": "[]",
}
RECORD_FAULTS = ("alter", "hide", "duplicate", "unsettle")
ERROR_BODIES = {
    502: ("GATEWAY_ERROR", "Gateway error. Please try again."),
    504: ("GATEWAY_ERROR", "Gateway timeout. Please try again."),
}
SERVER_ERROR = (
    "SERVER_ERROR",
    "The server encountered an error. The incident has been reported to admins.",
)


class Faults:
    def __init__(self, **initial):
        self._lock = threading.Lock()
        self._store = None  # where the record faults live once there is a store
        self._values = copy.deepcopy(DEFAULTS)
        self.reset(**initial)

    def keep_records_in(self, store):
        """From now on the record faults are ``store.record_faults`` (shared with the
        store's state). Only those given explicitly (config) are written there: a process
        starting must not wipe what another one set."""
        given = {k: v for k, v in self.records().items() if v != DEFAULTS[k]}
        self._store = store
        if given:
            self._set_records(given)

    def records(self):
        """The record faults, a copy: one read of the store's state under its lock (on a
        shared store, a database transaction). An API answer reads them once
        (``api._authenticate_and_misbehave``) and shapes itself with :func:`shape_answer`."""
        if self._store is None:
            with self._lock:
                return {k: copy.deepcopy(self._values[k]) for k in RECORD_FAULTS}
        with self._store.lock:
            return copy.deepcopy(self._store.record_faults)

    def _set_records(self, changes):
        if self._store is None:
            with self._lock:
                self._values.update(changes)
            return
        with self._store.lock:
            self._store.record_faults = {**self._store.record_faults, **copy.deepcopy(changes)}

    def reset(self, records=True, **initial):
        """Back to the defaults; ``records=False`` keeps the record faults (the demo's
        gateway keeps its altered amounts after the loader's own faults are undone)."""
        with self._lock:
            kept = {k: self._values[k] for k in RECORD_FAULTS}
            self._values = copy.deepcopy(DEFAULTS)
            if not records:
                self._values.update(kept)
            self._random = random.Random(0)
        if records:
            self._set_records({k: copy.deepcopy(DEFAULTS[k]) for k in RECORD_FAULTS})
        if initial:
            self.set(**initial)

    def set(self, **changes):
        unknown = set(changes) - set(DEFAULTS)
        if unknown:
            raise ValueError(f"unknown fault settings: {', '.join(sorted(unknown))}")
        records = {k: changes.pop(k) for k in RECORD_FAULTS if k in changes}
        with self._lock:
            self._values.update(changes)
            if "seed" in changes:
                self._random = random.Random(changes["seed"])
        if records:
            self._set_records(records)
        return self.snapshot()

    def snapshot(self):
        with self._lock:
            values = dict(self._values)
        return {**values, **self.records()}

    def __getitem__(self, name):
        if name in RECORD_FAULTS:
            return self.records()[name]
        with self._lock:
            return self._values[name]

    def outcome(self, kind):
        with self._lock:
            return self._values.get(f"{kind}_outcome")

    def _chance(self, value):
        if value is True:
            return True
        return bool(value) and self._random.random() < float(value)

    def plan(self, method, path):
        """For one API request: (latency seconds, error status or None, hang seconds);
        the error status is the string "garbage" for an answer that is not JSON, and a
        pair (status, raw body) for an ``answer_next`` answer."""
        with self._lock:
            v = self._values
            if v["match"] and v["match"] not in f"{method} {path}":
                return 0.0, None, 0.0
            latency = v["latency_ms"] / 1000
            if v["garbage_next"] > 0:
                v["garbage_next"] -= 1
                return latency, "garbage", 0.0
            if v["answer_next"] > 0:
                v["answer_next"] -= 1
                return latency, (int(v["answer_status"]), str(v["answer_body"])), 0.0
            if v["fail_next"] > 0:
                v["fail_next"] -= 1
                return latency, v["error_status"], 0.0
            if self._chance(v["error_rate"]):
                return latency, v["error_status"], 0.0
            hang = 0.0
            if v["timeout_next"] > 0:
                v["timeout_next"] -= 1
                hang = float(v["timeout_seconds"])
            return latency, None, hang

    def shape_deliveries(self, batch):
        """Drop, duplicate and reorder a batch of webhook deliveries as configured."""
        with self._lock:
            v = self._values
            shaped, dropped = [], []
            names = {n.strip() for n in str(v["drop_events"] or "").split(",") if n.strip()}
            for item in batch:
                if item.event in names or self._chance(v["drop_webhooks"]):
                    dropped.append(item)
                    continue
                shaped.append(item)
                if self._chance(v["duplicate_webhooks"]):
                    shaped.append(item)
            if v["out_of_order"]:
                shaped.reverse()
            return shaped, dropped


def shapes_answers(records):
    """Whether the record faults (``Faults.records()``; None: not read, as for an answer
    refused before its handler) change any API answer."""
    return bool(records) and any(records.values())


def shape_answer(records, body, path):
    """An API answer as the reconciliation faults (``Faults.records()``, read once for
    the answer) have it: a list without the hidden entities (and unsettled payments),
    duplicates twice, altered fields; a single hidden entity is None (answered 404)."""
    alter = records["alter"]
    hide = set(records["hide"])
    duplicate = set(records["duplicate"])
    unsettle = set(records["unsettle"])

    def shaped(entity):
        key = entity.get("id") or entity.get("entity_id")
        return {**entity, **alter[key]} if key in alter else entity

    if isinstance(body, dict) and isinstance(body.get("items"), list):
        gone = hide | (unsettle if "/settlements/" in path else set())
        items = []
        for entity in body["items"]:
            if not isinstance(entity, dict):
                items.append(entity)
                continue
            key = entity.get("id") or entity.get("entity_id")
            if key in gone:
                continue
            items.append(shaped(entity))
            if key in duplicate:
                items.append(shaped(entity))
        return {**body, "count": len(items), "items": items}
    if isinstance(body, dict) and body.get("id") in hide:
        return None
    if isinstance(body, dict) and body.get("id"):
        return shaped(body)
    return body


def error_body(status):
    code, description = ERROR_BODIES.get(status, SERVER_ERROR)
    return {
        "error": {
            "code": code,
            "description": description,
            "source": "NA",
            "step": "NA",
            "reason": "NA",
            "metadata": {},
        }
    }
