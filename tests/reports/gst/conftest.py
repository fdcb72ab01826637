"""The booking world on a frozen clock (1 June 2026, 08:00 IST), the sandbox gateway, and
the ledger check after every test (the refund tests' fixtures)."""

from tests.booking.conftest import _ledger_stays_sound, gateway, users, world  # noqa: F401
from tests.policies.conftest import admins  # noqa: F401
from tests.refunds.conftest import clock  # noqa: F401
