"""Provider earnings and payouts through RazorpayX: fund accounts and their validation,
the payout engine (INSTANT per completed booking, WEEKLY/MONTHLY cycles), TDS, retries,
webhooks and the request rate limit. See docs/payouts.md."""
