"""Diffing one sendout's entries against the folded ledger (see :mod:`plan` for the
actions and the decisions behind them)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from itertools import compress, islice, repeat
from operator import attrgetter, eq, is_
from typing import Any

from connectly_declare.entry import E164, KEY_SEPARATOR, Entry
from connectly_declare.errors import Problem
from connectly_declare.ledger.base import KeyState, LedgerState
from connectly_declare.ledger.keyview import ABSENT, CHANGED, SAME, classify
from connectly_declare.ledger.verdicts import INFERRED, is_permanent
from connectly_declare.plan.bulkdiff import CLIENT, MULTIPLE, SHAPE, bulk_diff
from connectly_declare.plan.counted import CountedSends
from connectly_declare.plan.diffnotes import entry_reason, noun, sendout_notes
from connectly_declare.plan.model import (
    ACTIONS,
    DRIFT_REASON,
    RESEND_REASON,
    SENDING_ACTIONS,
    Action,
    PlannedEntry,
    PlanOptions,
    SendoutPlan,
    SendoutSpec,
)
from connectly_declare.plan.recovery import Recovery
from connectly_declare.plan.rollout import WaveStatus
from connectly_declare.plan.shared import SharedCampaign
from connectly_declare.plan.spool import Spool
from connectly_declare.plan.validity import entry_checker, required_variables
from connectly_declare.policy.summary import timing_shape
from connectly_declare.policy.timing import HELD
from connectly_declare.seen import SeenSet

_CHUNK = 4096  # entries looked up in the ledger at once
_FINGERPRINT = attrgetter("fingerprint")


class SendoutDiff:
    """Diffs one sendout's entries.

    Bookkeeping is sized for ten million recipients: a compact set of this sendout's
    sending clients catches duplicates and matched ledger keys are only counted; when
    another planned ``allow_one`` sendout has the same campaign (so the two could share
    keys), `shared` (plan.shared) also checks each chunk's sending clients against the
    other sendouts' (conflicts) and notes the clients matched in the ledger (orphans,
    each key once).
    """

    def __init__(self, spec: SendoutSpec, state: LedgerState, options: PlanOptions,
                 now: datetime, shared: SharedCampaign | None,
                 recovery: Recovery | None = None, *, keep: bool = True) -> None:
        self.spec = spec
        self.recovery = recovery or Recovery(state, options.recover_in_doubt)
        self.keys = state.keys
        self.options = options
        self.now = now
        self.shared = shared
        # the clients of this sendout's sending keys (campaign and scope are this sendout's);
        # in a shared campaign, those no other sendout claimed first
        self.sending_keys = shared.join(spec.name) if shared is not None else SeenSet()
        self._claiming: list[str] = []  # sending clients of the chunk being diffed
        self.matched_own = 0  # ledger keys matched whose recorded sendout is this one
        self.matched_other: Counter[str] = Counter()  # ... recorded under another sendout
        self.counts: dict[Action, int] = dict.fromkeys(ACTIONS, 0)
        # kept on disk past its threshold (plan.spool); or, for a plan to show only, counted
        # (plan.counted: `keep` False)
        self.to_send: Spool = Spool() if keep else CountedSends()
        self.samples: dict[Action, list[PlannedEntry]] = {a: [] for a in ACTIONS}
        self.via_other: Counter[str] = Counter()
        self.conflicts: Counter[str] = Counter()
        self.duplicates = 0
        self.mismatched = 0
        self.past: dict[str, int] = {}
        # entries quiet hours held back and frequency caps capped (plan.make): tallied for
        # the timing summary, never listed (at scale that could be every entry)
        self.held: Counter[tuple[str, int]] = Counter()
        self.capped: Counter[tuple[str, int]] = Counter()
        self.capped_samples: list[PlannedEntry] = []  # the first capped, for display
        self._past_cache: dict[str, bool] = {}
        self.check = entry_checker(spec.variables)
        self._required = required_variables(spec.variables)  # as `check` tests them
        self._valid_when: set[str] = set()  # scheduledAt values `check` found valid
        self.failed_reasons: Counter[str] = Counter()  # why, for the notes
        self.inferred = 0  # accepted keys whose acceptance apply inferred
        self.inferred_samples: list[PlannedEntry] = []
        self._prefix = spec.campaign + KEY_SEPARATOR
        self._suffix = KEY_SEPARATOR + (spec.name if spec.allow_multiple else "")
        self.waves: tuple[WaveStatus, ...] = ()  # set by plan.rollout for rollout sendouts
        self.rollout_notes: list[str] = []

    def _action(self, entry: Entry, known: KeyState) -> Action:
        status = known.status
        multiple = self.spec.allow_multiple
        if status == "accepted":
            if known.fingerprint == entry.fingerprint:
                return "noop"
            return "resend" if multiple else "drift"
        if status == "rejected":
            if multiple and known.accepted_fingerprint == entry.fingerprint:
                return "noop"
            if (known.fingerprint == entry.fingerprint and is_permanent(known.error)
                    and not self.options.retries_failed(self.spec.name)):
                # Refused for what it holds (not found, not finalized, invalid, received
                # outside this ledger): the same request would be refused for ever.
                return "failed"
            return "retry"
        return self.recovery.action(known, self.spec.name) if multiple else "retry"

    def _in_past(self, scheduled_at: str) -> bool:
        cached = self._past_cache.get(scheduled_at)
        if cached is None:
            cached = self._past_cache[scheduled_at] = (
                datetime.fromisoformat(scheduled_at) < self.now)
        return cached

    def consume(self, entries: Iterable[Entry]) -> None:
        """Diff every entry. One tight loop over locals for the common cases (send, and an
        own key accepted before: noop / resend / drift); anything else goes to `_other`.
        It runs once per recipient, and at a million recipients attribute lookups and
        calls are most of the cost: so a chunk's entries to send and their clients are
        gathered in plain lists and handed to the spool and the duplicate check once per
        chunk, and the validity check is called only for an entry the inline test of the
        same three conditions does not pass (to name its reason)."""
        keys_get = self.keys.get
        spec = self.spec
        prefix, suffix, name = self._prefix, self._suffix, spec.name
        campaign, version, multiple = spec.campaign, spec.version, spec.allow_multiple
        changed: Action = "resend" if self.spec.allow_multiple else "drift"
        changed_reason = RESEND_REASON if self.spec.allow_multiple else DRIFT_REASON
        counts = dict.fromkeys(("send", "noop", changed), 0)
        matched_own = 0
        samples, want = self.samples, self.options.samples
        to_send = self.to_send
        check_past = not self.options.allow_past_schedule
        in_past = self._past_cache.get  # one lookup per entry (a few schedules per sendout)
        other = self._other
        check = self.check
        # plan.validity's three conditions, inline: E.164 client, exactly the version's
        # variables, a valid scheduledAt (those found valid by `check`, cached)
        fullmatch, required, valid_when = E164.fullmatch, self._required, self._valid_when
        timed = spec.timed  # quiet hours may hold entries back
        shared = self.shared  # a campaign shared with another allow_one sendout (or None)
        # sending clients, for the duplicate (and conflict) check: `_other` adds to it too
        clients = self._claiming
        sending = clients.append
        for chunk, verdicts in self._classified(entries):
            if shared is not None:
                self._matched(shared, chunk, verdicts)
            if not timed and bulk_diff(self, chunk, verdicts):
                continue
            sends: list[PlannedEntry] = []  # in order; handed to the spool per chunk
            send = sends.append
            for entry, verdict in zip(chunk, verdicts, strict=True):
                if (entry.sendout != name or entry.campaign != campaign
                        or entry.version != version or entry.allow_multiple is not multiple):
                    self.mismatched += 1
                    continue
                if timed and entry.timing & HELD:
                    if sends:  # `other` appends to the spool itself: keep the order
                        to_send.extend(sends)
                        sends.clear()
                    # entry.key, inlined
                    other(entry, keys_get(prefix + entry.client + suffix) if verdict else None)
                    continue
                if verdict == ABSENT:
                    action: Action = "send"
                    reason = ""
                elif verdict == SAME:  # own, accepted, same content, no error: no KeyState
                    matched_own += 1
                    action, reason = "noop", ""
                elif verdict == CHANGED:
                    matched_own += 1
                    action, reason = changed, changed_reason
                else:
                    known = keys_get(prefix + entry.client + suffix)
                    assert known is not None
                    if known.sendout != name:
                        if sends:
                            to_send.extend(sends)
                            sends.clear()
                        other(entry, known)
                        continue
                    matched_own += 1
                    if known.status != "accepted":
                        if sends:
                            to_send.extend(sends)
                            sends.clear()
                        other(entry, known)
                        continue
                    if known.fingerprint == entry.fingerprint:
                        action, reason = "noop", ""
                        if known.error is not None:  # accepted by inference: say so
                            self._inferred(entry, known)
                            continue
                    else:
                        action, reason = changed, changed_reason
                if action == "send" or action == "resend":
                    client, scheduled_at = entry.client, entry.scheduled_at
                    if (fullmatch(client) is None
                            or (required is not None and entry.variables.keys() != required)
                            or (scheduled_at is not None and scheduled_at not in valid_when)):
                        problem = check(entry)
                        if problem is not None:
                            self._invalid(entry, problem)
                            continue
                        if scheduled_at is not None:  # check found it valid
                            valid_when.add(scheduled_at)
                    counts[action] += 1
                    sending(client)  # twice in one sendout: counted in `problems`
                    if check_past and scheduled_at is not None \
                            and in_past(scheduled_at) is not False:
                        self._check_past(scheduled_at)
                    planned = PlannedEntry(action, entry, reason)
                    send(planned)
                    if len(samples[action]) < want:
                        samples[action].append(planned)
                    continue
                counts[action] += 1
                if len(samples[action]) < want:
                    samples[action].append(PlannedEntry(action, entry, reason))
            if sends:
                to_send.extend(sends)
            if clients:
                self._claim(clients)
                clients.clear()
        for action, count in counts.items():
            self.counts[action] += count
        self.matched_own += matched_own

    def _claim(self, clients: list[str]) -> None:
        """Note a chunk's sending clients: a repeat is a duplicate (counted in `problems`);
        in a shared campaign, one another sendout sends is a conflict instead."""
        if self.shared is None:
            self.sending_keys.update(clients)
            return
        self.conflicts.update(self.shared.claim(self.sending_keys, clients))

    def _matched(self, shared: SharedCampaign, chunk: list[Entry], verdicts: list[int]) -> None:
        """In a shared campaign: note the clients of this sendout's entries whose key the
        ledger holds (plan.make counts orphans from them, each key once however many of
        the campaign's sendouts matched it)."""
        if not any(verdicts):  # all ABSENT
            return
        present = list(compress(chunk, verdicts))
        spec = self.spec
        shape, multiple = (spec.name, spec.campaign, spec.version), spec.allow_multiple
        if not all(map(eq, map(SHAPE, present), repeat(shape))) \
                or not all(map(is_, map(MULTIPLE, present), repeat(multiple))):
            # an entry that does not match its sendout is never diffed (`mismatched`)
            present = [e for e in present
                       if SHAPE(e) == shape and e.allow_multiple is multiple]
        shared.matched.update(list(map(CLIENT, present)))

    def _classified(self, entries: Iterable[Entry]) -> Iterator[tuple[list[Entry], list[int]]]:
        """Chunks of entries, each with its keys' verdicts (ledger.keyview.classify), looked
        up a chunk at a time: in a compact index one np.searchsorted per chunk, no KeyState
        built for the common keys."""
        spec, keys = self.spec, self.keys
        scope = spec.name if spec.allow_multiple else ""
        stream = iter(entries)
        while chunk := list(islice(stream, _CHUNK)):
            yield chunk, classify(keys, spec.campaign, scope, spec.name,
                                  list(map(CLIENT, chunk)), list(map(_FINGERPRINT, chunk)))

    def _inferred(self, entry: Entry, known: KeyState) -> None:
        self.counts["noop"] += 1
        self.inferred += 1
        if len(self.inferred_samples) < self.options.samples:
            self.inferred_samples.append(PlannedEntry("noop", entry, known.error or INFERRED))

    def _invalid(self, entry: Entry, problem: str) -> None:
        """An entry the server would refuse as invalid: never sent, shown `failed`."""
        self.counts["failed"] += 1
        self.failed_reasons[problem] += 1
        samples = self.samples["failed"]
        if len(samples) < self.options.samples:
            samples.append(PlannedEntry("failed", entry, problem))

    def _check_past(self, scheduled_at: str) -> None:
        if self._in_past(scheduled_at):
            self.past[scheduled_at] = self.past.get(scheduled_at, 0) + 1

    def _other(self, entry: Entry, known: KeyState | None) -> None:
        """Every entry but an own, unchanged, already accepted one."""
        spec = self.spec
        action: Action
        if known is None:
            action = "send"
        else:
            if known.sendout != spec.name:  # own keys were counted by `consume`
                self.matched_other[known.sendout] += 1
            action = self._action(entry, known)
            if action in ("noop", "drift") and known.sendout != spec.name:
                self.via_other[known.sendout] += 1
            if action == "noop" and known.status == "accepted" and known.error is not None \
                    and known.sendout == spec.name:
                self._inferred(entry, known)
                return
            if action == "failed":
                self.failed_reasons[known.error or "rejected"] += 1
        if action in SENDING_ACTIONS:
            problem = self.check(entry)
            if problem is not None:
                self._invalid(entry, problem)
                return
        held = action in SENDING_ACTIONS and entry.timing & HELD
        if held:
            action = "held"  # quiet hours with --quiet-hours=hold: planned again later
            self.held[timing_shape(entry)] += 1
        self.counts[action] += 1
        sending = action in SENDING_ACTIONS
        if sending:
            # claimed with the rest of its chunk by `consume` (a repeat is counted in
            # `problems`, a conflict in `conflicts`)
            self._claiming.append(entry.client)
            if entry.scheduled_at is not None and not self.options.allow_past_schedule:
                self._check_past(entry.scheduled_at)
        samples = self.samples[action]
        if sending or len(samples) < self.options.samples:
            reason = (f"quiet hours in {entry.zone}: held back, planned again outside them"
                      if held else entry_reason(self, action, known))
            planned = PlannedEntry(action, entry, reason)
            if sending:
                self.to_send.append(planned)
            if len(samples) < self.options.samples:
                samples.append(planned)

    def cap(self, planned: PlannedEntry) -> None:
        """An entry to send that a frequency cap holds back (plan.make): tallied, and kept
        as a sample while there are fewer than the plan shows. The caller takes it out of
        `to_send` and its action's count."""
        self.capped[timing_shape(planned.entry)] += 1
        if len(self.capped_samples) < self.options.samples:
            self.capped_samples.append(planned)

    def wait(self, entry: Entry, reason: str) -> None:
        """An entry held back by a closed rollout gate (plan.rollout): counted, not sent."""
        self.counts["waiting"] += 1
        samples = self.samples["waiting"]
        if len(samples) < self.options.samples:
            samples.append(PlannedEntry("waiting", entry, reason))

    def problems(self) -> list[Problem]:
        spec, where = self.spec, self.spec.location
        problems = []
        sends = sum(self.counts[a] for a in SENDING_ACTIONS)
        if spec.max_recipients is not None and sends > spec.max_recipients:
            problems.append(Problem(
                where, f"sendout {spec.name} would send {noun(sends, 'entry', 'entries')}, more "
                f"than its "
                f"max_recipients {spec.max_recipients:,}",
                "raise max_recipients if this is intended, or fix the audience"))
        for scheduled_at, count in sorted(self.past.items()):
            problems.append(Problem(
                where, f"sendout {spec.name}: schedule {scheduled_at} is in the past and "
                f"{noun(count, 'entry', 'entries')} would be sent",
                "update the schedule, or pass --allow-past-schedule to send them now"))
        duplicates = self.duplicates + self.sending_keys.repeats  # one client twice in one
        if duplicates:  # sendout: never send both
            problems.append(Problem(
                where, f"sendout {spec.name} holds {noun(duplicates)} more than once",
                "each client may appear once per sendout; deduplicate the audience"))
        if self.mismatched:
            problems.append(Problem(
                where, f"sendout {spec.name}: "
                f"{noun(self.mismatched, 'entry does', 'entries do')} not match its "
                "campaign, version or options", "this is a bug in connectly-declare"))
        return problems

    def finish(self, stats: Mapping[str, int],
               timing: dict[str, Any] | None = None) -> SendoutPlan:
        spec = self.spec
        want = self.options.samples
        self.samples["noop"] = (self.inferred_samples + self.samples["noop"])[:want]
        samples = tuple(p for a in ACTIONS for p in self.samples[a])
        return SendoutPlan(
            name=spec.name, campaign=spec.campaign, version=spec.version,
            options=dict(spec.options), allow_multiple=spec.allow_multiple,
            counts=dict(self.counts), to_send=self.to_send, samples=samples,
            notes=tuple(sendout_notes(self)), audience_stats=dict(stats), enabled=spec.enabled,
            waves=self.waves, timing=timing or {})


__all__ = ["SendoutDiff"]
