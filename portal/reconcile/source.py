"""The gateway's side of a run: its list APIs read page by page through the adapters.

Pages are asked for with Razorpay's from/to (unix seconds), count (at most 100) and skip,
newest first. Paging stops at the first empty page, not at a short one: a short page is
the last one at Razorpay, but the sandbox's faults (and a record deleted meanwhile) can
shorten a page in the middle. Each item is reduced to a ``matching.Side`` at once, so a
run over 100,000 records never holds the gateway's JSON."""

from collections.abc import Callable, Iterable

from portal.gateway.errors import NotFound
from portal.reconcile.matching import Garbage, Side, gateway_side

PAGE = 100
KINDS = ("payment", "refund", "payout")


class AdapterSource:
    """The real gateway (or the sandbox) through ``gateway.payin`` and ``gateway.payouts``."""

    def __init__(self, payin, payouts):
        self.payin = payin
        self.payouts = payouts

    def page(self, kind, start, end, skip):
        lister = {
            "payment": self.payin.list_payments,
            "refund": self.payin.list_refunds,
            "payout": self.payouts.list_payouts_page,
        }[kind]
        answer = lister(start, end, count=PAGE, skip=skip)
        if not isinstance(answer, dict) or not isinstance(answer.get("items"), list):
            raise Garbage(f"the {kind} list answer has no items: {str(answer)[:120]!r}")
        return answer["items"]

    def fetch(self, kind, reference):
        fetch = {
            "payment": self.payin.fetch_payment,
            "refund": self.payin.fetch_refund,
            "payout": self.payouts.fetch_payout,
        }[kind]
        try:
            return fetch(reference)
        except NotFound:
            return None

    def order(self, order_id):
        try:
            return self.payin.fetch_order(order_id)
        except NotFound:
            return None


class Collected:
    """One kind's gateway records: reference -> Side, and the references listed twice."""

    def __init__(self):
        self.sides: dict[str, Side] = {}
        self.duplicates: set[str] = set()
        self.requests = 0

    def add(self, side):
        if side.reference in self.sides:
            self.duplicates.add(side.reference)
        else:
            self.sides[side.reference] = side


def collect(source, kind, start, end, *, limit=5_000_000, on_page: Callable | None = None):
    """Every ``kind`` record the gateway lists for [start, end] (unix seconds)."""
    found = Collected()
    skip = 0
    while True:
        items = source.page(kind, start, end, skip)
        found.requests += 1
        if not items:
            return found
        for item in items:
            found.add(gateway_side(kind, item))
        skip += PAGE
        if skip > limit:
            raise Garbage(f"the gateway lists more than {limit} {kind} records for the window")
        if on_page:
            on_page(kind, skip)


def fetch_each(source, kind, references: Iterable[str]) -> dict[str, Side]:
    """The gateway's record of each reference it did not list (None: it does not know it)."""
    found = {}
    for reference in references:
        record = source.fetch(kind, reference)
        if record is None:
            continue
        side = gateway_side(kind, record)
        if side.reference != reference:
            raise Garbage(f"asked for {kind} {reference}, the gateway answered {side.reference}")
        found[reference] = side
    return found


def order_notes(source, order_ids: Iterable[str]) -> dict[str, dict]:
    """The notes of each order that has some, fetched one by one: asked only for the few
    captured payments of the window that no row of ours knows by id or order, to find a
    payment link's (Razorpay makes a link's order when the link is paid and gives it the
    link's notes; the payment itself may carry none)."""
    found = {}
    for order_id in sorted(set(order_ids)):
        record = source.order(order_id)
        notes = record.get("notes") if isinstance(record, dict) else None
        if isinstance(notes, dict) and notes:
            found[order_id] = notes
    return found
