"""`SeenSet`: "have we met this client before?" for audiences of millions, exactly.

A Python set of a million E.164 strings costs ~93 MiB; at ten million the audience's
deduplication and a sendout's duplicate check alone would pass the plan's 2 GiB bound.
So a `SeenSet` starts as a plain set of strings (small audiences never import numpy)
and, past `threshold` values, moves to sorted runs of uint64 (8 bytes a number):

- an E.164 string `+<digits>` is held as the integer of its digits; a string maps only
  if it is exactly `"+" + str(n)` with n < 10**19 (ASCII, no leading zero, no space or
  underscore), so two strings never share an integer. Anything else stays a string in a
  fallback set: a false "seen" would silently drop a person, so nothing is ever hashed
  lossily.
- values arrive in chunks; a chunk is sorted once and searched in bulk
  (`np.searchsorted`) against every run, and its new values become a run. Runs are
  merged like a binary counter (each run at least twice the next), so there are
  O(log n) runs and each value is merged O(log n) times.

Two ways in: :meth:`SeenSet.first_occurrences` keeps order ("the first occurrence
wins": items are buffered a chunk at a time and yielded in their order), and
:meth:`SeenSet.add` for callers that only count repeats (:attr:`SeenSet.repeats`).
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    U64 = npt.NDArray[np.uint64]
    Mask = npt.NDArray[np.bool_]

T = TypeVar("T")

THRESHOLD = 100_000  # a plain set below this: ~9 MiB, and no numpy import
# values decided at once past the threshold: the look-ahead of `first_occurrences`
CHUNK = 16_384
WIDTH = 20  # "+" and at most 19 digits (E.164 has 15): every such number fits a uint64
_LIMIT = 10 ** (WIDTH - 1)


def as_number(value: str) -> int | None:
    """The uint64 a value is held as, or None when it is not exactly "+" + str(n) for
    some n below 10**19 (then it is held as itself)."""
    if value[:1] != "+" or not value.isascii():
        return None
    try:
        number = int(value[1:])
    except ValueError:
        return None
    if number < 0 or number >= _LIMIT or "+" + str(number) != value:
        return None
    return number


class SeenSet:
    """Exact membership of strings, compact for E.164 numbers (see the module doc)."""

    def __init__(self, threshold: int | None = None, chunk: int | None = None) -> None:
        self.threshold = max(1, THRESHOLD if threshold is None else threshold)
        self.chunk = max(1, CHUNK if chunk is None else chunk)
        self.added = 0  # values given to `add` (repeats included)
        self._small: set[str] | None = set()
        self._other: set[str] = set()  # values that are not `+<digits>`, past the threshold
        self._runs: list[U64] = []  # sorted, disjoint; each more than twice the next
        self._numbers = 0  # values held in runs
        self._pending: list[str] = []  # `add`ed, not yet decided

    # -- order-free: count repeats -------------------------------------------------------
    def add(self, value: str) -> None:
        """Note `value`; repeats are counted in :attr:`repeats` (decided in bulk)."""
        self.added += 1
        small = self._small
        if small is not None:
            small.add(value)
            if len(small) >= self.threshold:
                self._spill()
            return
        pending = self._pending
        pending.append(value)
        if len(pending) >= self.chunk:
            self._decide(pending)
            pending.clear()

    def update(self, values: list[str]) -> None:
        """:meth:`add` each of `values`, in order (one call for a chunk of them)."""
        small = self._small
        if small is not None and len(small) + len(values) < self.threshold:
            self.added += len(values)  # stays a plain set, as adding one by one would
            small.update(values)
            return
        if small is None:  # runs: decided in bulk once a chunk's worth is pending
            self.added += len(values)
            pending = self._pending
            pending.extend(values)
            if len(pending) >= self.chunk:
                self._decide(pending)
                pending.clear()
            return
        add = self.add  # crossing the threshold: where `add` would
        for value in values:
            add(value)

    @property
    def repeats(self) -> int:
        """How many values given to :meth:`add` had been given before (for a set only
        `add` fills: `first_occurrences` reports its repeats one by one)."""
        return self.added - len(self)

    # -- order-keeping ------------------------------------------------------------------
    def first_occurrences(self, items: Iterable[T], key: Callable[[T], str],
                          repeated: Callable[[T], None]) -> Iterator[T]:
        """`items` whose key was not seen before (by this set or earlier in `items`), in
        their order; `repeated(item)` is called for the others, in order with the yields.

        Past the threshold a chunk of items is read before any of it is yielded. If
        reading fails (a bad data row), the items read before the failure are yielded
        first, then the error is raised, as if nothing had been read ahead."""
        iterator = iter(items)
        small = self._small
        if small is not None:
            threshold = self.threshold
            for item in iterator:
                value = key(item)
                if value in small:
                    repeated(item)
                    continue
                small.add(value)
                yield item
                if len(small) >= threshold:
                    self._spill()
                    break
            else:
                return
        self._flush()
        chunk = self.chunk
        while True:
            # A chunk's items live until the chunk is passed on; with the cyclic collector
            # running they would reach its oldest generation and set off full collections
            # (18 at a million audience rows, ~10% of producing the entries). So the
            # collector pauses for one chunk, as gcpause.no_gc does around a plan, and
            # resumes once the chunk is out or this generator is closed.
            collecting = gc.isenabled()
            gc.disable()
            try:
                buffer: list[T] = []
                failure: Exception | None = None
                try:
                    buffer.extend(islice(iterator, chunk))  # keeps what came before a failure
                except Exception as exc:  # raised again once `buffer` is out
                    failure = exc
                if buffer:
                    first = self._decide(list(map(key, buffer)))
                    for item, new in zip(buffer, first, strict=True):
                        if new:
                            yield item
                        else:
                            repeated(item)
                if failure is not None:
                    raise failure
                if len(buffer) < chunk:
                    return
            finally:
                if collecting:
                    gc.enable()

    # -- queries --------------------------------------------------------------------------
    def __len__(self) -> int:
        if self._small is not None:
            return len(self._small)
        self._flush()
        return self._numbers + len(self._other)

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, str):
            return False
        if self._small is not None:
            return value in self._small
        self._flush()
        number = as_number(value)
        if number is None:
            return value in self._other
        import numpy as np

        probe = np.array([number], dtype=np.uint64)
        return any(bool(_found(run, probe)[0]) for run in self._runs)

    def contains(self, values: list[str]) -> list[bool]:
        """For each of `values`, whether the set holds it: :meth:`__contains__` of a chunk
        at once (one search per run for the numbers)."""
        small = self._small
        if small is not None:
            return list(map(small.__contains__, values))
        self._flush()
        import numpy as np

        numbers, mapped = _numbers(values)
        held = np.zeros(len(values), dtype=np.bool_)
        for run in self._runs:
            held |= _found(run, numbers)
        if mapped is not None:  # a value that is not `+<digits>` is held as itself
            held &= mapped
            other = self._other
            for index in np.flatnonzero(~mapped).tolist():
                held[index] = values[index] in other
        found: list[bool] = held.tolist()
        return found

    def parts(self) -> tuple[U64 | None, list[str]]:
        """What the set holds, in bulk: the numbers of its `+<digits>` values as one
        uint64 array (None while it is a plain set of strings) and the values held as
        themselves. Each value is in exactly one of the two."""
        if self._small is not None:
            return None, list(self._small)
        self._flush()
        import numpy as np

        numbers = np.concatenate(self._runs) if self._runs else np.zeros(0, dtype=np.uint64)
        return numbers, list(self._other)

    @property
    def runs(self) -> int:
        """How many sorted runs hold the numbers (0 while the set is small)."""
        return len(self._runs)

    # -- inside ----------------------------------------------------------------------------
    def _flush(self) -> None:
        if self._pending:
            self._decide(self._pending)
            self._pending.clear()

    def _spill(self) -> None:
        """From the plain set to runs: every value held so far becomes one run."""
        small, self._small = self._small, None
        if small:
            self._decide(list(small))

    def _decide(self, values: list[str]) -> list[bool]:
        """Whether each value is a first occurrence (not held, not earlier in `values`);
        all are held afterwards."""
        import numpy as np

        numbers, mapped = _numbers(values)
        first = np.zeros(len(values), dtype=np.bool_)
        if mapped is None:  # every value is `+<digits>`: all in numpy
            where = None
            candidates = numbers
        else:
            where = np.flatnonzero(mapped)
            candidates = numbers[where]
            other = self._other
            for index in np.flatnonzero(~mapped).tolist():
                value = values[index]
                if value not in other:
                    other.add(value)
                    first[index] = True
        if len(candidates):
            unique, at = np.unique(candidates, return_index=True)
            fresh = np.ones(len(unique), dtype=np.bool_)
            for run in self._runs:
                fresh &= ~_found(run, unique)
            first[at[fresh] if where is None else where[at[fresh]]] = True
            self._push(unique[fresh])
        flags: list[bool] = first.tolist()
        return flags

    def _push(self, run: U64) -> None:
        if not len(run):
            return
        import numpy as np

        self._numbers += len(run)
        runs = self._runs
        while runs and len(runs[-1]) <= 2 * len(run):
            run = np.concatenate((runs.pop(), run))
            run.sort(kind="stable")  # two sorted runs: a linear merge
        runs.append(run)


def _found(run: U64, probe: U64) -> Mask:
    """For each value of `probe` (in any order), whether it is in the sorted `run`."""
    import numpy as np

    at = np.searchsorted(run, probe)
    inside = at < len(run)
    hit = np.zeros(len(probe), dtype=np.bool_)
    hit[inside] = run[at[inside]] == probe[inside]
    return hit


def _numbers(values: list[str]) -> tuple[U64, Mask | None]:
    """Each value's uint64 (0 where it does not map) and which map (None: all of them).

    A chunk of ASCII values is parsed from its bytes joined by newlines, with no Python
    call per value: the values of each length become a matrix of characters, checked
    ('+', digits, no leading zero) and summed column by column. The same values map,
    to the same numbers, as through `as_number`, which takes a chunk holding non-ASCII
    text or a newline inside a value, one value at a time."""
    import numpy as np

    count = len(values)
    joined = "\n".join(values)
    if joined.isascii():
        data = np.frombuffer(joined.encode("ascii"), dtype=np.uint8)
        breaks = np.flatnonzero(data == ord("\n"))
        if len(breaks) == count - 1:  # no value holds a newline
            starts = np.concatenate(([0], breaks + 1))
            lengths = np.concatenate((breaks, [len(data)])) - starts
            numbers = np.zeros(count, dtype=np.uint64)
            ok = np.zeros(count, dtype=np.bool_)
            for length in np.unique(lengths).tolist():
                if not 2 <= length <= WIDTH:
                    continue
                rows = np.flatnonzero(lengths == length)
                chars = data[starts[rows, None] + np.arange(length)]
                digits = chars[:, 1:] - np.uint8(ord("0"))  # wraps below '0': > 9
                good = (chars[:, 0] == ord("+")) & (digits <= 9).all(axis=1)
                if length > 2:
                    good &= digits[:, 0] != 0
                value = np.zeros(len(rows), dtype=np.uint64)
                for column in range(length - 1):
                    value = value * np.uint64(10) + digits[:, column]
                numbers[rows] = np.where(good, value, 0)
                ok[rows] = good
            return numbers, None if ok.all() else ok
    parsed = [as_number(value) for value in values]
    mapped = np.array([n is not None for n in parsed], dtype=np.bool_)
    numbers = np.fromiter((0 if n is None else n for n in parsed), dtype=np.uint64,
                          count=count)
    return numbers, mapped


__all__ = ["CHUNK", "THRESHOLD", "SeenSet", "as_number"]
