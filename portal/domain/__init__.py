"""Pure business rules: money arithmetic, prices, cancellation/refund/reschedule policy,
payout and TDS arithmetic, state machines, meet-link validation.

No Flask and no SQLAlchemy here (babel and the standard library only). Every number comes
from a :class:`portal.domain.policy.Policy` passed in; money is integer paise, rates are
integer basis points, durations are ``timedelta``.
"""
