"""Staged rollouts: which wave each recipient is in, and which waves' gates are open.

Membership is a stable hash, the same on every machine and in every process::

    h      = first 8 bytes of sha256(sendout name + NUL + E.164 client), big-endian
    bucket = h * 10,000 >> 64                      (in [0, 10000))

A ``percent: p`` wave holds everyone whose bucket is below ``round(p * 100)``; a
``count: n`` wave holds the n recipients with the smallest ``h``. Both pick a prefix of one
order (by ``h``), and waves are cumulative, so widening a wave (10% -> 20%, or a larger
count) only ever adds people. Each recipient belongs to the first wave that includes them;
recipients beyond the last wave wait until a wave includes them.

A wave's gate opens when the previous wave is *finished* (every one of its members was
attempted and none is in doubt) and all of its conditions hold:

- ``after``: that long since the previous wave's last accepted outcome (ledger times; an
  entry accepted ahead of its ``scheduledAt`` counts from that time, when it is delivered);
- ``approve``: a committed ``promote:`` record names the wave;
- ``max_rejected_percent``: at most that share of the previous wave's outcomes were
  rejections (otherwise the rollout is *halted* and says why).

Entries of later waves whose schedule has passed when their wave opens are timed as
"now" (quiet hours included) by :func:`retimer`; their fingerprint keeps the declared
schedule. Only entries that would be *sent* for the first time wait: anyone the ledger already knows
(accepted, rejected, in doubt) is diffed as usual, so retries, drift and resends behave as
without a rollout. Everything here is pure: the same entries, ledger and clock give the
same result.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from connectly_declare.entry import Entry
from connectly_declare.ledger.base import ALREADY_RECEIVED, KeyState

if TYPE_CHECKING:
    from connectly_declare.policy.timing import QuietMode
    from connectly_declare.workspace.manifests import QuietHours, Sendout

BUCKETS = 10_000
_SPACE = 1 << 64
_DURATION = re.compile(r"^(?=\d)(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def member_hash(sendout: str, client: str) -> int:
    """The 64-bit hash that orders a sendout's recipients for its rollout."""
    digest = hashlib.sha256(f"{sendout}\0{client}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def bucket(sendout: str, client: str) -> int:
    """The client's bucket in [0, 10000) for `sendout` (percent p holds buckets < p*100)."""
    return member_hash(sendout, client) * BUCKETS >> 64


def parse_duration(text: str) -> timedelta:
    """``2h``, ``1d``, ``1h30m``, ``90s`` -> timedelta (ValueError otherwise)."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"not a duration: {text!r} (use e.g. 2h, 1d, 1h30m, 90s)")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def short_time(when: datetime) -> str:
    """2027-12-20T12:14Z (UTC, to the minute, rounded up so "opens" is never early)."""
    when = when.astimezone(UTC)
    if when.second or when.microsecond:
        when = when.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return when.strftime("%Y-%m-%dT%H:%MZ")


def _parse_at(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@dataclass(frozen=True)
class WaveSpec:
    """One wave as the plan needs it (from the manifest's ``rollout:``)."""

    percent: float | None = None
    count: int | None = None
    after: str | None = None  # the manifest's duration text, e.g. "2h"
    approve: bool = False
    max_rejected_percent: float | None = None
    approved_by: str | None = None  # from a `promote:` record naming this wave

    @property
    def size(self) -> str:
        if self.percent is not None:
            return f"{self.percent:g}%"
        return f"{self.count:,}"


@dataclass(frozen=True)
class WaveStatus:
    """What the plan says about one wave (plain data: saved in plan files, shown)."""

    number: int  # 1-based
    of: int
    size: str  # "10%" or "500" (cumulative, as declared)
    entries: int  # recipients whose first wave this is
    state: str  # done | open | waiting | halted
    current: bool = False
    opens_at: str | None = None  # when the `after` gate opens (UTC, to the minute)
    finished_at: str | None = None  # done waves: the last accepted outcome
    gate: str = ""  # the pending gate or halt, in words

    def describe(self) -> str:
        """``wave 2 of 3: 9,000 entries, opens 2027-12-20T12:14Z (2h after wave 1
        finished)``"""
        head = f"wave {self.number} of {self.of} ({self.size}): {self.entries:,} " + (
            "entry" if self.entries == 1 else "entries")
        if self.state == "done":
            tail = "done" + (f", finished {self.finished_at}" if self.finished_at else "")
        elif self.state == "open":
            tail = "open: sending" + (f"; {self.gate}" if self.gate else "")
        else:
            tail = self.gate
        return f"{head}, {tail}" + (" [current]" if self.current else "")

    def as_dict(self) -> dict[str, object]:
        return {"wave": self.number, "of": self.of, "size": self.size,
                "entries": self.entries, "state": self.state, "current": self.current,
                "opens_at": self.opens_at, "finished_at": self.finished_at,
                "gate": self.gate}

    @classmethod
    def from_dict(cls, obj: Mapping[str, object]) -> WaveStatus:
        def text(name: str) -> str | None:
            value = obj.get(name)
            return None if value is None else str(value)

        return cls(number=int(str(obj["wave"])), of=int(str(obj["of"])),
                   size=str(obj["size"]), entries=int(str(obj["entries"])),
                   state=str(obj["state"]), current=bool(obj.get("current")),
                   opens_at=text("opens_at"), finished_at=text("finished_at"),
                   gate=str(obj.get("gate") or ""))


@dataclass
class _Tally:
    """One wave's members against the ledger."""

    members: int = 0
    pending: int = 0  # never attempted, or in doubt (unknown / partial)
    accepted: int = 0
    rejected: int = 0
    last_accepted: datetime | None = None
    last_outcome: datetime | None = None


@dataclass
class Staged:
    """A rollout sendout's entries split by its gates."""

    to_diff: list[Entry] = field(default_factory=list)  # diffed as usual
    waiting: list[tuple[Entry, int]] = field(default_factory=list)  # (entry, wave index)
    waves: tuple[WaveStatus, ...] = ()
    reasons: dict[int, str] = field(default_factory=dict)  # wave index -> why it waits
    notes: list[str] = field(default_factory=list)


def _thresholds(waves: tuple[WaveSpec, ...], hashes: list[int]) -> list[int]:
    """Per wave, the cumulative hash bound: members have h < bound."""
    ordered: list[int] | None = None
    bounds = []
    highest = 0
    for wave in waves:
        if wave.percent is not None:
            bound = -(-(round(wave.percent * 100) * _SPACE) // BUCKETS)
        else:
            if ordered is None:
                ordered = sorted(hashes)
            count = wave.count or 0
            bound = _SPACE if count >= len(ordered) else ordered[count]
        highest = max(highest, bound)
        bounds.append(highest)
    return bounds


def _wave_of(h: int, bounds: list[int]) -> int:
    for index, bound in enumerate(bounds):
        if h < bound:
            return index
    return len(bounds)


def _tally(entry: Entry, known: KeyState | None, tally: _Tally, sendout: str,
           scheduled: bool) -> None:
    tally.members += 1
    if known is None or known.status in ("unknown", "partial"):
        tally.pending += 1
        return
    at = _parse_at(known.last_at)
    due = _parse_at(entry.scheduled_at) if scheduled else None
    if at is not None and due is not None and due > at:
        at = due  # accepted ahead of its schedule: the wave is done when it is delivered
    if known.status == "accepted":
        tally.accepted += 1
        if at is not None and known.sendout == sendout and (
                tally.last_accepted is None or at > tally.last_accepted):
            tally.last_accepted = at
    elif not (known.error or "").startswith(ALREADY_RECEIVED):
        tally.rejected += 1
    if at is not None and (tally.last_outcome is None or at > tally.last_outcome):
        tally.last_outcome = at


def stage(sendout: str, waves: tuple[WaveSpec, ...], entries: Iterable[Entry],
          keys: Mapping[str, KeyState], now: datetime, *,
          retime: Callable[[Entry], Entry] | None = None, scheduled: bool = True) -> Staged:
    """Split a rollout sendout's entries: those diffed as usual, and those that wait for
    a closed gate; and say, per wave, where the rollout stands. `retime` (see
    :func:`retimer`) times entries of later waves whose schedule has passed; `scheduled`
    says whether entries' scheduledAt is a declared schedule (then a wave accepted ahead
    of it is delivered at that time) or at most a shift of this plan's "now"."""
    items = [(entry, member_hash(sendout, entry.client)) for entry in entries]
    bounds = _thresholds(waves, [h for _, h in items])
    tallies = [_Tally() for _ in range(len(waves) + 1)]
    placed = []
    for entry, h in items:
        index = _wave_of(h, bounds)
        known = keys.get(entry.key)
        _tally(entry, known, tallies[index], sendout, scheduled)
        if retime is not None and index > 0 and entry.scheduled_at is not None:
            due = _parse_at(entry.scheduled_at) if scheduled else None
            if due is not None and due <= now:
                entry = retime(entry)
        placed.append((entry, index, known))
    staged = Staged()
    statuses, open_through = _gates(waves, tallies, now, staged)
    staged.waves = tuple(statuses)
    for entry, index, known in placed:
        if index <= open_through or known is not None:
            staged.to_diff.append(entry)
        else:
            staged.waiting.append((entry, index))
    for index, status in enumerate(staged.waves[:-1]):
        if status.entries == 0 and index + 1 <= open_through:
            staged.notes.append(
                f"rollout: wave {index + 1} ({waves[index].size}) holds nobody of this "
                "audience, so the next wave had nothing to wait on; use count: for a "
                "canary of a small audience")
    beyond = tallies[len(waves)].members
    if beyond:
        staged.reasons[len(waves)] = (f"in no wave yet: the last wave covers "
                                      f"{waves[-1].size}")
        staged.notes.append(
            f"rollout: {beyond:,} recipients are beyond the last wave ({waves[-1].size}) "
            "and wait until a wave includes them (end the rollout with percent: 100)")
    return staged


def retimer(sendout: Sendout, default_quiet: QuietHours | None, mode: QuietMode,
            now: datetime) -> Callable[[Entry], Entry]:
    """How a later wave's entry is timed once its schedule has passed: as a sendout
    without a schedule would be *now* (the wave opens now), so the recipient's quiet hours
    are checked at the time it actually goes out, not at the first wave's time.

    Only what is sent changes: the fingerprint keeps hashing the declared schedule, so
    the entry's content is the same in every plan (no drift or resend because a wave
    opened late)."""
    from connectly_declare.policy.timing import HELD, sendout_timing

    timing = sendout_timing(sendout.model_copy(update={"schedule": None}), default_quiet,
                            mode, now)

    def retime(entry: Entry) -> Entry:
        if timing is None:
            return replace(entry, scheduled_at=None)
        got = timing.timing(entry.client, entry.zone or None, entry.source)
        flags = entry.timing | (got.flags & HELD)
        return replace(entry, scheduled_at=got.scheduled_at, zone=got.zone, timing=flags)

    return retime


def _anchor(tallies: list[_Tally], index: int) -> tuple[int, _Tally] | None:
    """The nearest wave at or before `index` with members (an empty wave has nothing
    to measure)."""
    for earlier in range(index, -1, -1):
        if tallies[earlier].members:
            return earlier, tallies[earlier]
    return None


def _gates(waves: tuple[WaveSpec, ...], tallies: list[_Tally], now: datetime,
           staged: Staged) -> tuple[list[WaveStatus], int]:
    """Per wave its status; and the index of the last open wave (-1: none)."""
    total = len(waves)
    statuses: list[WaveStatus] = []
    open_through = -1
    closed = False
    for index, wave in enumerate(waves):
        number = index + 1
        tally = tallies[index]
        base = WaveStatus(number=number, of=total, size=wave.size, entries=tally.members,
                          state="waiting")
        if closed:
            gate = f"waits for wave {number - 1}" + _conditions(wave)
            statuses.append(replace(base, gate=gate))
            staged.reasons[index] = f"wave {number} of {total}: {gate}"
            continue
        blocked, opens_at, state = _blockers(waves, tallies, index, now)
        if blocked:
            closed = True
            gate = "; ".join(blocked)
            statuses.append(replace(base, state=state, gate=gate, opens_at=opens_at))
            staged.reasons[index] = f"wave {number} of {total}: {gate}"
            if state == "halted":
                staged.notes.append(f"rollout halted before wave {number}: {gate}")
            continue
        open_through = index
        finished = all(t.pending == 0 for t in tallies[:index + 1])
        last = tally.last_accepted or tally.last_outcome
        statuses.append(replace(
            base, state="done" if finished else "open", opens_at=opens_at,
            finished_at=short_time(last) if finished and last else None,
            gate=f"approved by {wave.approved_by}" if wave.approve else ""))
    current = next((i for i, s in enumerate(statuses) if s.state != "done"), None)
    if current is not None:
        statuses[current] = replace(statuses[current], current=True)
    return statuses, open_through


def _conditions(wave: WaveSpec) -> str:
    parts = []
    if wave.after:
        parts.append(f"{wave.after}")
    if wave.approve and wave.approved_by is None:
        parts.append("an approval (promote)")
    if wave.max_rejected_percent is not None:
        parts.append(f"at most {wave.max_rejected_percent:g}% rejected")
    return (", then " + " and ".join(parts)) if parts else " to finish"


def _blockers(waves: tuple[WaveSpec, ...], tallies: list[_Tally], index: int,
              now: datetime) -> tuple[list[str], str | None, str]:
    """Why wave `index` is not open yet (empty: it is), when its timer opens, and the
    state to show when it is closed (waiting or halted)."""
    wave = waves[index]
    number = index + 1
    blocked: list[str] = []
    opens_at: str | None = None
    if index > 0:
        unfinished = sum(t.pending for t in tallies[:index])
        if unfinished:
            blocked.append(f"waits for wave {number - 1} to finish ({unfinished:,} not sent "
                           "or in doubt)" + _conditions(wave).replace(" to finish", ""))
            return blocked, None, "waiting"
        anchor = _anchor(tallies, index - 1)
        if wave.max_rejected_percent is not None and anchor is not None:
            prev, tally = anchor
            outcomes = tally.accepted + tally.rejected
            share = 100.0 * tally.rejected / outcomes if outcomes else 0.0
            if share > wave.max_rejected_percent:
                return [f"halted: {share:.1f}% of wave {prev + 1} was rejected "
                        f"({tally.rejected:,} of {outcomes:,}), more than "
                        f"max_rejected_percent {wave.max_rejected_percent:g}; fix the cause and "
                        "send them again (a content change, or --retry-failed), or raise "
                        "the limit"], None, "halted"
        if wave.after:
            delay = parse_duration(wave.after)
            last = None if anchor is None else (anchor[1].last_accepted
                                                 or anchor[1].last_outcome)
            if last is not None:
                when = last + delay
                opens_at = short_time(when)
                if now < when:
                    blocked.append(f"opens {opens_at} ({wave.after} after wave "
                                   f"{anchor[0] + 1 if anchor else number - 1} finished)")
    if wave.approve and wave.approved_by is None:
        blocked.append(f"needs approval: commit `promote: [{{wave: {number}, by: NAME}}]` "
                       "in the sendout")
    return blocked, opens_at, "waiting"


__all__ = ["BUCKETS", "Staged", "WaveSpec", "WaveStatus", "bucket", "member_hash",
           "parse_duration", "retimer", "short_time", "stage"]
