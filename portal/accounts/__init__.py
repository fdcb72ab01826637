"""People: users with a role (patient, provider, admin), and patients' dependents."""
