"""A provider's PAN (``catalog.pan``, docs/payouts.md "PAN"): an administrator sets,
corrects or clears it on the provider's form; the provider enters it once, while none is
on file; every change is audited with the PAN masked (the append-only log never holds one
in full)."""

import json

import pytest
import sqlalchemy as sa

from portal.accounts.models import User
from portal.audit.models import AuditEntry
from portal.catalog.checks import FORM, NotFound, StaleEdit, ValidationError
from portal.catalog.models import Provider
from portal.catalog.pan import MSG_DIFFERENT, MSG_ENTER, MSG_ON_FILE, enter_own_pan
from portal.catalog.providers import create_provider, update_provider
from portal.domain.tax_ids import MSG_PAN_FORMAT, MSG_PAN_HOLDER
from portal.extensions import db

PAN, SHOWN = "ABCPR1234L", "ABCPR••••L"


def user(u):
    return db.session.get(User, u.id)


def provider(catalog, key="doctor"):
    return db.session.get(Provider, catalog[key])


def entries(action=None):
    query = sa.select(AuditEntry).order_by(AuditEntry.id)
    if action:
        query = query.where(AuditEntry.action == action)
    return db.session.scalars(query).all()


def assert_no_pan_in_full(*pans):
    """No audit entry, before or after, holds any of ``pans`` in full."""
    for entry in entries():
        written = json.dumps([entry.before, entry.after], ensure_ascii=False)
        assert not any(pan in written for pan in pans), (entry.action, written)


def test_an_admin_sets_corrects_and_clears_a_pan_each_audited_masked(ctx, catalog, admin):
    doctor = provider(catalog)
    version = doctor.version
    update_provider(user(admin), doctor, pan=" abcpr1234l ")
    assert doctor.pan == PAN and doctor.version == version + 1
    [entry] = entries("provider.update")
    assert entry.actor_id == admin.id and entry.object_id == str(doctor.id)
    assert entry.before["pan"] is None
    assert entry.after["pan"] == SHOWN and entry.after["pan_changed"] is True
    # A correction of the digits alone masks the same: the entry still says it changed.
    update_provider(user(admin), doctor, pan="ABCPR9876L")
    corrected = entries("provider.update")[-1]
    assert corrected.before["pan"] == corrected.after["pan"] == SHOWN
    assert corrected.after["pan_changed"] is True
    update_provider(user(admin), doctor, pan="")  # blank clears it
    cleared = entries("provider.update")[-1]
    assert doctor.pan is None
    assert (cleared.before["pan"], cleared.after["pan"]) == (SHOWN, None)
    assert_no_pan_in_full(PAN, "ABCPR9876L")


def test_an_edit_that_leaves_the_pan_says_nothing_of_it_changing(ctx, catalog, admin):
    doctor = provider(catalog)
    update_provider(user(admin), doctor, pan=PAN)
    update_provider(user(admin), doctor, pan=PAN, bio="Twenty years in general practice")
    entry = entries("provider.update")[-1]
    assert entry.before["pan"] == entry.after["pan"] == SHOWN
    assert "pan_changed" not in entry.after and entry.after["bio"].startswith("Twenty")
    assert_no_pan_in_full(PAN)


@pytest.mark.parametrize(
    "typed, message",
    [
        ("ABCPR1234", MSG_PAN_FORMAT),
        ("ABCPR-1234-L", MSG_PAN_FORMAT),
        ("ABCDR1234L", MSG_PAN_HOLDER),  # D: no holder type
    ],
)
def test_an_admin_typing_no_pan_is_refused_beside_the_field(ctx, catalog, admin, typed, message):
    doctor = provider(catalog)
    update_provider(user(admin), doctor, pan=PAN)
    version, audited = doctor.version, len(entries())
    with pytest.raises(ValidationError) as refused:
        update_provider(user(admin), doctor, pan=typed, bio="changed too")
    assert set(refused.value.errors) == {"pan"}
    assert getattr(refused.value.errors["pan"], "template", refused.value.errors["pan"]) == message
    db.session.expire_all()
    doctor = provider(catalog)
    assert (doctor.pan, doctor.bio, doctor.version) == (PAN, "", version)
    assert len(entries()) == audited


def test_a_pan_on_file_sent_back_unchanged_is_not_checked_again(ctx, catalog, admin):
    """A value put on file before the rule (the column was free text) does not stop an
    edit of the provider's other fields; typing another one is checked."""
    doctor = provider(catalog)
    doctor.pan = "ABCDE1234F"  # D is no holder type
    db.session.commit()
    update_provider(user(admin), doctor, pan="abcde1234f ", bio="Kept as it is")
    assert (doctor.pan, doctor.bio) == ("ABCDE1234F", "Kept as it is")
    with pytest.raises(ValidationError):
        update_provider(user(admin), doctor, pan="ABCDE1234G")


