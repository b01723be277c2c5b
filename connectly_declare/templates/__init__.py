"""Jinja templates for per-recipient variables: compiled once, run under a budget,
checked at load time (docs/architecture.md)."""
