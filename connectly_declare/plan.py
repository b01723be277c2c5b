"""The plan: desired entries diffed against the folded ledger, as plain data.

:func:`make_plan` is pure: it reads entries once, keeps every entry that would be sent and
only counts (plus a few samples of) the others, and returns the same :class:`Plan` for the
same inputs. Actions per key (DESIGN.md, "Plan actions"):

==========  ===========================================================================
``send``     key not in the ledger
``noop``     accepted before with the same fingerprint
``resend``   accepted before, fingerprint changed, the sendout allows multiple sends
``drift``    accepted before, fingerprint changed, ``allow_one`` (the server would reject)
``retry``    rejected before, or outcome unknown/partial under ``allow_one`` (the server
             dedupes, so sending again is safe)
``blocked``  outcome unknown/partial under ``allow_multiple`` (resolve it first)
``orphan``   in the ledger, no longer declared (a message cannot be unsent)
==========  ===========================================================================

Decisions where DESIGN.md is silent:

- A disabled sendout plans nothing and its ledger keys are *not* orphans: it is paused,
  not removed. With ``--target``, orphans are only looked for among the targeted sendouts.
- Under ``allow_multiple``, a key whose latest attempt was rejected but whose desired
  fingerprint is the one delivered earlier is a ``noop`` (the person has exactly that).
- A past schedule is only an error for entries that would be *sent*: a sendout fully sent
  before its schedule passed plans as ``noop`` without complaint.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

from connectly_declare import __version__
from connectly_declare.entry import KEY_SEPARATOR, Entry, split_key
from connectly_declare.errors import Location, PlanError, Problem, StalePlan
from connectly_declare.ledger.base import KeyState, Ledger, LedgerState
from connectly_declare.ledger.fold import no_gc

if TYPE_CHECKING:
    from connectly_declare.manifests import Sendout
    from connectly_declare.workspace import Workspace

Action = Literal["send", "noop", "resend", "drift", "retry", "blocked", "orphan"]
ACTIONS: tuple[Action, ...] = ("send", "resend", "retry", "noop", "drift", "blocked", "orphan")
SENDING_ACTIONS: tuple[Action, ...] = ("send", "resend", "retry")
PLAN_FORMAT_VERSION = 1
CREATED_BY = f"connectly-declare {__version__}"
DRIFT_REASON = "accepted before with other content; allow_one: the server would reject it"
RESEND_REASON = "accepted before with other content; allow_multiple"


@dataclass(frozen=True, slots=True)
class PlannedEntry:
    """One entry and what the plan does with it."""

    action: Action
    entry: Entry
    reason: str = ""


@dataclass(frozen=True)
class SendoutSpec:
    """What the plan needs to know of a Sendout manifest besides its entries."""

    name: str
    campaign: str
    version: str | None = None
    options: Mapping[str, str] = field(default_factory=dict)
    allow_multiple: bool = False
    max_recipients: int | None = None
    enabled: bool = True
    location: Location = field(default_factory=Location)  # the manifest, for errors

    @classmethod
    def of(cls, sendout: Sendout, location: Location | None = None) -> SendoutSpec:
        """The spec of a Sendout manifest."""
        return cls(name=sendout.name, campaign=sendout.campaign, version=sendout.version,
                   options=sendout.options.as_api(),
                   allow_multiple=sendout.options.allow_multiple,
                   max_recipients=sendout.max_recipients, enabled=sendout.enabled,
                   location=location or Location())


@dataclass(frozen=True)
class DesiredSendout:
    """A sendout and its entries (read once, lazily). ``audience_stats`` is read after the
    entries are consumed, so the audience code may fill it while they stream."""

    spec: SendoutSpec
    entries: Iterable[Entry] = ()
    # a mapping, or a function returning one (called once the entries are consumed)
    audience_stats: Mapping[str, int] | Callable[[], Mapping[str, int]] = field(
        default_factory=dict)


@dataclass(frozen=True)
class PlanOptions:
    targets: tuple[str, ...] = ()
    max_recipients: int | None = None
    allow_past_schedule: bool = False
    batch_size: int = 100
    samples: int = 3  # sample entries kept per sendout and action, for display

    def as_dict(self) -> dict[str, Any]:
        return {"targets": list(self.targets), "max_recipients": self.max_recipients,
                "allow_past_schedule": self.allow_past_schedule, "batch_size": self.batch_size}


@dataclass(frozen=True)
class SendoutPlan:
    name: str
    campaign: str
    version: str | None
    options: dict[str, str]  # the API's options object for this sendout's requests
    allow_multiple: bool
    counts: dict[Action, int]
    to_send: tuple[PlannedEntry, ...]  # send/resend/retry, in the entries' order
    samples: tuple[PlannedEntry, ...]  # a few entries of each action, for display
    notes: tuple[str, ...]  # drift/blocked/orphan/other-sendout warnings with counts
    audience_stats: dict[str, int]
    enabled: bool = True

    @property
    def sends(self) -> int:
        return sum(self.counts[a] for a in SENDING_ACTIONS)


@dataclass(frozen=True)
class OrphanCount:
    """Ledger keys of a (sendout, campaign) that nothing declares any more."""

    sendout: str
    campaign: str
    count: int


@dataclass(frozen=True)
class Plan:
    format_version: int
    created_by: str
    workspace_digest: str
    environment: str | None
    business_id: str | None
    lineage: str | None  # of the ledger the plan was made against (None: no ledger yet)
    serial: int
    options: dict[str, Any]
    sendouts: tuple[SendoutPlan, ...]
    orphans: tuple[OrphanCount, ...] = ()
    warnings: tuple[str, ...] = ()

    def total(self, action: Action) -> int:
        return sum(s.counts[action] for s in self.sendouts)

    @property
    def sends(self) -> int:
        return sum(s.sends for s in self.sendouts)

    @property
    def has_changes(self) -> bool:
        """Whether applying this plan would send anything."""
        return self.sends > 0

    def iter_sends(self) -> Iterator[tuple[SendoutPlan, PlannedEntry]]:
        for sendout in self.sendouts:
            for planned in sendout.to_send:
                yield sendout, planned


class PlanRefused(PlanError):
    """Every guard a plan failed, at once."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self._problems = sorted(set(problems))
        first = str(self._problems[0])
        count = len(self._problems)
        super().__init__(first if count == 1 else f"{count} problems, first: {first}")

    @property
    def problems(self) -> list[Problem]:
        return list(self._problems)


