"""The policy tests' real-file fixtures (a tmp workspace and a file writer)."""

from tests.audience.conftest import root, write

__all__ = ["root", "write"]
