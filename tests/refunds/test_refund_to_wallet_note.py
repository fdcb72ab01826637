"""The note of "Send the failed refund to the wallet" (review of the admin back office):
it goes to the append-only audit log, so it is checked as every note is and the checked
value is what is passed on."""

import re
from html import unescape

import sqlalchemy as sa

from portal.audit.models import AuditEntry
from portal.extensions import db
from portal.refunds.models import Refund
from tests.booking.factories import at
from tests.refunds.helpers import book_and_pay, cancel_as_patient, login, with_known_passwords


def _notes():
    db.session.expire_all()
    return [
        e.after.get("note")
        for e in db.session.scalars(sa.select(AuditEntry))
        if isinstance(e.after, dict) and "note" in e.after
    ]


def _typed_note(html):
    """The note box's text as the page fills it (unescaped)."""
    box = re.search(r'<textarea id="confirm-note"[^>]*>(.*?)</textarea>', html, re.S)
    return unescape(box.group(1)) if box else None


def test_the_to_wallet_note_is_checked_like_every_other_note(
    app, client, world, users, gateway, clock
):
    """/admin/refunds/<id>/to-wallet validated a NoteForm (at most 500 characters, no
    control characters) and then ignored the result: it passed request.form["note"] as
    typed to the use case, which wrote it to the append-only audit log. A 20,000
    character note with a NUL in it was accepted (303) and stored for ever. Now the
    confirmation page is shown again (422) with why, and nothing moves; a good note is
    stored as the form read it."""
    with_known_passwords()
    patient = users(world.patients[0])
    visit = book_and_pay(world, patient, gateway, [(world.consult, [world.doctors[0]], at(4, 10))])
    visit_id, item_id, email = visit.id, visit.items[0].id, patient.email
    admin_email = users(world.admin).email
    db.session.remove()
    gateway.sandbox.set_faults(fail_next=10, error_status=503, match="refund")
    app.config["REFUND_MAX_ATTEMPTS"] = 1
    try:
        login(client, email)
        cancel_as_patient(client, visit_id, [item_id])
    finally:
        app.config.pop("REFUND_MAX_ATTEMPTS")
    gateway.sandbox.reset_faults()
    client.post("/auth/logout")
    login(client, admin_email)
    refund = db.session.scalars(sa.select(Refund)).one()
    assert refund.status == "FAILED"
    refund_id, amount = refund.id, refund.amount
    url = f"/admin/refunds/{refund_id}/to-wallet"

    for note in ("spam " * 4000 + "end", "Patient asked\x00 for the wallet"):
        answer = client.post(url, data={"confirmed_amount": amount, "note": note})
        html = answer.get_data(as_text=True)
        assert answer.status_code == 422, (answer.status_code, [len(s or "") for s in _notes()])
        assert 'id="confirm-error"' in html and "Note:" in html and 'id="confirm-yes"' in html
        # The typed note is refilled, as other forms do, to be shortened rather than typed
        # again (re-read finding: the box came back empty).
        assert _typed_note(html) == note
        assert _notes() == []
        db.session.expire_all()
        assert db.session.get(Refund, refund_id).status == "FAILED"  # nothing moved

    # The amount not confirmed: asked again, the note kept too.
    stale = client.post(url, data={"confirmed_amount": amount + 1, "note": "Patient asked"})
    assert stale.status_code == 422 and _typed_note(stale.get_data(as_text=True)) == (
        "Patient asked"
    )
    done = client.post(
        url, data={"confirmed_amount": amount, "note": "Patient asked for the wallet"}
    )
    assert done.status_code == 303
    assert _notes() == ["Patient asked for the wallet"]
