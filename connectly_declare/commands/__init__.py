"""One module per command: each takes plain arguments from cli.py and returns an exit
code (docs/architecture.md)."""
