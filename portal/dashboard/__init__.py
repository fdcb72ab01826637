"""The operations dashboard (``/admin/``): today / 7 / 30 days of bookings and money, pending
approvals, daily charts and the case study's outcome figures, from aggregate queries."""
