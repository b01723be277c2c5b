"""Frequency caps over a made plan (called by :func:`connectly_declare.plan.make.iter_plan`
once every sendout is diffed): the sending entries that would pass a cap move to
`capped` (connectly_declare.policy.caps says how)."""

from __future__ import annotations

from datetime import datetime
from itertools import chain
from typing import cast

from connectly_declare.ledger.base import LedgerState
from connectly_declare.ledger.keyview import is_compact
from connectly_declare.plan.model import SENDING_ACTIONS, Action, PlannedEntry, PlanOptions
from connectly_declare.plan.sendout_diff import SendoutDiff
from connectly_declare.plan.spool import client_chunks
from connectly_declare.plan.spoolcodec import entry_of_row
from connectly_declare.policy.caps import CapCheck, cap_reason, epoch


def apply_caps(planners: dict[str, SendoutDiff], disabled: set[str], state: LedgerState,
               options: PlanOptions, now: datetime) -> None:
    """Move the sending entries that would pass a frequency cap to `capped`
    (connectly_declare.policy.caps says how)."""
    order = sorted((p for p in planners.values()
                    if p.spec.name not in disabled and not p.spec.exempt),
                   key=lambda p: (-p.spec.priority, p.spec.name))
    # counted a chunk of clients at a time, and only the crowded clients' history read
    # (plan.capcount: a plan or ledger of millions is never a Counter or walk of them)
    from connectly_declare.plan.capcount import crowded, planned_clients

    planned = planned_clients(chain.from_iterable(client_chunks(p.to_send) for p in order))
    if not planned:
        return
    exempt = {p.spec.name for p in planners.values() if p.spec.exempt}
    scheduled = {p.spec.name: epoch(p.spec.instant) for p in planners.values()
                 if p.spec.instant is not None}
    least = min(most for most, _, _ in options.frequency_caps)
    # Only a client with more messages in all than the smallest cap allows can pass one.
    if planned.large or is_compact(state.keys):
        # in arrays, placed a client at a time (plan.capplace: as placing one by one)
        from connectly_declare.plan import capplace
        from connectly_declare.plan.capcount import crowds as crowds_of

        found = crowds_of(state.keys, planned, exempt, scheduled, least)
        del planned  # its arrays: 16 bytes a client, not needed to place
        if not found:
            return
        verdicts = capplace.place(order, found, options.frequency_caps, now)
        del found
        for planner, gone in zip(order, capplace.capped(order, verdicts,
                                                        options.frequency_caps),
                                 strict=True):
            if gone is not None:
                move_capped(planner, gone, options.samples)
        return
    crowds, history = crowded(state.keys, planned, exempt, scheduled, least)
    if not crowds:
        return
    check = CapCheck(options.frequency_caps, history)
    times: dict[str | None, float] = {None: now.timestamp()}
    for planner in order:
        # positions in to_send, one byte each; a spool's rows are read without rebuilding
        # their entries (only a capped one is rebuilt)
        gone = bytearray(len(planner.to_send))
        capped = 0
        for index, (action, _, fields, constants) in enumerate(planner.to_send.rows()):
            client = fields[0]
            if client not in crowds:
                continue
            scheduled_at = fields[2]
            at = times.get(scheduled_at)
            if at is None:
                at = times[scheduled_at] = epoch(scheduled_at or "")
            verdict = check.place(client, at)
            if verdict is None:
                continue
            cap, near, fits = verdict
            planner.cap(PlannedEntry("capped", entry_of_row(fields, constants),
                                     cap_reason(cap, near, fits)))
            planner.counts[cast(Action, action)] -= 1
            gone[index] = 1
            capped += 1
        if capped:
            move_capped(planner, gone, options.samples)


def move_capped(planner: SendoutDiff, gone: bytearray, want: int) -> None:
    """Keep the entries not capped, in order (rows copied, no entry rebuilt); each sending
    action's samples become its first `want` kept entries (what they were, less the
    capped ones, topped up)."""
    keep = planner.to_send.without(gone)
    shown: dict[Action, list[PlannedEntry]] = {a: [] for a in SENDING_ACTIONS}
    # how many each action shows: its count is its entries in to_send (the caller took
    # the capped ones off), so the walk stops once every action has its samples
    need = {a: min(want, planner.counts[a]) for a in SENDING_ACTIONS}
    if any(need.values()):
        for action, reason, fields, constants in keep.rows():
            first = shown[cast(Action, action)]
            if len(first) < want:
                first.append(PlannedEntry(cast(Action, action),
                                          entry_of_row(fields, constants), reason))
                if all(len(shown[a]) >= n for a, n in need.items()):
                    break
    planner.to_send = keep
    planner.counts["capped"] = sum(planner.capped.values())
    planner.samples.update(shown)
    planner.samples["capped"] = planner.capped_samples[:want]


__all__ = ["apply_caps", "move_capped"]
