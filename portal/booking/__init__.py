"""Master bookings (visits) and their individual bookings: holds, conflict-proof slot
claims, prices, coupons, checkout and confirmation. See docs/booking.md."""
