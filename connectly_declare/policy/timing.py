"""Each recipient's send time: the Sendout's schedule (an instant, a local wall-clock time
in the recipient's zone, or "now"), then quiet hours in that zone (shift to their end, or
hold). Decided per zone once and cached: a million recipients fall into a few hundred
zones.

What an entry carries (`scheduled_at` is sent; `fingerprint_at` is hashed):

- instant / local schedule: the resolved time, both sent and hashed; a quiet-hours shift
  moves both (the plan is deterministic, so re-planning gives the same time).
- no schedule (send now): nothing is sent or hashed, unless quiet hours shift "now", then
  the end of the quiet window is sent but *not* hashed: the shift depends on when plan ran,
  and hashing it would turn every later plan of an accepted entry into drift.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Literal, NamedTuple

from connectly_declare import clock
from connectly_declare.entry import mask_phone
from connectly_declare.errors import DeclareError, Location
from connectly_declare.policy.localtime import localize, parse_clock, stamp, wall, zone
from connectly_declare.policy.zones import UNKNOWN, zones_for_number
from connectly_declare.workspace.manifests import LocalSchedule, QuietHours, Sendout, ZoneRule

QuietMode = Literal["shift", "hold"]
QUIET_MODES: tuple[QuietMode, ...] = ("shift", "hold")

# Entry.timing bits: where the zone came from, and what quiet hours did
ZONE_FROM_NUMBER = 1
ZONE_GIVEN = 2  # a recipient field or a fixed zone in the manifest
ZONE_FALLBACK = 4
SHIFTED = 8
HELD = 16


class Timing(NamedTuple):
    scheduled_at: str | None
    fingerprint_at: str | None
    zone: str
    flags: int


def _row_location(source: str) -> Location:
    file, _, line = source.rpartition(":")
    return Location(file, int(line)) if file and line.isdigit() else Location(source)


@dataclass(frozen=True)
class Quiet:
    start: time
    end: time

    @classmethod
    def of(cls, hours: QuietHours) -> Quiet:
        return cls(parse_clock(hours.start), parse_clock(hours.end))

    def contains(self, clock: time) -> bool:
        if self.start < self.end:
            return self.start <= clock < self.end
        return clock >= self.start or clock < self.end  # spans midnight

    def end_after(self, local: datetime) -> datetime:
        """The naive wall time the window holding `local` ends."""
        day = local.date()
        if self.start > self.end and local.time() >= self.start:
            day += timedelta(days=1)
        return datetime.combine(day, self.end)


class SendoutTiming:
    """The send time of each recipient of one sendout (see the module docstring)."""

    def __init__(self, sendout: Sendout, quiet: QuietHours | None, mode: QuietMode,
                 now: datetime) -> None:
        self.name = sendout.name
        schedule = sendout.schedule
        self.local = schedule if isinstance(schedule, LocalSchedule) else None
        self.instant = schedule if isinstance(schedule, datetime) else None
        self.quiet = Quiet.of(quiet) if quiet is not None else None
        self.rule: ZoneRule = self.local or quiet or ZoneRule()
        self.where = "schedule" if self.local is not None else "quiet_hours"
        self.mode = mode
        self.now = now.astimezone(UTC)
        self._per_zone: dict[tuple[str, int], Timing] = {}
        # the common case, one lookup per recipient: no field value, zones from the number
        self._by_zones: dict[tuple[str, ...], Timing] = {}
        self._declared = stamp(self.instant) if self.instant is not None else None

    @property
    def field(self) -> str | None:
        return self.rule.field

    def zone_of(self, client: str, given: object, source: str) -> tuple[str, int]:
        """(IANA zone, ZONE_* bit) of one recipient; `given` is its `field` value."""
        rule = self.rule
        if given is not None and given != "":
            name = str(given)
            try:
                zone(name)
            except KeyError:
                raise DeclareError(
                    f"sendout {self.name}: {rule.field} {name!r} of {mask_phone(client)} is "
                    "not an IANA time zone", location=_row_location(source),
                    hint="write a zone name such as Europe/Berlin, or leave the cell empty "
                    "to use the number's zone") from None
            return name, ZONE_GIVEN
        if rule.timezone != "auto":
            return rule.timezone, ZONE_GIVEN
        zones = zones_for_number(client)
        if len(zones) == 1 and zones != UNKNOWN:
            return zones[0], ZONE_FROM_NUMBER
        if rule.fallback is not None:
            return rule.fallback, ZONE_FALLBACK
        what = "no known zone" if zones == UNKNOWN else f"several zones ({', '.join(zones)})"
        raise DeclareError(
            f"sendout {self.name}: the number {mask_phone(client)} has {what}",
            location=_row_location(source),
            hint=f"add `fallback: <IANA zone>` to the sendout's {self.where}"
            + (f", or a `{rule.field}` value for this recipient" if rule.field else
               ", or `field: <column>` naming each recipient's zone"))

    def timing(self, client: str, given: object, source: str) -> Timing:
        if (given is None or given == "") and self.rule.timezone == "auto":
            zones = zones_for_number(client)
            found = self._by_zones.get(zones)
            if found is None:
                found = self._slow(client, given, source)
                if (len(zones) == 1 and zones != UNKNOWN) or self.rule.fallback is not None:
                    self._by_zones[zones] = found
            return found
        return self._slow(client, given, source)

    def _slow(self, client: str, given: object, source: str) -> Timing:
        name, origin = self.zone_of(client, given, source)
        key = (name, origin)
        found = self._per_zone.get(key)
        if found is None:
            found = self._per_zone[key] = self._compute(name, origin)
        return found

    def _compute(self, name: str, origin: int) -> Timing:
        tz = zone(name)
        sent: str | None
        if self.local is not None:
            moment = localize(self.local.local, tz)
            sent = stamp(moment)
        elif self.instant is not None:
            moment, sent = self.instant.astimezone(tz), self._declared
        else:
            moment, sent = self.now.astimezone(tz), None
        hashed = sent
        flags = origin
        if self.quiet is not None and self.quiet.contains(wall(moment).time()):
            if self.mode == "hold":
                flags |= HELD
            else:
                flags |= SHIFTED
                sent = stamp(localize(self.quiet.end_after(wall(moment)), tz))
                if hashed is not None:
                    hashed = sent
        return Timing(sent, hashed, name, flags)


def sendout_timing(sendout: Sendout, default_quiet: QuietHours | None, mode: QuietMode,
                   now: datetime | None) -> SendoutTiming | None:
    """The timing policy of `sendout`; None when it needs none (no local schedule and no
    quiet hours: every entry gets the Sendout's own schedule, as before)."""
    quiet = sendout.quiet_hours
    effective = None if quiet == "none" else (quiet if quiet is not None else default_quiet)
    if effective is None and not isinstance(sendout.schedule, LocalSchedule):
        return None
    return SendoutTiming(sendout, effective, mode, now or clock.now())


Clock = Callable[[], datetime]

__all__ = ["HELD", "QUIET_MODES", "SHIFTED", "ZONE_FALLBACK", "ZONE_FROM_NUMBER",
           "ZONE_GIVEN", "Quiet", "QuietMode", "SendoutTiming", "Timing", "sendout_timing"]
