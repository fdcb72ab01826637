"""Payment records of visits: Razorpay orders and payment links, desk and wallet payments,
their attempt timeline and status moves (``records``), and cancelling a link at Razorpay
(``tasks``). What a payment means for a visit is the booking capability's
(``portal.booking.checkout``, ``links``, ``payment_events``); this package imports nothing
of it."""
