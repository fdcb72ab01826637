"""Dependents: the people a patient books for (children, parents…). A patient manages
their own; an administrator may act for a patient. Each use case is one unit of work.

One person is on an account once: the same name (case, spacing and letter forms aside:
``domain.names.name_key``) and date of birth (or both without one) again, whether added or
saved by an edit, is refused (``DuplicateDependent``), by the look-up here and, for two
posts at the same moment (a double click), by the table's unique indexes (``Dependent``'s
docstring; a duplicate stored before the rule is refused here on its next save under
that name). Twins have different names; a relationship chosen otherwise
does not make another person."""

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from portal.accounts.models import ADMIN, PATIENT, Dependent, User
from portal.accounts.service import (
    FORM,
    RELATIONSHIPS,
    NotFound,
    PermissionDenied,
    ValidationError,
    check_date_of_birth,
    collect,
    normalise_name,
    require_admin,
)
from portal.audit.service import record
from portal.db import unit_of_work
from portal.domain.names import name_key
from portal.domain.text import DateText, Text
from portal.extensions import db
from portal.i18n import N_

MSG_HAS_VISITS = N_("%(name)s has visits on record, so they stay on your family list.")
MSG_ALREADY = N_("%(name)s (born %(born)s) is already on your account.")
MSG_ALREADY_UNDATED = N_("%(name)s is already on your account.")
MSG_CLOSED = N_("This account has been closed, so its family list can no longer be changed.")


class DuplicateDependent(ValidationError):
    """The person is on the account already: ``dependent_id`` (None when the row that won a
    race could not be read back), ``name`` and ``date_of_birth`` say who; ``errors`` holds
    the patient's message beside the name (an admin's page says it its own way)."""

    def __init__(self, dependent_id, name, date_of_birth):
        self.dependent_id, self.name, self.date_of_birth = dependent_id, name, date_of_birth
        super().__init__({"name": already_message(name, date_of_birth)})


def born(date_of_birth):
    """A date of birth as the messages say it: "1 Apr 2018" (month names in the reader's
    language where the message is shown)."""
    return DateText(f"{date_of_birth.day} {date_of_birth:%b %Y}")


def already_message(name, date_of_birth):
    if date_of_birth is None:
        return Text(MSG_ALREADY_UNDATED, name=name)
    return Text(MSG_ALREADY, name=name, born=born(date_of_birth))


def _same_person(guardian_id, name, date_of_birth, except_id=None):
    """The guardian's dependent with this name (folded) and date of birth, or None."""
    query = sa.select(Dependent).where(
        Dependent.guardian_id == guardian_id,
        Dependent.name_key == name_key(name),
        Dependent.date_of_birth.is_(None)
        if date_of_birth is None
        else Dependent.date_of_birth == date_of_birth,
    )
    if except_id is not None:
        query = query.where(Dependent.id != except_id)
    return db.session.scalars(query.limit(1)).first()


def _refuse_if_there(guardian_id, data, except_id=None):
    found = _same_person(guardian_id, data["name"], data["date_of_birth"], except_id)
    if found is not None:
        raise DuplicateDependent(found.id, found.name, found.date_of_birth)


def _lost_the_race(guardian_id, data, except_id=None):
    """After the unique index refused the row (another post of the same person committed
    first, and this unit of work is rolled back): the one that won, read afresh."""
    found = _same_person(guardian_id, data["name"], data["date_of_birth"], except_id)
    if found is None:
        return DuplicateDependent(None, data["name"], data["date_of_birth"])
    return DuplicateDependent(found.id, found.name, found.date_of_birth)


def _dependent_data(name, relationship, date_of_birth):
    def check_relationship(value):
        if value not in dict(RELATIONSHIPS):
            raise ValueError("Choose how this person is related to you.")
        return value

    return collect(
        name=(lambda v: normalise_name(v, "their name"), name),
        relationship=(check_relationship, relationship),
        date_of_birth=(check_date_of_birth, date_of_birth),
    )


