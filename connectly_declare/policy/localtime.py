"""Wall-clock times in IANA zones (the standard library's `zoneinfo`, with the `tzdata`
package as its database where the system has none).

DST rules, decided once here: a local time that does not exist (the spring-forward gap)
moves to the first valid minute after the gap; an ambiguous one (fall-back) takes its first
occurrence (``fold=0``).
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_MINUTE = timedelta(minutes=1)
_MAX_GAP_MINUTES = 2 * 24 * 60  # the longest gap on record is a skipped day (Samoa 2011)


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    """The zone `name`; KeyError when the zone database does not know it."""
    if not name or name.startswith("/") or ".." in name or name == "Etc/Unknown":
        raise KeyError(name)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise KeyError(name) from None


def is_zone(name: str) -> bool:
    try:
        zone(name)
    except KeyError:
        return False
    return True


def wall(moment: datetime) -> datetime:
    """The naive wall-clock time of an aware datetime, in its own zone."""
    return moment.replace(tzinfo=None, fold=0)


def localize(naive: datetime, tz: ZoneInfo) -> datetime:
    """`naive` wall-clock time in `tz` (see the module docstring for gaps and overlaps)."""
    first = naive.replace(tzinfo=tz, fold=0)
    if wall(first.astimezone(UTC).astimezone(tz)) == naive.replace(fold=0):
        return first
    # In a gap: fold=1 reads it with the offset after the transition (an instant before
    # it), fold=0 with the one before (an instant after it). The first instant whose wall
    # time is at or past `naive` is the transition: its wall time is the first valid one.
    start = naive.replace(tzinfo=tz, fold=1).astimezone(UTC).replace(second=0, microsecond=0)
    for step in range(_MAX_GAP_MINUTES):
        moment = (start + step * _MINUTE).astimezone(tz)
        if wall(moment) >= naive:
            return moment
    return first.astimezone(UTC).astimezone(tz)  # pragma: no cover - no such zone exists


def stamp(moment: datetime) -> str:
    """The `scheduledAt` text: ISO 8601 to the second with its UTC offset."""
    return moment.isoformat(timespec="seconds" if not moment.microsecond else "microseconds")


def parse_clock(text: str) -> time:
    """"21:00" -> time(21, 0); ValueError when it is not HH:MM."""
    hours, _, minutes = text.partition(":")
    if len(hours) != 2 or len(minutes) != 2 or not (hours + minutes).isdigit():
        raise ValueError(f"{text!r} is not a time of day written HH:MM")
    return time(int(hours), int(minutes))


__all__ = ["is_zone", "localize", "parse_clock", "stamp", "wall", "zone"]
