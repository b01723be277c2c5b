"""The simulator's memory of deliveries, kept compact: at a million messages an
in-process simulator shares apply's heap, so it must not grow by hundreds of bytes per
message.

- :class:`Recipients`: who already received one campaign (the allow_one duplicate
  check), as E.164 numbers held as integers: recent ones in a small set, the rest in a
  sorted ``uint64`` array (8 bytes each) searched in bulk, one search per request group.
- :func:`pack` / :func:`unpack`: one group's accepted entries as a zlib-compressed JSON
  array (tens of bytes per entry), expanded only when inspected (``/_sim/deliveries``).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

MERGE_AT = 1 << 16  # recent numbers kept in a set before they join the sorted array

# (client, variables, scheduledAt), as accepted
Item = tuple[str, dict[str, str] | None, str | None]


def client_number(client: str) -> int:
    """The number of an E.164 client (``+`` then 7 to 15 ASCII digits, the first not 0,
    as `engine.E164` checks first): unique per client, below 10**15 < 2**63."""
    return int(client[1:])


class Recipients:
    """The clients that received one campaign, as numbers (`client_number`)."""

    __slots__ = ("_recent", "_runs")

    def __init__(self) -> None:
        self._recent: set[int] = set()
        self._runs: np.ndarray[Any, np.dtype[np.uint64]] = np.empty(0, np.uint64)

    def known(self, numbers: Sequence[int]) -> list[bool]:
        """For each number, whether it received the campaign already."""
        recent, runs = self._recent, self._runs
        if not runs.size or not numbers:
            return [n in recent for n in numbers]
        wanted = np.fromiter(numbers, np.uint64, len(numbers))
        at = np.minimum(np.searchsorted(runs, wanted), runs.size - 1)
        found: list[bool] = (runs[at] == wanted).tolist()
        return [hit or n in recent for hit, n in zip(found, numbers, strict=True)]

    def add(self, numbers: Iterable[int]) -> None:
        recent = self._recent
        recent.update(numbers)
        # merged once the set holds an eighth of the array (at least MERGE_AT): each
        # number is copied a bounded number of times on average
        if len(recent) >= max(MERGE_AT, self._runs.size // 8):
            self._runs = merged(self._runs, np.fromiter(recent, np.uint64, len(recent)))
            recent.clear()


def merged(runs: np.ndarray[Any, np.dtype[np.uint64]],
           fresh: np.ndarray[Any, np.dtype[np.uint64]]) -> np.ndarray[Any, np.dtype[np.uint64]]:
    """`runs` (sorted, unique) with the distinct `fresh` numbers it lacks, still sorted.

    Only `fresh` is sorted; `runs` is copied once around the insertions. `np.union1d` would
    re-sort all of it, a pause of a tenth of a second at a million deliveries, during which
    every request waits and the rate the simulator answers at falls below the API's."""
    fresh = np.unique(fresh)
    if runs.size:
        at = np.searchsorted(runs, fresh)
        present = runs[np.minimum(at, runs.size - 1)] == fresh
        fresh, at = fresh[~present], at[~present]
        return np.insert(runs, at, fresh)
    return fresh


def pack(items: Sequence[Item]) -> bytes:
    """One group's accepted entries, compact (see `unpack`)."""
    return zlib.compress(json.dumps(items, separators=(",", ":")).encode(), 1)


def unpack(blob: bytes) -> list[Item]:
    return [(c, v, s) for c, v, s in json.loads(zlib.decompress(blob))]


__all__ = ["MERGE_AT", "Item", "Recipients", "client_number", "merged", "pack", "unpack"]
