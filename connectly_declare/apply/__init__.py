"""Sending a plan: the engine (intent before each request, outcomes after), the HTTP
client, batching, outcome mapping and progress (docs/architecture.md)."""