def _snapshot(dependent):
    # guardian_id: a closure finds the rows of a dependent removed since by it (and
    # redacts them: ``accounts.queries.dependent_ids_ever``), whoever wrote them.
    dob = dependent.date_of_birth
    return {
        "guardian_id": dependent.guardian_id,
        "name": dependent.name,
        "relationship": dependent.relationship_,
        "date_of_birth": dob.isoformat() if dob else None,
    }


def _open_family(guardian_id):
    """Refuse a change to the family of a closed account (``ValidationError``, the form's
    message). The closure erases each family member's name and date of birth (and the
    audit rows' copies) once, so none may be written after it. Read fresh, the guardian's
    row held ``FOR KEY SHARE`` as the claims' trigger and a further refund hold it: the
    closure takes it ``FOR UPDATE``, so a closure committing meanwhile is waited for and
    seen, and one that starts meanwhile waits for this change and then erases it. (On
    SQLite the unit of work's process lock keeps the two apart.) A deactivated account
    keeps its family (docs/privacy.md)."""
    guardian = db.session.get(
        User, guardian_id, with_for_update={"key_share": True}, populate_existing=True
    )
    if guardian is None or guardian.is_closed:
        raise ValidationError({FORM: Text(MSG_CLOSED)})


def _owned_dependent(actor, dependent_id):
    """The dependent if the actor is its guardian (or an admin); NotFound otherwise, so
    another family's dependents are not even confirmed to exist."""
    dependent = db.session.get(Dependent, dependent_id)
    if dependent is None or (dependent.guardian_id != actor.id and actor.role != ADMIN):
        raise NotFound("dependent")
    return dependent


def add_dependent(guardian, name, relationship, date_of_birth, *, actor=None):
    """Add someone the patient books for. ``actor`` is an admin acting for the patient."""
    if guardian.role != PATIENT:
        raise PermissionDenied("Only patients have dependents.")
    actor = actor or guardian
    if actor.id != guardian.id:
        require_admin(actor)
    data = _dependent_data(name, relationship, date_of_birth)
    try:
        with unit_of_work():
            _open_family(guardian.id)
            _refuse_if_there(guardian.id, data)
            dependent = Dependent(
                guardian_id=guardian.id,
                name=data["name"],
                relationship_=data["relationship"],
                date_of_birth=data["date_of_birth"],
            )
            db.session.add(dependent)
            db.session.flush()  # the unique index: a post of the same person at once
            record(actor, "dependent.add", "dependent", dependent.id, after=_snapshot(dependent))
    except IntegrityError:
        raise _lost_the_race(guardian.id, data) from None
    return dependent


def update_dependent(actor, dependent_id, name, relationship, date_of_birth):
    try:
        with unit_of_work():
            dependent = _owned_dependent(actor, dependent_id)
            guardian_id = dependent.guardian_id
            _open_family(guardian_id)
            data = _dependent_data(name, relationship, date_of_birth)
            _refuse_if_there(guardian_id, data, except_id=dependent.id)
            before = _snapshot(dependent)
            dependent.name = data["name"]  # keyed again (Dependent.name_key)
            dependent.relationship_ = data["relationship"]
            dependent.date_of_birth = data["date_of_birth"]
            db.session.flush()  # the unique index: someone renamed onto at the same moment
            record(
                actor,
                "dependent.update",
                "dependent",
                dependent.id,
                before=before,
                after=_snapshot(dependent),
            )
    except IntegrityError:
        raise _lost_the_race(guardian_id, data, except_id=dependent_id) from None
    return dependent


def remove_dependent(actor, dependent_id):
    """Take a family member off the list; one with visits on record stays (the visits,
    their invoices and refunds name them), which the database's foreign key decides."""
    with unit_of_work():
        dependent = _owned_dependent(actor, dependent_id)
        _open_family(dependent.guardian_id)
        record(actor, "dependent.remove", "dependent", dependent.id, before=_snapshot(dependent))
        name = dependent.name  # read before the delete: after a refused flush it cannot be
        db.session.delete(dependent)
        try:
            db.session.flush()
        except IntegrityError:
            raise ValidationError({FORM: Text(MSG_HAS_VISITS, name=name)}) from None