def check_fresh(plan: Plan, state: LedgerState) -> None:
    """Raise StalePlan when the ledger moved on since `plan` was made."""
    if plan.lineage != state.lineage or plan.serial != state.serial:
        raise StalePlan(
            f"the saved plan was made against ledger {plan.lineage or '(empty)'} at serial "
            f"{plan.serial}, but the ledger is now {state.lineage or '(empty)'} at serial "
            f"{state.serial}: something was applied since",
            hint="run `connectly-declare plan --out FILE` again and review the new plan",
        )


def _noun(count: int, one: str = "client", many: str = "clients") -> str:
    return f"{count:,} {one if count == 1 else many}"


class _SendoutPlanner:
    """Diffs one sendout's entries.

    Bookkeeping is sized for a million recipients: only when another planned ``allow_one``
    sendout has the same campaign (so the two could share keys) are keys tracked in the
    shared `claimed` dict (conflicts) and `seen` set (orphans); otherwise a set of this
    sendout's sending keys catches duplicates and matched ledger keys are only counted.
    """

    def __init__(self, spec: SendoutSpec, state: LedgerState, options: PlanOptions,
                 now: datetime, shared: tuple[dict[str, str], set[str]] | None) -> None:
        self.spec = spec
        self.keys = state.keys
        self.options = options
        self.now = now
        self.claimed: dict[str, str] | None = shared[0] if shared is not None else None
        self.seen: set[str] | None = shared[1] if shared is not None else None
        self.sending_keys: set[str] = set()
        self.matched_own = 0  # ledger keys matched whose recorded sendout is this one
        self.matched_other: Counter[str] = Counter()  # ... recorded under another sendout
        self.counts: dict[Action, int] = dict.fromkeys(ACTIONS, 0)
        self.to_send: list[PlannedEntry] = []
        self.samples: dict[Action, list[PlannedEntry]] = {a: [] for a in ACTIONS}
        self.via_other: Counter[str] = Counter()
        self.conflicts: Counter[str] = Counter()
        self.duplicates = 0
        self.mismatched = 0
        self.past: dict[str, int] = {}
        self._past_cache: dict[str, bool] = {}
        self._ident = (spec.name, spec.campaign, spec.version, spec.allow_multiple)
        self._prefix = spec.campaign + KEY_SEPARATOR
        self._suffix = KEY_SEPARATOR + (spec.name if spec.allow_multiple else "")

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
            return "retry"
        return "blocked" if multiple else "retry"

    def _reason(self, action: Action, known: KeyState | None) -> str:
        if known is None:
            return ""
        other = known.sendout if known.sendout != self.spec.name else ""
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
        calls are most of the cost."""
        keys_get = self.keys.get
        ident, prefix, suffix, name = self._ident, self._prefix, self._suffix, self.spec.name
        fast = self.seen is None  # no campaign shared with another allow_one sendout
        changed: Action = "resend" if self.spec.allow_multiple else "drift"
        changed_reason = RESEND_REASON if self.spec.allow_multiple else DRIFT_REASON
        counts = dict.fromkeys(("send", "noop", changed), 0)
        matched_own = 0
        samples, want = self.samples, self.options.samples
        to_send, sending_keys = self.to_send, self.sending_keys
        check_past = not self.options.allow_past_schedule
        other = self._other
        for entry in entries:
            if (entry.sendout, entry.campaign, entry.version, entry.allow_multiple) != ident:
                self.mismatched += 1
                continue
            key = prefix + entry.client + suffix  # entry.key, inlined
            known = keys_get(key)
            if not fast:
                other(entry, key, known)
                continue
            if known is None:
                action: Action = "send"
                reason = ""
            elif known.sendout == name:
                matched_own += 1
                if known.status != "accepted":
                    other(entry, key, known)
                    continue
                if known.fingerprint == entry.fingerprint:
                    action, reason = "noop", ""
                else:
                    action, reason = changed, changed_reason
            else:
                other(entry, key, known)
                continue
            counts[action] += 1
            if action == "send" or action == "resend":
                before = len(sending_keys)
                sending_keys.add(key)
                if len(sending_keys) == before:
                    self.duplicates += 1  # one client twice in one sendout: never send both
                if check_past and entry.scheduled_at is not None:
                    self._check_past(entry.scheduled_at)
                planned = PlannedEntry(action, entry, reason)
                to_send.append(planned)
                if len(samples[action]) < want:
                    samples[action].append(planned)
            elif len(samples[action]) < want:
                samples[action].append(PlannedEntry(action, entry, reason))
        for action, count in counts.items():
            self.counts[action] += count
        self.matched_own += matched_own

    def _check_past(self, scheduled_at: str) -> None:
        if self._in_past(scheduled_at):
            self.past[scheduled_at] = self.past.get(scheduled_at, 0) + 1

    def _other(self, entry: Entry, key: str, known: KeyState | None) -> None:
        """Every entry but an own, unchanged, already accepted one."""
        spec = self.spec
        action: Action
        if known is None:
            action = "send"
        else:
            if self.seen is not None:
                self.seen.add(known.key)
            elif known.sendout != spec.name:  # own keys were counted by `consume`
                self.matched_other[known.sendout] += 1
            action = self._action(entry, known)
            if action in ("noop", "drift") and known.sendout != spec.name:
                self.via_other[known.sendout] += 1
        self.counts[action] += 1
        sending = action in SENDING_ACTIONS
        if sending:
            if self.claimed is None:
                before = len(self.sending_keys)
                self.sending_keys.add(key)
                if len(self.sending_keys) == before:
                    self.duplicates += 1  # one client twice in one sendout: never send both
            else:
                owner = self.claimed.get(key)
                if owner is None:
                    self.claimed[key] = spec.name
                elif owner == spec.name:
                    self.duplicates += 1
                else:
                    self.conflicts[owner] += 1
            if entry.scheduled_at is not None and not self.options.allow_past_schedule:
                self._check_past(entry.scheduled_at)
        samples = self.samples[action]
        if sending or len(samples) < self.options.samples:
            planned = PlannedEntry(action, entry, self._reason(action, known))
            if sending:
                self.to_send.append(planned)
            if len(samples) < self.options.samples:
                samples.append(planned)

    def notes(self) -> list[str]:
        spec, counts = self.spec, self.counts
        notes = []
        for other, count in sorted(self.via_other.items()):
            notes.append(f"{_noun(count)} already received {spec.campaign!r} via sendout "
                         f"{other}: nothing is sent to them again")
        if counts["drift"]:
            notes.append(
                f"drift: {_noun(counts['drift'])} received {spec.campaign!r} with other "
                "content (version, variables, schedule or round changed); under allow_one the "
                "server would reject a resend, so nothing is sent to them")
        if counts["blocked"]:
            notes.append(
                f"blocked: {_noun(counts['blocked'])} have an unknown outcome under "
                "allow_multiple and are not sent again until resolved: check the Connectly "
                "inbox, then run `connectly-declare state resolve CLIENT --campaign "
                f"{spec.campaign!r} --as accepted|unsent`")
        if counts["orphan"]:
            notes.append(
                f"orphan: {_noun(counts['orphan'])} in the ledger for this sendout are no "
                "longer in its audience (nothing is done: a message cannot be unsent)")
        return notes

    def problems(self) -> list[Problem]:
        spec, where = self.spec, self.spec.location
        problems = []
        sends = sum(self.counts[a] for a in SENDING_ACTIONS)
        if spec.max_recipients is not None and sends > spec.max_recipients:
            problems.append(Problem(
                where, f"sendout {spec.name} would send {sends:,} entries, more than its "
                f"max_recipients {spec.max_recipients:,}",
                "raise max_recipients if this is intended, or fix the audience"))
        for scheduled_at, count in sorted(self.past.items()):
            problems.append(Problem(
                where, f"sendout {spec.name}: schedule {scheduled_at} is in the past and "
                f"{_noun(count, 'entry', 'entries')} would be sent",
                "update the schedule, or pass --allow-past-schedule to send them now"))
        if self.duplicates:
            problems.append(Problem(
                where, f"sendout {spec.name} holds {_noun(self.duplicates)} more than once",
                "each client may appear once per sendout; deduplicate the audience"))
        if self.mismatched:
            problems.append(Problem(
                where, f"sendout {spec.name}: {self.mismatched:,} entries do not match its "
                "campaign, version or options", "this is a bug in connectly-declare"))
        return problems

    def finish(self, stats: Mapping[str, int]) -> SendoutPlan:
        spec = self.spec
        samples = tuple(p for a in ACTIONS for p in self.samples[a])
        return SendoutPlan(
            name=spec.name, campaign=spec.campaign, version=spec.version,
            options=dict(spec.options), allow_multiple=spec.allow_multiple,
            counts=dict(self.counts), to_send=tuple(self.to_send), samples=samples,
            notes=tuple(self.notes()), audience_stats=dict(stats), enabled=spec.enabled)


def _select(desired: Iterable[DesiredSendout], targets: tuple[str, ...]) -> list[DesiredSendout]:
    chosen = sorted(desired, key=lambda d: d.spec.name)
    names = [d.spec.name for d in chosen]
    if targets:
        unknown = sorted(set(targets) - set(names))
        if unknown:
            raise PlanError(
                f"--target names no sendout: {', '.join(unknown)}",
                hint=f"known sendouts: {', '.join(names) or 'none'}")
        chosen = [d for d in chosen if d.spec.name in targets]
    return chosen


def _conflict_problems(planners: list[_SendoutPlanner]) -> list[Problem]:
    problems = []
    for planner in planners:
        for other, count in sorted(planner.conflicts.items()):
            spec = planner.spec
            problems.append(Problem(
                spec.location,
                f"sendouts {other} and {spec.name} would both send campaign {spec.campaign!r} "
                f"to the same {_noun(count)} under allow_one (the server would silently "
                "reject the second)",
                "exclude one audience from the other, disable one, or --target one of them"))
    return problems


def _orphans(state: LedgerState, seen: set[str], planners: dict[str, _SendoutPlanner],
             skip: set[str], targets: tuple[str, ...]) -> tuple[OrphanCount, ...]:
    """Ledger keys nothing planned declares, per (recorded sendout, campaign).

    Counted, not searched: per sendout, its keys in the ledger minus those the planners
    matched; only sendouts with orphans have their keys split to name the campaign."""
    def relevant(sendout: str) -> bool:
        return sendout not in skip and (not targets or sendout in targets)

    totals = Counter(known.sendout for known in state.keys.values())
    matched: Counter[tuple[str, str]] = Counter()  # (recorded sendout, campaign)
    for planner in planners.values():
        campaign = planner.spec.campaign
        matched[(planner.spec.name, campaign)] += planner.matched_own
        for sendout, count in planner.matched_other.items():
            matched[(sendout, campaign)] += count
    with_orphans = {s for s, n in totals.items() if relevant(s)
                    and n > sum(c for (o, _), c in matched.items() if o == s)}
    if not with_orphans and not seen:
        return ()
    counts: Counter[tuple[str, str]] = Counter()
    for key, known in state.keys.items():
        if (known.sendout in with_orphans or seen) and relevant(known.sendout) \
                and key not in seen:
            counts[(known.sendout, split_key(key)[0])] += 1
    counts.subtract(matched)
    orphans = tuple(OrphanCount(s, c, n) for (s, c), n in sorted(counts.items()) if n > 0)
    for orphan in orphans:
        if orphan.sendout in planners:
            planners[orphan.sendout].counts["orphan"] += orphan.count
    return orphans


def make_plan(
    desired: Iterable[DesiredSendout],
    state: LedgerState,
    options: PlanOptions,
    *,
    now: datetime,
    workspace_digest: str = "",
    environment: str | None = None,
    business_id: str | None = None,
) -> Plan:
    """Diff every desired sendout against the folded ledger. Pure: the same inputs give
    an equal Plan. Raises PlanRefused naming every guard that failed."""
    chosen = _select(desired, options.targets)
    claimed: dict[str, str] = {}
    seen: set[str] = set()
    allow_one = Counter(d.spec.campaign for d in chosen
                        if d.spec.enabled and not d.spec.allow_multiple)
    planners: dict[str, _SendoutPlanner] = {}
    disabled: set[str] = set()
    stats: dict[str, Mapping[str, int]] = {}
    with no_gc():  # millions of small acyclic objects; see ledger.fold.no_gc
        for item in chosen:
            spec = item.spec
            overlap = not spec.allow_multiple and allow_one[spec.campaign] > 1
            planner = _SendoutPlanner(spec, state, options, now,
                                      (claimed, seen) if overlap else None)
            planners[item.spec.name] = planner
            if not item.spec.enabled:
                disabled.add(item.spec.name)
                stats[item.spec.name] = {}
                continue
            planner.consume(item.entries)
            got = item.audience_stats
            stats[item.spec.name] = got() if callable(got) else got
        orphans = _orphans(state, seen, planners, disabled, options.targets)
    problems = _conflict_problems(list(planners.values()))
    for planner in planners.values():
        problems.extend(planner.problems())
    total = sum(planner.counts[a] for planner in planners.values() for a in SENDING_ACTIONS)
    if options.max_recipients is not None and total > options.max_recipients:
        problems.append(Problem(
            Location(), f"the plan would send {total:,} entries, more than --max-recipients "
            f"{options.max_recipients:,}", "raise --max-recipients or --target fewer sendouts"))
    if problems:
        raise PlanRefused(problems)
    warnings = list(state.warnings)
    for orphan in orphans:
        if orphan.sendout not in planners:
            warnings.append(
                f"orphan: {_noun(orphan.count)} received {orphan.campaign!r} via sendout "
                f"{orphan.sendout}, which is no longer declared (nothing is done)")
    return Plan(
        format_version=PLAN_FORMAT_VERSION,
        created_by=CREATED_BY,
        workspace_digest=workspace_digest,
        environment=environment if environment is not None else state.environment,
        business_id=business_id if business_id is not None else state.business_id,
        lineage=state.lineage,
        serial=state.serial,
        options=options.as_dict(),
        sendouts=tuple(planners[d.spec.name].finish(stats[d.spec.name]) for d in chosen),
        orphans=orphans,
        warnings=tuple(warnings),
    )


STAT_FIELDS = ("read", "yielded", "invalid_skipped", "duplicates_dropped", "excluded",
               "filtered_out")


def build_plan(ws: Workspace, ledger: Ledger, options: PlanOptions, *,
               environ: Mapping[str, str] = os.environ, now: datetime) -> Plan:
    """Plan a loaded workspace against `ledger`: entries are produced lazily per sendout
    (connectly_declare.entries) and streamed through :func:`make_plan`. Reads the ledger
    without locking."""
    from connectly_declare.audiences import AudienceStats
    from connectly_declare.entries import iter_entries

    state = ledger.read()
    targets = set(options.targets)

    def desired() -> Iterator[DesiredSendout]:
        for name in sorted(ws.sendouts):
            sendout = ws.sendouts[name]
            spec = SendoutSpec.of(sendout, ws.location("Sendout", name))
            if not sendout.enabled or (targets and name not in targets):
                yield DesiredSendout(spec)  # no entries are produced for it
                continue
            stats = AudienceStats()
            yield DesiredSendout(spec, iter_entries(ws, sendout, environ=environ, stats=stats),
                                 partial(_stats_dict, stats))

    # the ledger was opened for the run's environment and business (ledger.open_ledger)
    environment: str | None = getattr(ledger, "environment", state.environment)
    business: str | None = getattr(ledger, "business_id", None) or state.business_id
    return make_plan(desired(), state, options, now=now, workspace_digest=ws.digest,
                     environment=environment, business_id=business)


def _stats_dict(stats: object) -> dict[str, int]:
    return {name: int(getattr(stats, name)) for name in STAT_FIELDS}


__all__ = [
    "ACTIONS",
    "PLAN_FORMAT_VERSION",
    "SENDING_ACTIONS",
    "STAT_FIELDS",
    "Action",
    "DesiredSendout",
    "OrphanCount",
    "Plan",
    "PlanOptions",
    "PlanRefused",
    "PlannedEntry",
    "SendoutPlan",
    "SendoutSpec",
    "build_plan",
    "check_fresh",
    "make_plan",
]
