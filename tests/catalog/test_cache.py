"""The per-process catalog cache: a repeated search costs one stamp query, any catalog
edit (through the services or the ORM) is seen at once, a rolled-back edit changes
nothing, and objects from the cache behave like freshly loaded ones."""

import pytest
import sqlalchemy as sa

from portal.catalog import cache as catalog_cache
from portal.catalog.clinics import create_clinic
from portal.catalog.models import CatalogVersion, Provider
from portal.catalog.slots import search_providers
from portal.db import unit_of_work
from portal.extensions import db
from tests.querycount import counted_queries


def _names(**filters):
    return [p.display_name for p in search_providers(**filters)]


def test_a_repeated_search_is_served_from_the_cache(app, catalog):
    with app.app_context():
        first = _names(city="Bengaluru")
        db.session.remove()
    with app.app_context():
        with counted_queries() as statements:
            providers = search_providers(city="Bengaluru")
            # What callers read is there, attached to this session, with no query.
            seen = [
                (p.display_name, sorted(c.name for c in p.clinics), [s.name for s in p.services])
                for p in providers
            ]
            hours = [c.business_hours() for p in providers for c in p.clinics]
        assert [name for name, *_ in seen] == first == ["Dr. Asha Rao"]
        assert all(p in db.session for p in providers) and hours
        assert len(statements) == 1 and "catalog_version" in statements[0]


def test_a_read_only_hit_is_the_caches_own_copies_merged_nowhere(app, catalog):
    with app.app_context():
        # The miss fills the cache and gives a read-only caller its copies already.
        missed = search_providers(city="Bengaluru", attach=False)
        assert missed and all(sa.inspect(p).detached for p in missed)
        db.session.remove()
    with app.app_context():
        with counted_queries() as statements:
            first = search_providers(city="Bengaluru", attach=False)
            again = search_providers(city="Bengaluru", attach=False)
            # What find-a-doctor prints is loaded: no query, no lazy load on a copy.
            seen = [
                (p.display_name, [c.name for c in p.clinics], [s.name for s in p.services])
                for p in first
            ]
            specializations = [s.name for p in first for s in p.specializations]
            hours = [c.business_hours() for p in first for c in p.clinics]
        assert [name for name, *_ in seen] == ["Dr. Asha Rao"] and specializations and hours
        # Only the stamp, read by each search (outside a request nothing keeps it).
        assert statements and all("catalog_version" in s for s in statements)
        # The same shared objects each time, in no session (nothing merged).
        assert [id(p) for p in first] == [id(p) for p in again] == [id(p) for p in missed]
        assert all(sa.inspect(p).detached and p not in db.session for p in first)
        # The default still attaches a hit to the request's session.
        attached = search_providers(city="Bengaluru")
        assert all(p in db.session for p in attached)
        assert [id(p) for p in attached] != [id(p) for p in first]


def test_an_edit_is_seen_at_once(app, catalog):
    with app.app_context():
        assert _names(city="Bengaluru") == ["Dr. Asha Rao"]
        provider = db.session.get(Provider, catalog["doctor"])
        provider.display_name = "Dr. Asha R. Rao"
        db.session.commit()
        assert _names(city="Bengaluru") == ["Dr. Asha R. Rao"]
        create_clinic(db.session.merge(catalog["admin"]), name="Whitefield Clinic", city="Pune")
        provider = db.session.get(Provider, catalog["other"])
        provider.active = False
        db.session.commit()
        assert _names(city="Pune") == []


def test_a_rolled_back_edit_changes_nothing(app, catalog):
    with app.app_context():
        assert _names(city="Bengaluru") == ["Dr. Asha Rao"]
        stamp = catalog_cache.current_stamp()
        with pytest.raises(RuntimeError), unit_of_work():
            db.session.get(Provider, catalog["doctor"]).display_name = "Never Saved"
            db.session.flush()
            raise RuntimeError("undo")
        db.session.remove()
    with app.app_context():
        assert db.session.scalar(sa.select(CatalogVersion.stamp)) == stamp
        assert _names(city="Bengaluru") == ["Dr. Asha Rao"]


def test_catalog_writes_change_the_stamp(app, catalog):
    with app.app_context():
        before = db.session.scalar(sa.select(CatalogVersion.stamp))
        db.session.get(Provider, catalog["doctor"]).registration_no = "KMC-9"
        db.session.commit()
        after = db.session.scalar(sa.select(CatalogVersion.stamp))
        assert before and after and after != before


def test_the_find_forms_choices_are_cached_and_follow_an_edit(app, catalog):
    from portal.catalog.clinics import update_clinic
    from portal.catalog.queries import filter_options

    with app.app_context():
        first = filter_options()
        db.session.remove()
    with app.app_context():
        with counted_queries() as statements:
            again = filter_options()
        # A hit: only the stamp is read, and the rows are plain values (nothing to merge).
        assert len(statements) == 1 and "catalog_version" in statements[0]
        assert again == first
        assert [c.name for c in again["clinics"]] == [
            "Indiranagar Clinic",
            "Jayanagar Clinic",
            "Kothrud Clinic",
        ]
        assert again["cities"] == ("Bengaluru", "Pune")
        assert [s.name for s in again["services"]] == ["General consultation", "Skin consultation"]
        admin = db.session.merge(catalog["admin"])
        create_clinic(admin, name="Whitefield Clinic", city="Mysuru")
        update_clinic(admin, catalog["pune"], active=False)
        db.session.commit()
        edited = filter_options()
        assert [c.name for c in edited["clinics"]] == [
            "Indiranagar Clinic",
            "Jayanagar Clinic",
            "Whitefield Clinic",
        ]
        assert edited["cities"] == ("Bengaluru", "Mysuru")
