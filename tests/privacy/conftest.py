from tests.booking.conftest import clock  # noqa: F401
