"""Master bookings (visits) and their individual bookings: holds, conflict-proof slot
claims, prices, coupons, checkout, payment links, what the gateway says about a payment,
confirmation and reschedules. One module per use case group; see docs/booking.md."""
