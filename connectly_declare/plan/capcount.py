"""Which clients the frequency caps must place one by one, found in bulk.

policy.caps places a plan's entries one by one, but only a client with more messages in
all (this plan's entries to them, plus their deliveries in the ledger that count) than the
smallest cap allows can pass a cap; every other client is left alone. Finding those
*crowded* clients is the part that grows with the audience: a plan of ten million entries
would otherwise be a Counter of ten million client strings, and a ten-million-key ledger a
walk of ten million KeyStates with a list of times for every person. Here:

- :class:`PlannedClients` counts the plan's clients in a plain Counter up to
  :data:`SMALL` distinct clients, and past that as their numbers (an E.164 client's
  digits as a uint64, ledger.keycodes) in arrays, counted at the end with one sort;
- :func:`crowded` reads the ledger's deliveries from a compact
  :class:`~ledger.keyindex.KeyIndex` in bulk (client numbers and batch groups as
  arrays: a delivery's time and sendout are its group's), or key by key from a plain
  dict (a small ledger), and returns the crowded clients with the history of those
  clients only: all that :class:`policy.caps.CapCheck` reads of the whole history;
  :func:`crowds` returns the same in arrays (:class:`Crowds`: no string or list per
  crowded client), for plan.capplace to place a large plan a client at a time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from connectly_declare.ledger.base import KeyState
from connectly_declare.policy.caps import epoch, ledger_history

if TYPE_CHECKING:  # numpy (with the index) is imported only for a large plan or ledger
    from connectly_declare.ledger.keyindex import KeyIndex

SMALL = 100_000  # distinct clients counted in a plain Counter before arrays take over


class PlannedClients:
    """How many of a plan's entries (of the sendouts the caps apply to) go to each
    client. Add chunks of clients, then ask."""

    def __init__(self, threshold: int = SMALL) -> None:
        self.threshold = threshold
        self._small: Counter[str] | None = Counter()
        self._chunks: list[Any] = []  # uint64 client numbers, a chunk each (repeats kept)
        self._odd: Counter[str] = Counter()  # clients that are not "+" and digits
        self._numbers: Any = None  # sorted distinct numbers and their counts, once asked
        self._counts: Any = None

    def add(self, clients: list[str]) -> None:
        small = self._small
        if small is None:
            self._encode(clients, None)
            return
        small.update(clients)
        if len(small) > self.threshold:  # past the threshold: arrays from now on
            self._small = None
            self._encode(list(small), list(small.values()))

    def _encode(self, clients: list[str], repeats: list[int] | None) -> None:
        import numpy as np

        from connectly_declare.ledger.keycodes import client_digits

        numbers = client_digits(clients)
        good = numbers >= 0
        if not bool(good.all()):
            for n, client in enumerate(clients):
                if not good[n]:
                    self._odd[client] += 1 if repeats is None else repeats[n]
        kept = numbers[good].astype(np.uint64)
        if repeats is not None:
            kept = np.repeat(kept, np.array(repeats, dtype=np.int64)[good])
        self._chunks.append(kept)

    def _count(self) -> None:
        """The distinct numbers and their counts (from the Counter, if it still is one)."""
        if self._numbers is not None:
            return
        import numpy as np

        from connectly_declare.ledger.keycodes import client_digits

        if self._small is not None:
            small = self._small
            numbers = client_digits(list(small))
            good = numbers >= 0
            joined = np.repeat(numbers[good].astype(np.uint64),
                               np.array(list(small.values()), dtype=np.int64)[good])
        else:
            chunks, self._chunks = self._chunks, []
            joined = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.uint64)
            del chunks
        self._numbers, self._counts = np.unique(joined, return_counts=True)

    def __bool__(self) -> bool:
        if self._small is not None:
            return bool(self._small)
        self._count()
        return bool(len(self._numbers)) or bool(self._odd)

    def __contains__(self, client: object) -> bool:
        return isinstance(client, str) and self.count(client) > 0

    def count(self, client: str) -> int:
        """How many entries go to `client`."""
        if self._small is not None:
            return self._small[client]
        from connectly_declare.ledger.keycodes import digits

        number = digits(client)
        if number < 0:
            return self._odd[client]
        import numpy as np

        return int(self.counts_of(np.array([number], dtype=np.uint64))[0])

    def counts_of(self, numbers: Any) -> Any:
        """How many entries go to the client of each of these numbers (uint64; 0: none)."""
        import numpy as np

        self._count()
        found = np.zeros(len(numbers), dtype=np.int64)
        if len(self._numbers) and len(numbers):
            at = np.searchsorted(self._numbers, numbers).clip(0, len(self._numbers) - 1)
            hit = self._numbers[at] == numbers
            found[hit] = self._counts[at[hit]]
        return found

    @property
    def large(self) -> bool:
        """Whether the clients are counted in arrays (past the threshold)."""
        return self._small is None

    def over_numbers(self, least: int) -> tuple[Any, set[str]]:
        """:meth:`over` as the numbers (int64, sorted) of those clients, and the clients
        that are not numbers."""
        import numpy as np

        from connectly_declare.ledger.keycodes import client_digits

        if self._small is not None:
            clients = sorted(c for c, n in self._small.items() if n > least)
            numbers = client_digits(clients)
            odd = {c for c, n in zip(clients, numbers.tolist(), strict=True) if n < 0}
            return np.unique(numbers[numbers >= 0]), odd
        self._count()
        many = self._numbers[self._counts > least].astype(np.int64)
        return many, {c for c, n in self._odd.items() if n > least}

    def over(self, least: int) -> set[str]:
        """The clients with more than `least` entries."""
        if self._small is not None:
            return {c for c, n in self._small.items() if n > least}
        self._count()
        many = self._numbers[self._counts > least].tolist()
        return {"+" + str(n) for n in many} | {c for c, n in self._odd.items() if n > least}


def planned_clients(chunks: Iterable[list[str]],
                    threshold: int | None = None) -> PlannedClients:
    """A :class:`PlannedClients` of these chunks of clients (`threshold`: :data:`SMALL`)."""
    planned = PlannedClients(SMALL if threshold is None else threshold)
    for clients in chunks:
        planned.add(clients)
    return planned


def crowded(keys: Mapping[str, KeyState], planned: PlannedClients, exempt: Collection[str],
            scheduled: Mapping[str, float],
            least: int) -> tuple[set[str], dict[str, list[float]]]:
    """The clients with more messages in all than `least` (this plan's entries to them
    plus their deliveries in the ledger, as policy.caps.ledger_history counts those),
    and the sorted delivery times of each of them that has any: a set and a dict (a
    small plan over a small ledger; :func:`crowds` holds the same in arrays)."""
    if hasattr(keys, "delivered_rows"):  # a compact KeyIndex (ledger.keyindex)
        return crowds(keys, planned, exempt, scheduled, least).as_plain()
    history = ledger_history(keys, planned, exempt, scheduled)
    crowds_ = planned.over(least) | {
        c for c, times in history.items() if planned.count(c) + len(times) > least}
    return crowds_, {c: times for c, times in history.items() if c in crowds_}


class Crowds(NamedTuple):
    """:func:`crowded`'s answer in arrays: the crowded clients' numbers (int64, sorted,
    distinct), each one's sorted delivery times as ``times[starts[i]:starts[i + 1]]``,
    and the crowded clients that are not numbers with their sorted times (a few)."""

    numbers: Any
    starts: Any
    times: Any
    odd: dict[str, list[float]]

    def as_plain(self) -> tuple[set[str], dict[str, list[float]]]:
        """The set of crowded clients and the history of those that have any."""
        clients = ["+" + str(n) for n in self.numbers.tolist()]
        starts = self.starts.tolist()
        times = self.times.tolist()
        history = {c: times[starts[i]:starts[i + 1]] for i, c in enumerate(clients)
                   if starts[i + 1] > starts[i]}
        history.update((c, t) for c, t in self.odd.items() if t)
        return set(clients) | set(self.odd), history

    def __bool__(self) -> bool:
        return bool(len(self.numbers)) or bool(self.odd)


class _Everyone:
    def __contains__(self, client: object) -> bool:
        return True


def crowds(keys: Mapping[str, KeyState], planned: PlannedClients, exempt: Collection[str],
           scheduled: Mapping[str, float], least: int) -> Crowds:
    """:func:`crowded` in arrays (numpy), for a large plan or a compact ledger: no string
    nor list per crowded client (plan.capplace places them one client at a time)."""
    import numpy as np

    if hasattr(keys, "delivered_rows"):  # a compact KeyIndex: its deliveries in bulk
        numbers, at, odd = _index_deliveries(keys, exempt, scheduled)  # type: ignore[arg-type]
    else:  # a plain dict (a small ledger): walked, only the plan's clients kept
        history = ledger_history(keys, planned, exempt, scheduled)
        numbers, at, odd = _as_rows(history)
    # the deliveries of the plan's clients only, sorted by client, then time (one sort:
    # at ten million deliveries every array here is 80 MB, so none is made twice)
    mine = planned.counts_of(numbers.astype(np.uint64))
    keep = mine > 0
    numbers, at, mine = numbers[keep], at[keep], mine[keep]
    del keep
    order = np.lexsort((at, numbers))
    numbers, at, mine = numbers[order], at[order], mine[order]
    del order
    # each client's run of deliveries: where it starts, how long it is
    first = np.flatnonzero(np.concatenate(([True], numbers[1:] != numbers[:-1]))) \
        if len(numbers) else np.zeros(0, dtype=np.int64)
    delivered = np.diff(np.append(first, len(numbers)))
    crowded_runs = mine[first] + delivered > least
    del mine
    over, over_odd = planned.over_numbers(least)
    crowded = np.union1d(numbers[first][crowded_runs], over).astype(np.int64)
    rows = np.repeat(crowded_runs, delivered)  # the deliveries of crowded clients
    numbers, at = numbers[rows], at[rows]
    del rows, first, delivered, crowded_runs
    starts = np.append(np.searchsorted(numbers, crowded), len(numbers)).astype(np.int64)
    odd_crowds = {c: sorted(times) for c, times in odd.items()
                  if (mine_odd := planned.count(c)) and mine_odd + len(times) > least}
    odd_crowds.update((c, []) for c in over_odd if c not in odd_crowds)
    return Crowds(crowded, starts, at, odd_crowds)


def _as_rows(history: Mapping[str, list[float]]) -> tuple[Any, Any, dict[str, list[float]]]:
    """Deliveries by client as (numbers, times) rows (int64, float64), and those of the
    clients that are not numbers as a dict."""
    import numpy as np

    from connectly_declare.ledger.keycodes import client_digits

    clients = list(history)
    numbers = client_digits(clients)
    counts = np.array([len(history[c]) for c in clients], dtype=np.int64)
    good = numbers >= 0
    rows = np.repeat(numbers[good], counts[good])
    at = np.array([t for c, ok in zip(clients, good.tolist(), strict=True) if ok
                   for t in history[c]], dtype=np.float64)
    odd = {c: list(history[c]) for c, ok in zip(clients, good.tolist(), strict=True) if not ok}
    return rows, at, odd


def _index_deliveries(index: KeyIndex, exempt: Collection[str], scheduled: Mapping[str, float]
                      ) -> tuple[Any, Any, dict[str, list[float]]]:
    """Every counted delivery of a compact ledger as (client number, time) rows, and those
    of clients that are not numbers (keys kept whole) as a dict."""
    import numpy as np

    numbers, groups = index.delivered_rows()
    # per batch group: whether its deliveries count (sendout not exempt), and when
    counted = np.array([g.sendout not in exempt for g in index.groups], dtype=bool)
    at = np.zeros(len(index.groups), dtype=np.float64)
    seconds: dict[str, float] = {}
    for n, g in enumerate(index.groups):
        if counted[n]:
            when = seconds.get(g.last_at)
            if when is None:
                when = seconds[g.last_at] = epoch(g.last_at)
            at[n] = max(when, scheduled.get(g.sendout, when)) if scheduled else when
    if len(groups):
        keep = counted[groups]
        numbers, groups = numbers[keep], groups[keep]
    # the keys the arrays cannot hold (a few KeyStates): read as from a dict
    extra_numbers, extra_at, odd = _as_rows(
        ledger_history(index.extra, _Everyone(), exempt, scheduled))
    return (np.concatenate((numbers.astype(np.int64), extra_numbers)),
            np.concatenate((at[groups], extra_at)), odd)


__all__ = ["SMALL", "Crowds", "PlannedClients", "crowded", "crowds", "planned_clients"]
