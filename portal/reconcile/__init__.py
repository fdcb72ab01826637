"""Reconciliation with Razorpay: runs that match the gateway's records to ours, and the
cases they leave (one row per gateway record or our record, by reference)."""
