"""The ledger: every intent and outcome, append-only, per key. See `base` for the interface."""
