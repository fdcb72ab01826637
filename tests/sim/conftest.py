import logging

import pytest

from portal.extensions import db
from tests.sim.world import make_app


@pytest.fixture(scope="module")
def sim_app():
    """A simulation app of its own (its own SQLite file): histories empty it at will. The
    portal's alerts and job logs are expected noise in a history full of faults."""
    logging.disable(logging.WARNING)
    app = make_app()
    yield app
    logging.disable(logging.NOTSET)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
