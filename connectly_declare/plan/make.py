"""The plan: desired entries diffed against the folded ledger, as plain data.

:func:`make_plan` is pure: it reads entries once, keeps every entry that would be sent and
only counts (plus a few samples of) the others, and returns the same :class:`Plan` for the
same inputs. Actions per key (README.md, "Plan and the ledger", is the user's table):

==========  ===========================================================================
``send``     key not in the ledger
``noop``     accepted before with the same fingerprint
``resend``   accepted before, fingerprint changed, the sendout allows multiple sends
``drift``    accepted before, fingerprint changed, ``allow_one`` (the server would reject)
``retry``    rejected before, or outcome unknown/partial under ``allow_one`` (the server
             dedupes, so sending again is safe)
``recover``  outcome unknown/partial under ``allow_multiple``, no other possible delivery
             in the ledger, and ``--recover-in-doubt``: sent once under ``allow_one``
             (:mod:`connectly_declare.plan.recovery`)
``blocked``  outcome unknown/partial under ``allow_multiple`` (resolve it first)
``orphan``   in the ledger, no longer declared (a message cannot be unsent)
``held``     would be sent inside the recipient's quiet hours with ``--quiet-hours=hold``
``capped``   would pass a frequency cap (connectly_declare.policy.caps); planned again later
==========  ===========================================================================

Decisions taken here:

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
from collections.abc import Generator, Iterable, Iterator, Mapping
from contextlib import nullcontext
from datetime import datetime
from functools import partial
from itertools import chain
from typing import TYPE_CHECKING, Any

from connectly_declare.entry import Entry
from connectly_declare.errors import Location, PlanError, Problem
from connectly_declare.gcpause import no_gc
from connectly_declare.ledger.base import Ledger, LedgerState
from connectly_declare.ledger.keyview import sendout_campaign_counts, sendout_counts
from connectly_declare.plan.capstep import apply_caps
from connectly_declare.plan.diffnotes import noun
from connectly_declare.plan.model import (
    CREATED_BY,
    PLAN_FORMAT_VERSION,
    SENDING_ACTIONS,
    DesiredSendout,
    OrphanCount,
    Plan,
    PlanOptions,
    PlanRefused,
    SendoutSpec,
)
from connectly_declare.plan.recovery import Recovery
from connectly_declare.plan.rollout import retimer, stage
from connectly_declare.plan.sendout_diff import SendoutDiff
from connectly_declare.plan.shared import SharedCampaigns
from connectly_declare.plan.stream import Streamed, drain, feed
from connectly_declare.policy.summary import SENDING_SHAPE, timing_summary
from connectly_declare.seen import SeenSet

if TYPE_CHECKING:
    from connectly_declare.workspace.load import Workspace


Desired = DesiredSendout | tuple[SendoutSpec, Iterable[Entry]]


def _desired(item: Desired) -> DesiredSendout:
    # a plain (spec, entries) pair is accepted too (the contract's first form)
    return item if isinstance(item, DesiredSendout) else DesiredSendout(item[0], item[1])


def _select(desired: Iterable[Desired], targets: tuple[str, ...]) -> list[DesiredSendout]:
    chosen = sorted((_desired(d) for d in desired), key=lambda d: d.spec.name)
    names = [d.spec.name for d in chosen]
    if targets:
        unknown = sorted(set(targets) - set(names))
        if unknown:
            raise PlanError(
                f"--target names no sendout: {', '.join(unknown)}",
                hint=f"known sendouts: {', '.join(names) or 'none'}")
        chosen = [d for d in chosen if d.spec.name in targets]
    return chosen


def _conflict_problems(planners: list[SendoutDiff]) -> list[Problem]:
    problems = []
    for planner in planners:
        for other, count in sorted(planner.conflicts.items()):
            spec = planner.spec
            problems.append(Problem(
                spec.location,
                f"sendouts {other} and {spec.name} would both send campaign {spec.campaign!r} "
                f"to the same {noun(count)} under allow_one (the server would silently "
                "reject the second)",
                "exclude one audience from the other, disable one, or --target one of them"))
    return problems


def _orphans(state: LedgerState, shared: SharedCampaigns, planners: dict[str, SendoutDiff],
             skip: set[str], targets: tuple[str, ...]) -> tuple[OrphanCount, ...]:
    """Ledger keys nothing planned declares, per (recorded sendout, campaign).

    Counted, not searched: per (sendout, campaign), its keys in the ledger (counted in
    bulk: a compact index is not walked key by key) minus those the planners matched. The
    sendouts of a shared campaign may match one key twice, so theirs are counted from the
    clients they matched, each once (plan.shared). Unless such a key was matched, only
    sendouts with orphans have their keys split to name the campaign."""
    def relevant(sendout: str) -> bool:
        return sendout not in skip and (not targets or sendout in targets)

    totals = sendout_counts(state.keys)
    matched: Counter[tuple[str, str]] = Counter()  # (recorded sendout, campaign)
    for planner in planners.values():
        if planner.shared is not None:
            continue  # counted below, each key once
        campaign = planner.spec.campaign
        matched[(planner.spec.name, campaign)] += planner.matched_own
        for sendout, count in planner.matched_other.items():
            matched[(sendout, campaign)] += count
    if shared.matched_any():
        # every relevant sendout's keys, less the shared campaigns' matched keys: what
        # walking the keys not matched did (and does for a sendout whose matches were
        # counted twice by a noop repeated in its audience)
        matched.update(shared.matched_counts(state.keys))
        counts = sendout_campaign_counts(state.keys, {s for s in totals if relevant(s)})
    else:
        with_orphans = {s for s, n in totals.items() if relevant(s)
                        and n > sum(c for (o, _), c in matched.items() if o == s)}
        if not with_orphans:
            return ()
        counts = sendout_campaign_counts(state.keys, with_orphans)
    counts.subtract(matched)
    orphans = tuple(OrphanCount(s, c, n) for (s, c), n in sorted(counts.items()) if n > 0)
    for orphan in orphans:
        if orphan.sendout in planners:
            planners[orphan.sendout].counts["orphan"] += orphan.count
    return orphans


def _stage(planner: SendoutDiff, item: DesiredSendout, state: LedgerState,
           now: datetime) -> None:
    """A rollout sendout: entries of open waves (and anyone the ledger knows) are diffed
    as usual; the others wait for their wave's gate (plan.rollout)."""
    spec = planner.spec
    # a send-now sendout's scheduledAt is at most a quiet-hours shift of this plan's "now"
    # (not what was sent): only a declared schedule (instant or local) says when a wave
    # was delivered
    declared = not spec.timed or spec.instant is not None or item.retime is not None
    staged = stage(spec.name, spec.rollout, item.entries, state.keys, now,
                   retime=item.retime, scheduled=declared)
    planner.consume(staged.to_diff)
    waiting = SeenSet()  # one client twice is refused now, not when its wave opens
    for entry, wave in staged.waiting:
        waiting.add(entry.client)
        planner.wait(entry, staged.reasons.get(wave, ""))
    planner.duplicates += waiting.repeats
    planner.waves = staged.waves
    planner.rollout_notes = staged.notes


