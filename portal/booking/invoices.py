"""Tax documents keep what they were issued with. An invoice line (an individual booking,
at its visit's confirmation) and a reschedule fee (when it is charged, with its number in
the fees' own series) store the clinic's GSTIN of that moment and their CGST/SGST/IGST
split; the GST report, the receipt and the credit notes read these, so editing a clinic's
GSTIN changes only documents issued after (docs/reports.md). Both keep the clinic's name
and the line's description (service — providers) too, read by one rule (:func:`_as_issued`):
the receipt prints them, and the fee's document.
The visit keeps the names it was invoiced to (``billed_to_name``, ``billed_for_name``,
written with its invoice number by ``lifecycle.confirm``). The GST rate of a line and of
its booking's reschedule fees is its policy version's (:func:`gst_bps`)."""

import sqlalchemy as sa
from sqlalchemy.orm.util import identity_key

from portal.accounts.models import Dependent, User
from portal.booking import series
from portal.booking.models import FeeDocumentCounter, IndividualBooking, booking_providers
from portal.catalog.models import Clinic, Provider, Service
from portal.db import column_rows, db, utcnow
from portal.domain import gst as gst_rules
from portal.policies import store as policy_store

# Built once, read as columns (portal.db.column_rows): the checkout's return runs it.
_LINES = (
    sa.select(IndividualBooking.id, Clinic.gstin, Clinic.name, Service.name, Provider.display_name)
    .join(Clinic, Clinic.id == IndividualBooking.clinic_id)
    .join(Service, Service.id == IndividualBooking.service_id)
    .outerjoin(booking_providers, booking_providers.c.booking_id == IndividualBooking.id)
    .outerjoin(Provider, Provider.id == booking_providers.c.provider_id)
    .where(IndividualBooking.id.in_(sa.bindparam("ids", expanding=True)))
    .order_by(IndividualBooking.id, Provider.display_name)  # as the receipt listed them
)


def line_description(service_name, provider_names):
    """An invoice line's description as issued: "Consultation — Dr A, Dr B"."""
    return f"{service_name} — {', '.join(provider_names)}"


def _as_issued(item_ids):
    """{booking id: (GSTIN, clinic name, description)} of today, in one statement read
    before any line is changed (a lazy load of a line's providers between two stamps
    would flush the first line on its own), as plain values: the lines' UPDATEs still go
    as one batch (a SQL expression in a row's values makes the ORM write each row on its
    own)."""
    heads, names = {}, {}
    for item_id, gstin, clinic, service, provider in column_rows(_LINES, {"ids": sorted(item_ids)}):
        heads[item_id] = (gstin, clinic, service)
        names.setdefault(item_id, []).extend([provider] if provider is not None else [])
    return {
        item_id: (gstin, clinic, line_description(service, names[item_id]))
        for item_id, (gstin, clinic, service) in heads.items()
    }


def _stamp(document, gstin):
    document.invoice_gstin = gstin
    document.cgst, document.sgst, document.igst = gst_rules.split_for_gstin(document.gst, gstin)


def issue_lines(items):
    """Stamp invoice lines as issued (once: a line already issued keeps its stamp): the
    clinic's GSTIN and name, the line's description and its tax split."""
    pending = [i for i in items if i.cgst is None]
    if pending:
        issued = _as_issued({i.id for i in pending})
        for item in pending:
            gstin, item.invoice_clinic_name, item.invoice_description = issued[item.id]
            _stamp(item, gstin)


def gst_bps(item):
    """The GST rate, in basis points, an invoice line and its reschedule fees were charged
    at: that of the policy version its booking was priced under (``visits.add_item`` prices
    the line and ``reschedule`` quotes its fees by ``policies.store.for_booking``), never
    the rate in force today. Read from the policy cache: no statement per line."""
    return policy_store.for_booking(item).gst_bps


def gst_bps_column(version_id):
    """:func:`gst_bps` as an SQL expression of a booking's ``policy_version_id`` column, for
    a report that reads documents by the thousand (the GST report): a CASE over the policy
    versions the cache holds, so the rate is a column of the report's one statement, no
    join and no statement more. No version (a booking priced before the first edit) is the
    first version, as :func:`gst_bps` reads it. A version the cache does not hold gives
    NULL: it cannot be one a booking was priced under (approved versions only, and the
    cache holds every one approved when this app context read the stamp)."""
    # Integers written into the statement, not bound: a GROUP BY repeats the expression,
    # and PostgreSQL matches it to the select's only if both read the same text.
    number = lambda value: sa.literal_column(str(int(value)), sa.Integer)  # noqa: E731
    snapshot = policy_store.snapshot()
    whens = [(version_id.is_(None), number(policy_store.policy_version(None).gst_bps))]
    whens += [(version_id == number(v), number(p.gst_bps)) for v, p in snapshot.by_id.items()]
    return sa.case(*whens, else_=sa.null())


def _name(model, row_id):
    """A person's name as a plain value when this transaction has them loaded, else as a
    subquery written into the visit's own UPDATE: no statement of its own, and no lazy load
    (whose autoflush would write the visit twice)."""
    person = db.session.identity_map.get(identity_key(model, row_id))
    if person is not None and "name" in person.__dict__:
        return person.name
    return sa.select(model.name).where(model.id == row_id).scalar_subquery()


def issue_names(visit):
    """Keep the names the visit's invoice is issued to (with its number): the account holder
    billed and the person it is for. A rename later changes neither."""
    holder = _name(User, visit.patient_id)
    visit.billed_to_name = holder
    visit.billed_for_name = _name(Dependent, visit.dependent_id) if visit.dependent_id else holder


def next_fee_document_number(at):
    """ "RF/26-27/000001": a reschedule fee's tax document has a series of its own,
    numbered per financial year of its issue (``series``; docs/decisions.md)."""
    fy, number = series.next_number(FeeDocumentCounter, at)
    return series.document_number("RF", fy, number)


def issue_fee(resched, item):
    """Issue a reschedule fee's tax document (once): its number in this financial year's
    series, taken in the charging transaction (a rollback leaves no gap), and, as its
    booking's line is issued (:func:`_as_issued`, the names of now), the clinic's GSTIN
    and name, the line's description and the split: the fee's document prints them
    whatever the clinic or the service is called later."""
    if resched.cgst is None:
        gstin, clinic_name, description = _as_issued({item.id})[item.id]
        resched.invoice_clinic_name, resched.invoice_description = clinic_name, description
        _stamp(resched, gstin)
        resched.document_no = next_fee_document_number(utcnow())


def line_split(document):
    """The stored ``(cgst, sgst, igst)`` of an invoice line or a reschedule fee."""
    return document.cgst, document.sgst, document.igst
