"""The payout capability's fixtures: the RazorpayX sandbox (``x``), the builders
(``world``), the clock inside a financial year (``mid_year``) and the ledger check after
every test."""

from tests.payouts.conftest import (  # noqa: F401
    _ledger_balances_after_each_test,
    immediate_retries,
    mid_year,
    world,
    x,
)
