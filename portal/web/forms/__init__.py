"""WTForms for the web layer. Forms check presence and shape only; business rules live in
the services, whose messages views put beside the matching fields."""
