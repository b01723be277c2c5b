"""Diffing one sendout's entries against the folded ledger (see :mod:`plan` for the
actions and the decisions behind them)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from functools import partial
from itertools import compress, islice, repeat
from operator import attrgetter, eq, is_, methodcaller
from typing import Any

from connectly_declare import words
from connectly_declare.entry import E164, KEY_SEPARATOR, Entry
from connectly_declare.errors import Problem
from connectly_declare.ledger.base import KeyState, LedgerState
from connectly_declare.ledger.keyview import ABSENT, CHANGED, OTHER, SAME, classify
from connectly_declare.ledger.verdicts import INFERRED, is_permanent
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
FAILED_HINT = ("not sent again until its content changes, `connectly-declare apply "
               "--retry-failed {name}` asks for it, or `connectly-declare state resolve` "
               "settles it")


_SHAPE = attrgetter("sendout", "campaign", "version")
_MULTIPLE = attrgetter("allow_multiple")
_CLIENT = attrgetter("client")
_FINGERPRINT = attrgetter("fingerprint")
_VARIABLES = attrgetter("variables")
_WHEN = attrgetter("scheduled_at")
_KEYS = methodcaller("keys")
_SENDING = frozenset((ABSENT, CHANGED))  # verdicts whose entry is sent (allow_multiple)
_SENDING_ONE = frozenset((ABSENT,))  # ... under allow_one (CHANGED is drift)
_REASON_OF = {ABSENT: "", CHANGED: RESEND_REASON}  # of an entry sent, by verdict
_new_planned = partial(tuple.__new__, PlannedEntry)  # a PlannedEntry of an (a, e, r) tuple


def noun(count: int, one: str = "client", many: str = "clients") -> str:
    return words.count(count, one, many)


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
                 recovery: Recovery | None = None) -> None:
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
        self.to_send = Spool()  # kept on disk past its threshold (plan.spool)
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

    def _reason(self, action: Action, known: KeyState | None) -> str:
        if known is None:
            return ""
        recovery = self.recovery.reason(action, known)
        if recovery:
            return recovery
        other = known.sendout if known.sendout != self.spec.name else ""
        if action == "noop" and known.status == "accepted" and known.error:
            return known.error  # "inferred: already received ..."
        if action == "failed":
            return (f"failed: {known.error}; "
                    + FAILED_HINT.format(name=self.spec.name))
        if action in ("noop", "drift") and other:
            return f"already received via sendout {other}"
        if action == "drift":
            return DRIFT_REASON
        if action == "retry":
            why = "rejected before" if known.status == "rejected" else f"outcome {known.status}"
            return why + (f" ({known.error})" if known.error else "") + (
                f" via sendout {other}" if other else "")
        if action == "blocked":
            return (f"outcome {known.status} under allow_multiple: resolve it with "
                    "`connectly-declare state resolve`")
        if action == "resend":
            return RESEND_REASON
        return ""

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
            if not timed and self._bulk(chunk, verdicts):
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

    def _bulk(self, chunk: list[Entry], verdicts: list[int]) -> bool:
        """Diff a chunk at once, with map() over C getters instead of the per-entry loop,
        when that provably gives what the loop would: every entry of this sendout (the
        loop's mismatch test), verdicts ABSENT, SAME or CHANGED only (no KeyState to
        read), the samples of each action it meets already full (so none is taken here),
        and every entry to send passing the validity check (schedules `check` already
        found valid). Otherwise False, having changed nothing: the loop diffs the chunk."""
        if OTHER in verdicts:
            return False
        spec, want, samples = self.spec, self.options.samples, self.samples
        multiple = spec.allow_multiple
        changed: Action = "resend" if multiple else "drift"
        action_of: dict[int, Action] = {ABSENT: "send", SAME: "noop", CHANGED: changed}
        if any(len(samples[action_of[v]]) < want for v in set(verdicts)):
            return False
        shape = (spec.name, spec.campaign, spec.version)
        if not all(map(eq, map(_SHAPE, chunk), repeat(shape))) \
                or not all(map(is_, map(_MULTIPLE, chunk), repeat(multiple))):
            return False
        sending = _SENDING if multiple else _SENDING_ONE
        selected = list(map(sending.__contains__, verdicts))
        sends = list(compress(chunk, selected))
        clients = list(map(_CLIENT, sends))
        if not all(map(E164.fullmatch, clients)):
            return False
        required = self._required
        if required is not None and not all(
                map(eq, map(_KEYS, map(_VARIABLES, sends)), repeat(required))):
            return False
        schedules = Counter(map(_WHEN, sends))
        valid = self._valid_when
        if any(when is not None and when not in valid for when in schedules):
            return False
        # the loop's effects, in bulk
        counts = self.counts
        same, different = verdicts.count(SAME), verdicts.count(CHANGED)
        counts["send"] += verdicts.count(ABSENT)
        counts["noop"] += same
        counts[changed] += different
        self.matched_own += same + different
        if not self.options.allow_past_schedule:
            for when, count in schedules.items():
                if when is not None and self._in_past(when):
                    self.past[when] = self.past.get(when, 0) + count
        if sends:
            chosen = list(compress(verdicts, selected))
            self.to_send.extend(list(map(_new_planned, zip(
                map(action_of.__getitem__, chosen), sends,
                map(_REASON_OF.__getitem__, chosen), strict=True))))
            self._claim(clients)
        return True

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
        if not all(map(eq, map(_SHAPE, present), repeat(shape))) \
                or not all(map(is_, map(_MULTIPLE, present), repeat(multiple))):
            # an entry that does not match its sendout is never diffed (`mismatched`)
            present = [e for e in present
                       if _SHAPE(e) == shape and e.allow_multiple is multiple]
        shared.matched.update(list(map(_CLIENT, present)))

    def _classified(self, entries: Iterable[Entry]) -> Iterator[tuple[list[Entry], list[int]]]:
        """Chunks of entries, each with its keys' verdicts (ledger.keyview.classify), looked
        up a chunk at a time: in a compact index one np.searchsorted per chunk, no KeyState
        built for the common keys."""
        spec, keys = self.spec, self.keys
        scope = spec.name if spec.allow_multiple else ""
        stream = iter(entries)
        while chunk := list(islice(stream, _CHUNK)):
            yield chunk, classify(keys, spec.campaign, scope, spec.name,
                                  list(map(_CLIENT, chunk)), list(map(_FINGERPRINT, chunk)))

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
                      if held else self._reason(action, known))
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

    def notes(self) -> list[str]:
        spec, counts = self.spec, self.counts
        notes = list(self.rollout_notes)
        for other, count in sorted(self.via_other.items()):
            notes.append(f"{noun(count)} already received {spec.campaign!r} via sendout "
                         f"{other}: nothing is sent to them again")
        if counts["drift"]:
            notes.append(
                f"drift: {noun(counts['drift'])} received {spec.campaign!r} with other "
                "content (version, variables, schedule or round changed); under allow_one the "
                "server would reject a resend, so nothing is sent to them")
        if self.inferred:
            notes.append(
                f"{noun(self.inferred)} counted as received by inference ({INFERRED}): an "
                "earlier attempt's outcome was unknown and the server rejected the one-entry "
                "re-send of a locally valid entry as a repeat")
        if counts["failed"]:
            reasons = self.failed_reasons.most_common()
            shown = "; ".join(f"{n:,} × {why}" for why, n in reasons[:5])
            more = f"; and {len(reasons) - 5} other reasons" if len(reasons) > 5 else ""
            notes.append(
                f"failed: {noun(counts['failed'])} refused for good ({shown}{more}): "
                + FAILED_HINT.format(name=spec.name))
        if counts["blocked"]:
            notes.append(
                f"blocked: {noun(counts['blocked'])} have an unknown outcome under "
                "allow_multiple and are not sent again until resolved: check the Connectly "
                "inbox, then run `connectly-declare state resolve CLIENT --campaign "
                f"{spec.campaign!r} --as accepted|unsent`, or for many at once "
                f"`connectly-declare state resolve --sendout {spec.name} --status in-doubt "
                "--clients FILE --as accepted --reason WHY --dry-run`")
        notes.extend(self.recovery.notes(spec.name))
        if counts["held"]:
            notes.append(
                f"held: {noun(counts['held'])} would be messaged inside their quiet hours and "
                "are held back (--quiet-hours=hold); a later plan outside them sends them")
        if counts["capped"]:
            notes.append(
                f"capped: {noun(counts['capped'])} would pass a frequency cap and are not sent; "
                "a later plan sends them once the cap's window has moved")
        if counts["orphan"]:
            notes.append(
                f"orphan: {noun(counts['orphan'])} in the ledger for this sendout are no "
                "longer in its audience (nothing is done: a message cannot be unsent)")
        return notes

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
            notes=tuple(self.notes()), audience_stats=dict(stats), enabled=spec.enabled,
            waves=self.waves, timing=timing or {})



__all__ = ["SendoutDiff", "noun"]
