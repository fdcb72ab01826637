"""What the catalog's pages list and offer as choices (read only)."""
import sqlalchemy as sa

from portal.catalog.models import Clinic, Provider, Service
from portal.db import db


def active_services():
    return db.session.scalars(sa.select(Service).where(Service.active.is_(True))
                              .order_by(Service.name, Service.id)).all()


def active_providers():
    return db.session.scalars(sa.select(Provider).where(Provider.active.is_(True))
                              .order_by(Provider.display_name, Provider.id)).all()


def active_clinics():
    return db.session.scalars(sa.select(Clinic).where(Clinic.active.is_(True))
                              .order_by(Clinic.city, Clinic.name, Clinic.id)).all()
