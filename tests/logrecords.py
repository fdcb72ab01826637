"""The records a portal logger handles during a test, on a handler of its own.

``caplog`` cannot be used for them: the portal's loggers do not propagate to the root
(``portal.events`` writes its own lines to stderr), and Alembic's ``fileConfig`` in the
migration tests disables the loggers that existed before it, so a test enables the one
it listens to and puts it back afterwards."""

import logging
from contextlib import contextmanager


class _Records(logging.Handler):
    def __init__(self, level):
        super().__init__(level)
        self.records = []

    def emit(self, record):
        self.records.append(record)


@contextmanager
def logged(name, level=logging.DEBUG):
    """``with logged("portal.web") as records:`` every record of ``name`` at ``level`` or
    above meanwhile."""
    logger, handler = logging.getLogger(name), _Records(level)
    saved = logger.level, logger.disabled
    logger.setLevel(min(level, logger.getEffectiveLevel()))
    logger.disabled = False
    logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.disabled = saved[1]