def make_plan(
    desired: Iterable[Desired],
    state: LedgerState,
    options: PlanOptions,
    *,
    now: datetime,
    workspace_digest: str = "",
    environment: str | None = None,
    business_id: str | None = None,
    keep: bool = True,
) -> Plan:
    """Diff every desired sendout against the folded ledger. Pure: the same inputs give
    an equal Plan. Raises PlanRefused naming every guard that failed.

    Without `keep`, a plan to show only: its entries to send are counted, not kept
    (plan.counted), unless a pass over the whole plan reads them (:func:`keeps`). Its
    counts, samples, notes and timing are what the kept plan's would be."""
    steps = iter_plan(desired, state, options, now=now, workspace_digest=workspace_digest,
                      environment=environment, business_id=business_id, keep=keep)
    return drain(steps)


def keeps(spec: SendoutSpec, options: PlanOptions) -> bool:
    """Whether a plan to show only must still keep this sendout's entries to send:
    frequency caps place them, --recover-in-doubt settles them, and a local schedule or
    quiet hours are summarised over them, all after the diff."""
    return bool(options.frequency_caps) or options.recover_in_doubt or spec.timed


def iter_plan(
    desired: Iterable[Desired],
    state: LedgerState,
    options: PlanOptions,
    *,
    now: datetime,
    workspace_digest: str = "",
    environment: str | None = None,
    business_id: str | None = None,
    stream: bool = False,
    keep: bool = True,
) -> Generator[Streamed, None, Plan]:
    """:func:`make_plan` as a generator returning the Plan. With `stream`, it yields each
    entry to send as soon as it is known (plan.stream; the Plan then holds counts and
    samples, not the entries): only for plans `plan.stream.why_not_stream` allows.
    `keep`: as :func:`make_plan`'s."""
    chosen = _select(desired, options.targets)
    shared = SharedCampaigns()  # campaigns of two or more allow_one sendouts
    allow_one = Counter(d.spec.campaign for d in chosen
                        if d.spec.enabled and not d.spec.allow_multiple)
    planners: dict[str, SendoutDiff] = {}
    recovery = Recovery(state, options.recover_in_doubt)
    disabled: set[str] = set()
    stats: dict[str, Mapping[str, int]] = {}
    # millions of small acyclic objects; see gcpause (a stream runs under steady_gc)
    with nullcontext() if stream else no_gc():
        for item in chosen:
            spec = item.spec
            overlap = not spec.allow_multiple and allow_one[spec.campaign] > 1
            planner = SendoutDiff(spec, state, options, now,
                                  shared.campaign(spec.campaign) if overlap else None, recovery,
                                  keep=keep or stream or keeps(spec, options))
            planners[item.spec.name] = planner
            if not item.spec.enabled:
                disabled.add(item.spec.name)
                stats[item.spec.name] = {}
                continue
            if spec.rollout:
                _stage(planner, item, state, now)
            else:
                yield from feed(planner, item.entries, stream)
            got = item.audience_stats
            stats[item.spec.name] = got() if callable(got) else got
        orphans = _orphans(state, shared, planners, disabled, options.targets)
        recovery.settle(planners.values())
        if options.frequency_caps:
            apply_caps(planners, disabled, state, options, now)
    problems = _conflict_problems(list(planners.values()))
    for planner in planners.values():
        problems.extend(planner.problems())
    total = sum(planner.counts[a] for planner in planners.values() for a in SENDING_ACTIONS)
    if options.max_recipients is not None and total > options.max_recipients:
        problems.append(Problem(
            Location(), f"the plan would send {noun(total, 'entry', 'entries')}, more than "
            f"--max-recipients {options.max_recipients:,}",
            "raise --max-recipients or --target fewer sendouts"))
    if problems:
        raise PlanRefused(problems)
    warnings = list(state.warnings)
    for orphan in orphans:
        if orphan.sendout not in planners:
            warnings.append(
                f"orphan: {noun(orphan.count)} received {orphan.campaign!r} via sendout "
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
        sendouts=tuple(planners[d.spec.name].finish(stats[d.spec.name],
                                                    _timing(planners[d.spec.name], now))
                       for d in chosen),
        orphans=orphans,
        warnings=tuple(warnings),
    )