def test_a_new_provider_may_come_with_a_pan_audited_masked(ctx, catalog, admin):
    made = create_provider(
        user(admin),
        email="lab@example.com",
        name="City Labs",
        kind="LAB",
        pan="aadcc7319l",
        clinic_ids=[catalog["indira"]],
        specialization_ids=[catalog["gm"]],
    )
    assert made.pan == "AADCC7319L"
    [entry] = entries("provider.create")
    assert entry.after["pan"] == "AADCC••••L" and "pan_changed" not in entry.after
    assert_no_pan_in_full("AADCC7319L")
    with pytest.raises(ValidationError) as refused:
        create_provider(
            user(admin),
            email="lab2@example.com",
            name="Other Labs",
            kind="LAB",
            pan="AADXC7319L",
            clinic_ids=[catalog["indira"]],
            specialization_ids=[catalog["gm"]],
        )
    assert set(refused.value.errors) == {"pan"}


# --- the provider's own -------------------------------------------------------------------


def test_a_provider_enters_their_own_pan_once_audited_masked(ctx, catalog, admin):
    me = catalog["doctor_user"]
    version = provider(catalog).version
    enter_own_pan(user(me), " abcpr1234l", "ABCPR1234L ")
    doctor = provider(catalog)
    assert doctor.pan == PAN and doctor.version == version + 1
    [entry] = entries("provider.pan_entered")
    assert (entry.actor_id, entry.object_type, entry.object_id) == (
        me.id,
        "provider",
        str(doctor.id),
    )
    assert entry.before == {"pan": None} and entry.after["pan"] == SHOWN
    assert_no_pan_in_full(PAN)
    # Once on file, only the clinic changes it.
    with pytest.raises(ValidationError) as refused:
        enter_own_pan(user(me), "ABCPR9876L", "ABCPR9876L")
    assert refused.value.errors == {FORM: MSG_ON_FILE}
    db.session.expire_all()
    assert provider(catalog).pan == PAN and len(entries("provider.pan_entered")) == 1
    update_provider(user(admin), provider(catalog), pan="ABCPR9876L")  # the clinic corrects
    assert provider(catalog).pan == "ABCPR9876L"


@pytest.mark.parametrize(
    "typed, again, field, message",
    [
        ("", "", "pan", MSG_ENTER),
        ("ABCPR1234L", "ABCPR1243L", "confirm_pan", MSG_DIFFERENT),
        ("ABCPR1234L", "", "confirm_pan", MSG_DIFFERENT),
        ("ABCPR123L", "ABCPR123L", "pan", MSG_PAN_FORMAT),
        ("ABCXR1234L", "ABCXR1234L", "pan", MSG_PAN_HOLDER),
    ],
)
def test_a_provider_typing_no_pan_or_two_different_ones_is_told_why(
    ctx, catalog, typed, again, field, message
):
    with pytest.raises(ValidationError) as refused:
        enter_own_pan(user(catalog["doctor_user"]), typed, again)
    assert set(refused.value.errors) == {field}
    said = refused.value.errors[field]
    assert getattr(said, "template", said) == message
    db.session.expire_all()
    assert provider(catalog).pan is None and entries("provider.pan_entered") == []


def test_only_a_provider_enters_a_pan_and_only_their_own(ctx, catalog, admin, make_user):
    for someone in (admin, make_user("patient"), make_user("provider")):  # the last: no profile
        with pytest.raises(NotFound):
            enter_own_pan(user(someone), PAN, PAN)
    enter_own_pan(user(catalog["other_user"]), PAN, PAN)
    assert provider(catalog, "other").pan == PAN and provider(catalog).pan is None


def test_an_admins_form_opened_before_the_provider_entered_it_does_not_clear_it(
    ctx, catalog, admin
):
    """The admin's form was filled with no PAN; saved after the provider entered theirs,
    its blank would clear it: the provider's entry raised the version, so it is refused."""
    opened_at = provider(catalog).version
    enter_own_pan(user(catalog["doctor_user"]), PAN, PAN)
    with pytest.raises(StaleEdit):
        update_provider(user(admin), provider(catalog), base_version=opened_at, pan="")
    db.session.expire_all()
    assert provider(catalog).pan == PAN
