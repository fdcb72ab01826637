"""Who may act on what in the booking capability: the acting user's role, a visit the
actor may act on (its patient or an admin), a person a visit may be for."""

from portal.accounts.models import ADMIN, PATIENT, Dependent, User
from portal.booking import lifecycle
from portal.booking.errors import NotFound, PermissionDenied
from portal.booking.models import MasterBooking
from portal.extensions import db


def role(actor):
    return getattr(actor, "role", None)


def get(model, obj_id, what):
    obj = db.session.get(model, obj_id) if obj_id is not None else None
    if obj is None:
        raise NotFound(what)
    return obj


def visit_for(actor, visit_id, lock=True):
    """The visit (locked), if the actor may act on it: its patient or an admin."""
    visit = lifecycle.lock_visit(visit_id) if lock else db.session.get(MasterBooking, visit_id)
    if visit is None:
        raise NotFound("visit")
    if role(actor) == ADMIN or (role(actor) == PATIENT and visit.patient_id == actor.id):
        return visit
    raise NotFound("visit")


def require_admin(actor):
    if role(actor) != ADMIN:
        raise PermissionDenied("Only administrators can do this.")


def why_not_bookable(patient):
    """Why no visit can be booked for ``patient``'s account (closed by the patient, or
    deactivated by an admin), in the desk's words (admin pages are English), or None.
    ``check_person`` refuses such an account as not found; the desk says which it is."""
    if patient.is_closed:
        return f"{patient.name} is a closed account (the patient closed it): it cannot be booked."
    if not patient.active:
        return f"{patient.name}'s account is deactivated: reactivate it on the Users page to book."
    return None


def check_person(actor, patient_id, dependent_id):
    """Patients book for themselves and their dependents; admins for any patient."""
    if role(actor) == PATIENT:
        if patient_id != actor.id:
            raise NotFound("patient")
    elif role(actor) != ADMIN:
        raise PermissionDenied("Only patients and administrators can book.")
    patient = db.session.get(User, patient_id)
    if patient is None or patient.role != PATIENT or not patient.active:
        raise NotFound("patient")
    dependent = None
    if dependent_id is not None:
        dependent = db.session.get(Dependent, dependent_id)
        if dependent is None or dependent.guardian_id != patient_id:
            raise NotFound("dependent")
    return patient, dependent
