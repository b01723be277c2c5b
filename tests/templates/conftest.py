"""The audience tests' real-file fixtures (a tmp workspace, a file writer, audience inputs)."""

from tests.audience.conftest import inputs, root, write

__all__ = ["inputs", "root", "write"]
