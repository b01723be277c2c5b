"""How one sendout's entries spread in time, for review: entries per local hour of
delivery and per UTC hour, how many quiet hours shifted or held, how many a frequency cap
held back, and where the zones came from. Plain data (JSON carries it as is)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any

from connectly_declare.policy.localtime import zone
from connectly_declare.policy.timing import SHIFTED, ZONE_FALLBACK, ZONE_FROM_NUMBER, ZONE_GIVEN

TOP_ZONES = 8


# what the summary reads of an entry to send: (scheduled_at, zone, timing bits)
SENDING_SHAPE = ("scheduled_at", "zone", "timing")
sending_shape = attrgetter(*SENDING_SHAPE)
# what the summary reads of an entry held or capped: its zone and timing bits; a sendout
# keeps those entries as a tally of these, not as a list (ten million of them at scale)
timing_shape = attrgetter("zone", "timing")
Tally = Mapping[tuple[str, int], int]  # (zone, timing bits) -> how many entries


def _hours(at: str | None, name: str, now: datetime) -> tuple[int, int]:
    moment = datetime.fromisoformat(at) if at is not None else now
    local = moment.astimezone(zone(name)) if name else moment
    return local.hour, moment.astimezone(UTC).hour


def _origin(origins: Counter[str], flags: int, count: int = 1) -> None:
    if flags & ZONE_FROM_NUMBER:
        origins["from_number"] += count
    elif flags & ZONE_GIVEN:
        origins["given"] += count
    elif flags & ZONE_FALLBACK:
        origins["fallback"] += count


def timing_summary(sending: Iterable[tuple[str | None, str, int]], held: Tally,
                   capped: Tally, now: datetime) -> dict[str, Any]:
    """The summary of one sendout (see the module docstring). Hours count the entries to
    send, given as their :data:`sending_shape` (what plan.spool reads without rebuilding
    them); the other counts cover every entry sent, held or capped (`held`, `capped`:
    tallies of :data:`timing_shape`)."""
    local: Counter[int] = Counter()
    utc: Counter[int] = Counter()
    origins: Counter[str] = Counter()
    zones: Counter[str] = Counter()
    shifted = 0
    # Entries of one sendout share a few (time, zone, bits) values: count those in C, then
    # look at each distinct one once.
    for (at, name, flags), count in Counter(sending).items():
        hours = _hours(at, name, now)
        local[hours[0]] += count
        utc[hours[1]] += count
        if flags & SHIFTED:
            shifted += count
        _origin(origins, flags, count)
        if name:
            zones[name] += count
    for tally in (held, capped):
        for (name, flags), count in tally.items():
            if flags & SHIFTED:
                shifted += count
            _origin(origins, flags, count)
            if name:
                zones[name] += count
    held_count, capped_count = sum(held.values()), sum(capped.values())
    top = sorted(zones.items(), key=lambda item: (-item[1], item[0]))[:TOP_ZONES]
    return {
        "local_hours": {f"{h:02d}": local[h] for h in sorted(local)},
        "utc_hours": {f"{h:02d}": utc[h] for h in sorted(utc)},
        "shifted": shifted, "held": held_count, "capped": capped_count,
        "zones": {k: origins[k] for k in ("from_number", "given", "fallback")},
        "zone_count": len(zones),
        "top_zones": [[name, count] for name, count in top],
    }


__all__ = ["SENDING_SHAPE", "Tally", "sending_shape", "timing_shape", "timing_summary"]
