"""The booking pages' world (catalog, patient with a dependent, doctors) for the Hindi
page checks."""

from tests.web.booking.conftest import gateway, world  # noqa: F401
