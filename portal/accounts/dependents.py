"""Dependents: the people a patient books for (children, parents…). A patient manages
their own; an administrator may act for a patient. Each use case is one unit of work."""

from sqlalchemy.exc import IntegrityError

from portal.accounts.models import ADMIN, PATIENT, Dependent
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
from portal.domain.text import Text
from portal.extensions import db
from portal.i18n import N_

MSG_HAS_VISITS = N_("%(name)s has visits on record, so they stay on your family list.")


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
    dob = dependent.date_of_birth
    return {
        "name": dependent.name,
        "relationship": dependent.relationship_,
        "date_of_birth": dob.isoformat() if dob else None,
    }


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
    with unit_of_work():
        dependent = Dependent(
            guardian_id=guardian.id,
            name=data["name"],
            relationship_=data["relationship"],
            date_of_birth=data["date_of_birth"],
        )
        db.session.add(dependent)
        db.session.flush()
        record(actor, "dependent.add", "dependent", dependent.id, after=_snapshot(dependent))
    return dependent


def update_dependent(actor, dependent_id, name, relationship, date_of_birth):
    with unit_of_work():
        dependent = _owned_dependent(actor, dependent_id)
        data = _dependent_data(name, relationship, date_of_birth)
        before = _snapshot(dependent)
        dependent.name = data["name"]
        dependent.relationship_ = data["relationship"]
        dependent.date_of_birth = data["date_of_birth"]
        record(
            actor,
            "dependent.update",
            "dependent",
            dependent.id,
            before=before,
            after=_snapshot(dependent),
        )
    return dependent


def remove_dependent(actor, dependent_id):
    """Take a family member off the list; one with visits on record stays (the visits,
    their invoices and refunds name them), which the database's foreign key decides."""
    with unit_of_work():
        dependent = _owned_dependent(actor, dependent_id)
        record(actor, "dependent.remove", "dependent", dependent.id, before=_snapshot(dependent))
        name = dependent.name  # read before the delete: after a refused flush it cannot be
        db.session.delete(dependent)
        try:
            db.session.flush()
        except IntegrityError:
            raise ValidationError({FORM: Text(MSG_HAS_VISITS, name=name)}) from None
