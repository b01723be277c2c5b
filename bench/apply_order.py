"""The order in which `apply` writes a ledger's records, for benchmarks that build one.

apply keeps up to `concurrency` requests in flight (declare.yaml's `concurrency`, default
16): it writes each batch's intent before its request and the outcome when the answer
comes, so once the window is full every outcome follows other batches' intents, never
its own directly:

    i1 i2 ... i16 o1 i17 o2 i18 ... o16 ...

A ledger of adjacent pairs (``in_flight=1``: i1 o1 i2 o2 ...) is what a ledger written by
one request at a time looks like; the fold has a fast path for each shape, so a benchmark
that builds only one of them measures only that path (a slow fold of apply-written
ledgers once hid behind benchmarks of adjacent pairs).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

IN_FLIGHT = 16  # connectly_declare.workspace.config.DEFAULT_CONCURRENCY


def in_flight_order(pairs: Iterable[tuple[T, T]], in_flight: int = IN_FLIGHT) -> Iterator[T]:
    """The (intent, outcome) pairs' records in the order apply writes them with
    `in_flight` requests at once (the earliest answered first)."""
    window: deque[T] = deque()
    for intent, outcome in pairs:
        if len(window) >= max(in_flight, 1):
            yield window.popleft()
        yield intent
        window.append(outcome)
    yield from window
