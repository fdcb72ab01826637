"""Razorpay settlements: what the gateway paid into our bank each day, less its fees and
the tax on them, and which payments and refunds each one covers (docs/transactions.md)."""
