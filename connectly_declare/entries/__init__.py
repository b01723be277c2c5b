"""What each recipient would be sent: entries made from audiences and templates, each with
its ledger key and fingerprint (docs/architecture.md)."""
