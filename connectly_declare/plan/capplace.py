"""Frequency caps placed a client at a time, for a large plan or ledger.

policy.caps.CapCheck places a plan's entries one by one, in a fixed order (sendout
priority, higher first, then name; within a sendout, its entries' order), and whether an
entry fits depends only on its own client's history and that client's entries placed
before it: caps are per person. So the same verdicts come from taking the crowded
clients' entries (client number, position in the plan, send time: 24 bytes each),
sorting them by client (stably: each client's in plan order) and placing one client at a
time, with only that client's history as a list. Placing in plan order instead holds a
list of times for every crowded client at once, ~250 bytes each: 2.5 GiB for ten million
people all within a cap's window (a weekly cap on a weekly newsletter).

The verdicts then go back to each sendout in its own order, reading from its spool only
the rows of the capped entries (plan.spool). plan.make uses this when the plan's clients
or the ledger are past their compact thresholds, and places one by one otherwise (a small
plan never imports numpy); the tests compare the two.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Sequence
from datetime import datetime
from operator import itemgetter
from typing import TYPE_CHECKING, Any, cast

from connectly_declare.plan.capcount import Crowds
from connectly_declare.plan.model import Action, PlannedEntry
from connectly_declare.plan.spoolcodec import entry_of_row
from connectly_declare.policy.caps import Cap, CapCheck, cap_reason, epoch

if TYPE_CHECKING:
    from connectly_declare.plan.sendout_diff import SendoutDiff

SHIFT = 40  # a crowded entry's key: sendout index << SHIFT | its position in that sendout
BLOCK = 65_536  # crowded entries taken out of the arrays as Python values at a time
_CLIENT = itemgetter(0)


class Verdicts:
    """The capped entries: where each is (sendout index << SHIFT | position) and why, in
    arrays (a few bytes each, however many are capped)."""

    def __init__(self) -> None:
        self.where = array("q")
        self.cap = array("b")  # index into the caps
        self.near = array("q")
        self.fits = array("d")

    def add(self, where: int, cap: int, near: int, fits: float) -> None:
        self.where.append(where)
        self.cap.append(cap)
        self.near.append(near)
        self.fits.append(fits)


def _sorted_contains(haystack: Any, probes: Any) -> Any:
    """For each probe, whether the sorted array `haystack` holds it (np.isin would sort
    the haystack again for every chunk of probes)."""
    import numpy as np

    if not len(haystack):
        return np.zeros(len(probes), dtype=bool)
    at = np.searchsorted(haystack, probes).clip(0, len(haystack) - 1)
    return haystack[at] == probes


def _values(numbers: Any) -> Iterator[int]:
    """An int array's values as Python ints, a block at a time (ten million at once as a
    list would be ~360 MiB)."""
    for block in range(0, len(numbers), BLOCK):
        yield from numbers[block:block + BLOCK].tolist()


def place(order: Sequence[SendoutDiff], crowds: Crowds, caps: tuple[Cap, ...],
          now: datetime) -> Verdicts:
    """Place every entry of `order`'s sendouts whose client is crowded (see the module
    docstring); the capped ones, in no particular order."""
    import numpy as np

    from connectly_declare.ledger.keycodes import client_digits

    times: dict[str | None, float] = {None: now.timestamp()}

    def at(when: str | None) -> float:
        found = times.get(when)
        if found is None:
            found = times[when] = epoch(when or "")
        return found

    # grown in place (no list of chunks to concatenate: a copy of everything at once)
    keys = array("q")  # sendout index << SHIFT | position
    numbers = array("q")
    moments = array("d")
    odd: list[tuple[int, str, float]] = []  # crowded clients that are not numbers
    for index, planner in enumerate(order):
        position = 0
        for chunk in planner.to_send.field_chunks("client", "scheduled_at"):
            clients = list(map(_CLIENT, chunk))
            digits = client_digits(clients)
            hit = np.flatnonzero(_sorted_contains(crowds.numbers, digits))
            if len(hit):
                keys.frombytes(((index << SHIFT) + position + hit).astype(np.int64).tobytes())
                numbers.frombytes(digits[hit].astype(np.int64).tobytes())
                moments.extend([at(chunk[i][1]) for i in hit.tolist()])
            if crowds.odd:
                for i in np.flatnonzero(digits < 0).tolist():
                    if clients[i] in crowds.odd:
                        odd.append(((index << SHIFT) + position + i, clients[i],
                                    at(chunk[i][1])))
            position += len(chunk)
    verdicts = Verdicts()
    check = CapCheck(caps, {})
    slot = caps.index
    if keys:
        key = np.frombuffer(keys, dtype=np.int64)
        number = np.frombuffer(numbers, dtype=np.int64)
        moment = np.frombuffer(moments, dtype=np.float64)
        by_client = np.lexsort((key, number))  # each client's entries in plan order
        # where each entry's client's history starts and ends in crowds.times
        start = np.searchsorted(crowds.numbers, number)
        starts, history = crowds.starts, crowds.times
        current = -1
        for block in range(0, len(by_client), BLOCK):
            rows = by_client[block:block + BLOCK]
            for where, client, when, first in zip(
                    key[rows].tolist(), number[rows].tolist(), moment[rows].tolist(),
                    start[rows].tolist(), strict=True):
                if client != current:  # the next client: only its history held
                    current = client
                    check.history = {"": history[starts[first]:starts[first + 1]].tolist()}
                verdict = check.place("", when)
                if verdict is not None:
                    cap, near, fits = verdict
                    verdicts.add(where, slot(cap), near, fits)
    check.history = {c: list(t) for c, t in crowds.odd.items()}
    for where, client, when in odd:  # in plan order
        verdict = check.place(client, when)
        if verdict is not None:
            cap, near, fits = verdict
            verdicts.add(where, slot(cap), near, fits)
    return verdicts


def capped(order: Sequence[SendoutDiff], verdicts: Verdicts, caps: tuple[Cap, ...]
           ) -> list[bytearray | None]:
    """Tell each sendout of its capped entries, in its order (SendoutDiff.cap, its
    action's count lowered); for each, which positions of its entries to send are capped
    (None: none)."""
    import numpy as np

    where = np.frombuffer(verdicts.where, dtype=np.int64)
    by_place = np.argsort(where, kind="stable")
    where = where[by_place]
    sendout = where >> SHIFT
    bounds = np.searchsorted(sendout, np.arange(len(order) + 1))
    gone: list[bytearray | None] = []
    for index, planner in enumerate(order):
        rows = by_place[bounds[index]:bounds[index + 1]]
        if not len(rows):
            gone.append(None)
            continue
        positions = where[bounds[index]:bounds[index + 1]] & ((1 << SHIFT) - 1)
        flags = np.zeros(len(planner.to_send), dtype=np.uint8)
        flags[positions] = 1
        gone.append(bytearray(flags.tobytes()))
        del flags
        counts = planner.counts
        for n, (action, _, fields, constants) in zip(
                _values(rows), planner.to_send.rows_at(_values(positions)), strict=True):
            planner.cap(PlannedEntry("capped", entry_of_row(fields, constants), cap_reason(
                caps[verdicts.cap[n]], verdicts.near[n], verdicts.fits[n])))
            counts[cast(Action, action)] -= 1
    return gone


__all__ = ["BLOCK", "SHIFT", "Verdicts", "capped", "place"]
