"""What people read: plans as text, Markdown and JSON, GitHub annotations and comments,
and the escaping every value from data goes through (docs/architecture.md)."""
