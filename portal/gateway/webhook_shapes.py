"""What a Razorpay / RazorpayX event must look like before it is stored.

A signed body is only proof of who sent it, not of its shape: an event whose entities are
missing or of the wrong type would be stored and then crash its handler at every retry.
``shape_problem`` names the first thing wrong (a reason for the 400 and the log), or None.

Only the fields the handlers read are checked; Razorpay may add others freely."""

import re

MAX_DEPTH = 16  # Razorpay's events nest four or five levels
MAX_ID = 64
EVENT_NAME = re.compile(r"^[a-z_]+(\.[a-z_]+)*$")
MAX_AMOUNT = 10**15  # paise; ints only (a float is never money)

STR, INT, OPT_STR, OPT_INT, OPT_NOTES = "str", "int", "str?", "int?", "notes?"

# entity name -> {field: kind}; "id" is always required.
ENTITIES = {
    "payment": {
        "id": STR,
        "amount": OPT_INT,
        "currency": OPT_STR,
        "status": OPT_STR,
        "order_id": OPT_STR,
        "method": OPT_STR,
        "notes": OPT_NOTES,
    },
    "order": {"id": STR, "amount": OPT_INT, "currency": OPT_STR, "status": OPT_STR},
    "refund": {
        "id": STR,
        "payment_id": OPT_STR,
        "amount": OPT_INT,
        "currency": OPT_STR,
        "status": OPT_STR,
        "notes": OPT_NOTES,
    },
    "payment_link": {"id": STR, "amount": OPT_INT, "status": OPT_STR, "notes": OPT_NOTES},
    "payout": {"id": STR, "amount": OPT_INT, "status": OPT_STR, "notes": OPT_NOTES},
    "fund_account.validation": {"id": STR, "status": OPT_STR},
}

# event name prefix -> the entities it must carry (the first prefix that matches). The
# downtime events carry a ``payment.downtime`` / ``payout.downtime`` entity: stored and
# answered 200 (no handler reads them); Razorpay disables a webhook that fails for a day,
# and RazorpayX allows one webhook per account, so a 400 here would lose every event.
REQUIRED = (
    ("payment.downtime.", ("payment.downtime",)),
    ("payout.downtime.", ("payout.downtime",)),
    ("payment_link.", ("payment_link",)),
    ("payment.", ("payment",)),
    ("order.", ("order",)),
    ("refund.", ("refund",)),
    ("payout.", ("payout",)),
    ("fund_account.validation.", ("fund_account.validation",)),
)


def depth_of(value):
    """Nesting depth, without recursion (a parsed body may be deep)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            return deepest
        children = item.values() if isinstance(item, dict) else item
        if isinstance(item, dict | list):
            stack.extend((child, depth + 1) for child in children)
    return deepest


def _field_problem(name, field, kind, value):
    where = f"{name}.{field}"
    optional = kind.endswith("?")
    if value is None:
        return None if optional else f"{where} is missing"
    base = kind.rstrip("?")
    if base == "str":
        if (
            not isinstance(value, str)
            or not value
            or len(value) > (MAX_ID if field.endswith("id") else 256)
        ):
            return f"{where} is not a short text"
    elif base == "int":
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_AMOUNT:
            return f"{where} is not a whole number of paise"
    elif base == "notes" and not isinstance(value, dict | list):
        return f"{where} is not an object"
    return None


def shape_problem(payload):
    """Why ``payload`` is not an event the portal can process, or None."""
    if not isinstance(payload, dict):
        return "the body is not a JSON object"
    if depth_of(payload) > MAX_DEPTH:
        return "the body is nested too deeply"
    name = payload.get("event")
    if not isinstance(name, str) or len(name) > 64 or not EVENT_NAME.match(name):
        return "event is not an event name"
    created = payload.get("created_at")
    if created is not None and (isinstance(created, bool) or not isinstance(created, int)):
        return "created_at is not a Unix time"
    body = payload.get("payload", {})
    if not isinstance(body, dict):
        return "payload is not an object"
    for entity_name, wrapper in body.items():
        if not isinstance(wrapper, dict) or not isinstance(wrapper.get("entity"), dict):
            return f"payload.{str(entity_name)[:40]} has no entity object"
    for prefix, needed in REQUIRED:
        if name.startswith(prefix):
            for entity_name in needed:
                if entity_name not in body:
                    return f"a {name} event without a {entity_name}"
            break
    for entity_name, fields in ENTITIES.items():
        if entity_name not in body:
            continue
        entity = body[entity_name]["entity"]
        for field, kind in fields.items():
            problem = _field_problem(entity_name, field, kind, entity.get(field))
            if problem:
                return problem
    return None
