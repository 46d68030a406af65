"""Use cases: each owns its transaction and performs side effects only after commit."""
