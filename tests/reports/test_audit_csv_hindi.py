"""The audit-log CSV writes the Before/After JSON as it is: text in Hindi (a cancellation
reason, a dependent's name, an adjustment's note) reads as Hindi. Review finding: it was
written with ``json.dumps``' default ``ensure_ascii=True``, so those cells reached the
spreadsheet as ``\\u0921\\u0949...`` escapes, in a file that is UTF-8 with a BOM precisely
so that names in any script read correctly (docs/reports.md)."""

from portal.audit.service import record
from portal.db import unit_of_work
from portal.exports import build
from tests.plugin import csv_rows

REASON = "डॉक्टर छुट्टी पर हैं"
CHILD = "आरव शर्मा"


def test_hindi_in_before_and_after_is_readable_in_the_csv(ctx, make_user):
    admin = make_user("admin")
    with unit_of_work():
        record(admin.id, "booking.cancel", "booking", 7, after={"reason": REASON})
        record(
            admin.id,
            "dependent.update",
            "dependent",
            3,
            before={"name": "Aarav"},
            after={"name": CHILD},
        )
    parsed = csv_rows("".join(build("audit", {}).iter_csv()))
    header, rows = parsed[5], parsed[6:]
    after = [r[header.index("After")] for r in rows]
    assert any(REASON in cell for cell in after), after
    assert any(CHILD in cell for cell in after), after