def _timing(planner: SendoutDiff, now: datetime) -> dict[str, Any]:
    if not planner.spec.enabled or (not planner.spec.timed and not planner.capped):
        return {}
    return timing_summary(chain.from_iterable(planner.to_send.field_chunks(*SENDING_SHAPE)),
                          planner.held, planner.capped, now)


STAT_FIELDS = ("read", "yielded", "invalid_skipped", "duplicates_dropped", "excluded",
               "filtered_out")


def build_plan(ws: Workspace, ledger: Ledger, options: PlanOptions, *,
               environ: Mapping[str, str] = os.environ, now: datetime,
               state: LedgerState | None = None, keep: bool = True) -> Plan:
    """Plan a loaded workspace against `ledger`: entries are produced lazily per sendout
    (connectly_declare.entries.stream) and streamed through :func:`make_plan`. Reads the ledger
    without locking, unless the caller gives the `state` it already read (apply, under the
    lock: a large ledger is folded once, not twice). `keep`: as :func:`make_plan`'s."""
    if state is None:
        state = ledger.read()
    return make_plan(desired_sendouts(ws, options, environ=environ, now=now), state, options,
                     now=now, keep=keep, **plan_labels(ws, ledger, state))


def plan_labels(ws: Workspace, ledger: Ledger, state: LedgerState) -> dict[str, Any]:
    """What a plan of `ws` against `ledger` records of where it is for."""
    # the ledger was opened for the run's environment and business (ledger.open_ledger)
    return {"workspace_digest": ws.digest, "environment": ledger.environment,
            "business_id": ledger.business_id or state.business_id}


def _spec(ws: Workspace, name: str, options: PlanOptions, now: datetime) -> SendoutSpec:
    from connectly_declare.policy.timing import sendout_timing

    sendout = ws.sendouts[name]
    campaign = ws.campaigns.get(sendout.campaign)
    timed = sendout_timing(sendout, ws.config.quiet_hours, options.quiet_hours,
                           now) is not None
    return SendoutSpec.of(sendout, ws.location("Sendout", name),
                          campaign.variables_for(sendout.version) if campaign else None,
                          timed=timed)


def sendout_specs(ws: Workspace, options: PlanOptions, now: datetime) -> list[SendoutSpec]:
    """Every sendout's spec, without producing any entry (plan.stream's question)."""
    return [_spec(ws, name, options, now) for name in sorted(ws.sendouts)]


def desired_sendouts(ws: Workspace, options: PlanOptions, *,
                     environ: Mapping[str, str] = os.environ,
                     now: datetime) -> Iterator[DesiredSendout]:
    """Every sendout of `ws` with its entries, produced lazily (see :func:`build_plan`)."""
    from connectly_declare.audience.resolve import AudienceStats
    from connectly_declare.entries.stream import iter_entries

    targets = set(options.targets)
    for name in sorted(ws.sendouts):
        sendout = ws.sendouts[name]
        spec = _spec(ws, name, options, now)
        if not sendout.enabled or (targets and name not in targets):
            yield DesiredSendout(spec)  # no entries are produced for it
            continue
        stats = AudienceStats()
        entries = iter_entries(ws, sendout, environ=environ, stats=stats, now=now,
                               quiet_mode=options.quiet_hours)
        yield DesiredSendout(spec, entries, partial(_stats_dict, stats),
                             retimer(sendout, ws.config.quiet_hours,
                                     options.quiet_hours, now)
                             if spec.rollout and sendout.schedule is not None else None)


def _stats_dict(stats: object) -> dict[str, int]:
    return {name: int(getattr(stats, name)) for name in STAT_FIELDS}


__all__ = ["STAT_FIELDS", "build_plan", "desired_sendouts", "iter_plan", "keeps", "make_plan",
           "plan_labels", "sendout_specs"]
