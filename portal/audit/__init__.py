"""The append-only audit log: who did what, when, with the state before and after."""
