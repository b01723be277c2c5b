"""Frequency caps: at most `max` messages to one person in any window of `per`, across
every sendout of the environment.

History is the ledger's delivered keys (accepted, or accepted before a later attempt), each
at the later of when apply recorded it and its sendout's declared instant schedule (a
message scheduled ahead is delivered then, not when it was handed over). A sendout marked
``exempt`` is neither capped nor counted. This plan's entries are then placed one by one
in a deterministic order (sendout priority, higher first, then name; within a sendout,
audience order), each at its own send time (`scheduledAt`, or the plan's "now"); an entry
that would put more than `max` messages within less than `per` of each other is capped.
Windows are half open: a message exactly `per` after another starts a new window.

Pure: plain data in, plain data out; the plan (connectly_declare.plan.make) applies it.
"""

from __future__ import annotations

from bisect import bisect_right, insort
from collections.abc import Collection, Container, Mapping
from datetime import UTC, datetime
from typing import Protocol

from connectly_declare.entry import KEY_SEPARATOR


class KnownKey(Protocol):
    """What caps read of a folded ledger key (connectly_declare.ledger.base.KeyState; the
    ledger sits above this package, so it is named by shape)."""

    @property
    def status(self) -> str: ...
    @property
    def accepted_fingerprint(self) -> str | None: ...
    @property
    def sendout(self) -> str: ...
    @property
    def last_at(self) -> str: ...

Cap = tuple[int, int, str]  # (max, window in seconds, label such as "2 per 7d")


def epoch(text: str) -> float:
    """Seconds since the epoch of an ISO 8601 time with offset."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


def cap_reason(cap: Cap, near: int, fits: float) -> str:
    """Why an entry is capped, for review: a verdict of :meth:`CapCheck.place`."""
    return (f"frequency cap {cap[2]}: {near} other message{'s' if near != 1 else ''} "
            f"within the window; would fit from {iso(fits)}")


def ledger_history(keys: Mapping[str, KnownKey], clients: Container[str],
                   exempt: Collection[str],
                   scheduled: Mapping[str, float]) -> dict[str, list[float]]:
    """The sorted delivery times of each of `clients` in the ledger (see the module
    docstring); `scheduled` maps a sendout to its declared instant schedule."""
    history: dict[str, list[float]] = {}
    times: dict[str, float] = {}
    wanted = clients.__contains__
    get_time, get_history = times.get, history.get
    for key, known in keys.items():
        if known.status != "accepted" and known.accepted_fingerprint is None:
            continue
        start = key.find(KEY_SEPARATOR) + 1
        client = key[start:key.find(KEY_SEPARATOR, start)]
        if not wanted(client) or known.sendout in exempt:
            continue
        at = get_time(known.last_at)
        if at is None:
            at = times[known.last_at] = epoch(known.last_at)
        if scheduled:
            at = max(at, scheduled.get(known.sendout, at))
        found = get_history(client)
        if found is None:
            history[client] = [at]
        else:
            found.append(at)
    for found in history.values():
        found.sort()
    return history


def _crowded(times: list[float], at: float, cap: Cap) -> bool:
    """Whether a message at `at` puts more than max messages within less than per."""
    most, per, _ = cap
    i = bisect_right(times, at)
    merged = [*times[:i], at, *times[i:]]
    for j in range(max(0, i - most), min(i, len(merged) - 1 - most) + 1):
        if merged[j + most] - merged[j] < per:
            return True
    return False


class CapCheck:
    """Places messages per client against the caps, remembering the ones that fit."""

    def __init__(self, caps: tuple[Cap, ...], history: dict[str, list[float]]) -> None:
        self.caps = caps
        self.history = history

    def place(self, client: str, at: float) -> tuple[Cap, int, float] | None:
        """None when a message at `at` fits (it is then counted); else the first cap it
        would pass, how many messages that cap's window around `at` already holds, and
        the earliest time at or after `at` when it would fit."""
        times = self.history.setdefault(client, [])
        for cap in self.caps:
            if _crowded(times, at, cap):
                return cap, self._near(times, at, cap[1]), self._earliest(times, at)
        insort(times, at)
        return None

    @staticmethod
    def _near(times: list[float], at: float, per: int) -> int:
        return sum(1 for t in times if abs(t - at) < per)

    def _earliest(self, times: list[float], at: float) -> float:
        longest = max(per for _, per, _ in self.caps)
        candidates = sorted({t + per for t in times for _, per, _ in self.caps
                             if t + per > at} | {(times[-1] if times else at) + longest})
        for candidate in candidates:
            if not any(_crowded(times, candidate, cap) for cap in self.caps):
                return candidate
        return candidates[-1]  # pragma: no cover - the last candidate always fits


__all__ = ["Cap", "CapCheck", "cap_reason", "epoch", "iso", "ledger_history"]
