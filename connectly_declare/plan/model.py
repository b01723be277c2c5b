"""The plan's data: what `plan` produces, `planfile` saves and `apply` consumes.

Plain frozen dataclasses; the diff that builds them is in :mod:`connectly_declare.plan.make`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol

from connectly_declare import __version__
from connectly_declare.entry import Entry
from connectly_declare.errors import Location, PlanError, Problem, StalePlan
from connectly_declare.ledger.base import LedgerState
from connectly_declare.plan.rollout import WaveSpec, WaveStatus
from connectly_declare.workspace.config import DEFAULT_BATCH_SIZE

if TYPE_CHECKING:
    from connectly_declare.workspace.manifests import Sendout


Action = Literal["send", "noop", "resend", "drift", "retry", "recover", "failed", "blocked",
                 "waiting", "orphan", "held", "capped"]
ACTIONS: tuple[Action, ...] = ("send", "resend", "retry", "recover", "noop", "drift", "failed",
                               "blocked", "waiting", "orphan", "held", "capped")
# recover: an in-doubt allow_multiple key re-sent once under allow_one (plan.recovery)
SENDING_ACTIONS: tuple[Action, ...] = ("send", "resend", "retry", "recover")
PLAN_FORMAT_VERSION = 2  # 2: JSON Lines, written and read as a stream (plan/planfile.py)
CREATED_BY = f"connectly-declare {__version__}"
DRIFT_REASON = "accepted before with other content; allow_one: the server would reject it"
RESEND_REASON = "accepted before with other content; allow_multiple"


class PlannedEntry(NamedTuple):
    """One entry and what the plan does with it.

    A NamedTuple rather than a frozen dataclass: a plan keeps one per entry to send, and
    building a frozen dataclass costs four times as much (each field goes through
    object.__setattr__), about a tenth of planning a million recipients."""

    action: Action
    entry: Entry
    reason: str = ""


# a PlannedEntry of an (action, entry, reason) tuple, without NamedTuple.__new__'s
# per-call argument handling: what map() uses to build a chunk of them at once
new_planned = partial(tuple.__new__, PlannedEntry)


class PlannedEntries(Protocol):
    """A sendout's entries to send: counted, and iterated (any number of times) in order.
    A plan holds a :class:`connectly_declare.plan.spool.Spool` (the entries of a large plan
    are kept on disk, not as objects); a tuple of PlannedEntry fits too."""

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[PlannedEntry]: ...


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
    rollout: tuple[WaveSpec, ...] = ()  # waves (plan.rollout); empty: all at once
    # The campaign version's exact variable names (None: unknown; see plan.validity)
    variables: tuple[str, ...] | None = None
    priority: int = 0  # frequency caps: higher first, then by name
    exempt: bool = False  # transactional: frequency caps neither apply nor count it
    timed: bool = False  # a local schedule or quiet hours: the plan shows how it spreads
    instant: str | None = None  # the declared schedule when it is one instant (caps' history)

    @classmethod
    def of(cls, sendout: Sendout, location: Location | None = None,
           variables: Iterable[str] | None = None, timed: bool = False) -> SendoutSpec:
        """The spec of a Sendout manifest (`variables`: its campaign version's)."""
        approvals = {p.wave: p.by for p in sendout.promote}
        rollout = tuple(
            WaveSpec(percent=w.percent, count=w.count, after=w.after, approve=w.approve,
                     max_rejected_percent=w.max_rejected_percent,
                     approved_by=approvals.get(number) if w.approve else None)
            for number, w in enumerate(sendout.rollout or (), 1))
        return cls(name=sendout.name, campaign=sendout.campaign, version=sendout.version,
                   options=sendout.options.as_api(),
                   allow_multiple=sendout.options.allow_multiple,
                   max_recipients=sendout.max_recipients, enabled=sendout.enabled,
                   location=location or Location(), rollout=rollout,
                   variables=tuple(variables) if variables is not None else None,
                   priority=sendout.priority, exempt=sendout.exempt, timed=timed,
                   instant=(sendout.schedule.isoformat()
                            if isinstance(sendout.schedule, datetime) else None))


@dataclass(frozen=True)
class DesiredSendout:
    """A sendout and its entries (read once, lazily). ``audience_stats`` is read after the
    entries are consumed, so the audience code may fill it while they stream."""

    spec: SendoutSpec
    entries: Iterable[Entry] = ()
    # a mapping, or a function returning one (called once the entries are consumed)
    audience_stats: Mapping[str, int] | Callable[[], Mapping[str, int]] = field(
        default_factory=dict)
    # a rollout's later waves, opening after the schedule passed, are timed as "now"
    # (quiet hours included) by this (plan.rollout.retimer); None: entries as they are
    retime: Callable[[Entry], Entry] | None = None


@dataclass(frozen=True)
class PlanOptions:
    targets: tuple[str, ...] = ()
    max_recipients: int | None = None
    allow_past_schedule: bool = False
    batch_size: int = DEFAULT_BATCH_SIZE  # recorded in saved plans; apply sends with it
    samples: int = 3  # sample entries kept per sendout and action, for display
    recover_in_doubt: bool = False  # `--recover-in-doubt` (plan.recovery)
    quiet_hours: Literal["shift", "hold"] = "shift"  # what quiet hours do to an entry
    # declare.yaml's frequency_cap as (max, seconds, "2 per 7d"); () for none
    frequency_caps: tuple[tuple[int, int, str], ...] = ()
    # `--retry-failed [SENDOUT]`: plan `failed` keys as `retry` again (all sendouts when
    # `retry_failed_sendouts` is empty)
    retry_failed: bool = False
    retry_failed_sendouts: tuple[str, ...] = ()

    def retries_failed(self, sendout: str) -> bool:
        return self.retry_failed and (not self.retry_failed_sendouts
                                      or sendout in self.retry_failed_sendouts)

    def as_dict(self) -> dict[str, Any]:
        found = {"targets": list(self.targets), "max_recipients": self.max_recipients,
                 "allow_past_schedule": self.allow_past_schedule,
                 "batch_size": self.batch_size, "quiet_hours": self.quiet_hours,
                 "frequency_caps": [label for _, _, label in self.frequency_caps]}
        if self.recover_in_doubt:
            found["recover_in_doubt"] = True
        if self.retry_failed:
            found["retry_failed"] = list(self.retry_failed_sendouts) or True
        return found


@dataclass(frozen=True)
class SendoutPlan:
    name: str
    campaign: str
    version: str | None
    options: dict[str, str]  # the API's options object for this sendout's requests
    allow_multiple: bool
    counts: dict[Action, int]
    to_send: PlannedEntries  # send/resend/retry/recover, in the entries' order (plan.spool)
    samples: tuple[PlannedEntry, ...]  # a few entries of each action, for display
    notes: tuple[str, ...]  # drift/blocked/orphan/other-sendout warnings with counts
    audience_stats: dict[str, int]
    enabled: bool = True
    waves: tuple[WaveStatus, ...] = ()  # a rollout's waves, where it stands (plan.rollout)
    # how the sendout's entries spread in time (connectly_declare.policy.summary); empty
    # when it has no local schedule, quiet hours or capped entries
    timing: dict[str, Any] = field(default_factory=dict)

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
    # Where the plan is for, shown in its header and checked by `apply FILE`:
    # the simulator's side (its own ledger) or the real one; the base URL sent to (None:
    # the in-process simulator, or not recorded by an older version); the ledger's place.
    sim: bool = False
    endpoint: str | None = None
    ledger: str | None = None

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



__all__ = [
    "ACTIONS",
    "CREATED_BY",
    "DRIFT_REASON",
    "PLAN_FORMAT_VERSION",
    "RESEND_REASON",
    "SENDING_ACTIONS",
    "Action",
    "DesiredSendout",
    "OrphanCount",
    "Plan",
    "PlanOptions",
    "PlanRefused",
    "PlannedEntries",
    "PlannedEntry",
    "SendoutPlan",
    "SendoutSpec",
    "check_fresh",
    "new_planned",
]
