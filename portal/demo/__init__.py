"""Demo data made through the real use cases (three months of history)."""
