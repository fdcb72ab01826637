"""Cancellations and refunds (being built)."""
