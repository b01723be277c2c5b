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


# Young collections stay as they are (they reclaim asyncio's and httpx's short cycles); a
# full collection, which walks every live object (~1 s at a million planned entries), is
# put off until a thousand collections of the middle generation have run.
SEND_THRESHOLDS = (700, 10, 1000)


@contextlib.contextmanager
def steady_gc() -> Iterator[None]:
    """For a long phase that must not stall (apply's send loop): every object alive now
    (the plan, the folded ledger, the catalog) is frozen out of the collector's sight
    (`gc.freeze`, O(1)), and full collections are made rare, so the objects the phase
    makes (requests, outcomes, an in-process simulator's deliveries) are all it scans.
    Everything is restored afterwards; frozen objects are still reference counted."""
    before = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(*SEND_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


__all__ = ["SEND_THRESHOLDS", "no_gc", "steady_gc"]
