"""The plan: entries diffed against the folded ledger as plain data, and saved plans
(docs/architecture.md)."""
