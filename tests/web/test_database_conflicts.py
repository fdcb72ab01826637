"""A request that PostgreSQL aborts to break a lock conflict (a deadlock, a serialization
failure, a lock not granted in time) is answered as busy: 503 with ``Retry-After``, nothing
written, and the conflict logged as an error; any other database error stays a 500."""

import logging

import pytest
from sqlalchemy.exc import OperationalError

from portal import create_app
from tests.logrecords import logged
from tests.plugin import _test_config


class _Orig(Exception):
    def __init__(self, sqlstate):
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


@pytest.fixture
def conflicted(tmp_path):
    app = create_app(
        _test_config("sqlite:///" + str(tmp_path / "c.sqlite3"), PROPAGATE_EXCEPTIONS=False)
    )

    @app.get("/raise/<sqlstate>")
    def raise_(sqlstate):
        raise OperationalError("UPDATE visits SET …", {}, _Orig(sqlstate))

    return app.test_client()


@pytest.mark.parametrize("sqlstate", ["40P01", "40001", "55P03"])
def test_a_lock_conflict_is_busy_and_logged(conflicted, sqlstate):
    with logged("portal.web", logging.ERROR) as records:
        response = conflicted.get(f"/raise/{sqlstate}")
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert any(sqlstate in record.getMessage() for record in records)


def test_any_other_database_error_is_still_a_500(conflicted):
    response = conflicted.get("/raise/08006")  # connection failure
    assert response.status_code == 500
