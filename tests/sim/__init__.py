"""The seeded fault simulation (issue #15): random but reproducible histories driven
through the real services, jobs, mounted sandbox and webhook endpoint, with faults injected
and the money invariants checked after every step. See docs/testing.md."""
