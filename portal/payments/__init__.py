"""Payments for visits: Razorpay orders and payment links, desk and wallet payments, the
attempt timeline, and the processing of gateway callbacks and webhooks."""
