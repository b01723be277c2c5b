"""Pausing Python's cyclic garbage collector around bulk work."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many small acyclic objects
    (folding a million-key ledger, diffing a million entries, the YAML node trees of
    2,000 manifests): each collection walks every live object, which made those loops
    quadratic-ish (~40% of `validate` on 2,000 files). The objects are reference counted,
    so nothing is leaked; the collector runs again afterwards."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


__all__ = ["no_gc"]
