"""The shared fixtures live in ``tests/plugin.py`` (loaded by ``-p tests.plugin``).

These names are re-exported for the tests that import helpers from ``tests.conftest``."""

from tests.plugin import (  # noqa: F401
    DEFAULT_PG,
    DEFAULT_REDIS,
    PASSWORD,
    _test_config,
    create_schema,
    empty_tables,
    ensure_postgres_database,
)
