"""A plan made while it is sent: `apply --auto-approve` of a fresh plan hands each entry
to send to the sender as soon as its sendout's diff knows it is one, instead of after the
whole plan (:func:`connectly_declare.plan.make.iter_plan` with ``stream=True``).

It streams only when no guard of the whole plan can fail after the first request, so the
guards are still checked before anything is sent (:func:`why_not_stream` says which
condition keeps a plan whole):

- ``--max-recipients`` and a sendout's ``max_recipients`` count the whole plan: with
  either, the plan is made first;
- two enabled ``allow_one`` sendouts of one campaign may claim one person twice
  (the cross-sendout conflict), which only the whole plan can tell;
- frequency caps, ``--recover-in-doubt`` and rollouts are post-passes over the whole plan;
  quiet hours and local schedules are summarised over it; a schedule in the past refuses
  the plan: each keeps the plan whole.

Guards of one sendout that may still trip while it streams (one client twice, a past
schedule, an entry that does not match its sendout) are checked after every chunk of
entries diffed, before any of that chunk is handed on: the stream stops there with the
plan's refusal, and nothing of the chunk is sent.
"""

from __future__ import annotations

import gc
from collections.abc import Generator, Iterable, Iterator, Sequence
from datetime import datetime
from itertools import islice

from connectly_declare.entry import Entry
from connectly_declare.plan.model import (
    Plan,
    PlannedEntry,
    PlanOptions,
    PlanRefused,
    SendoutSpec,
)
from connectly_declare.plan.sendout_diff import SendoutDiff
from connectly_declare.plan.spool import Spool

CHUNK = 1000  # entries diffed between two looks at the sender (and at the guards)

# One entry to send with its sendout; None: a chunk was diffed and nothing came of it yet
# (the sender may serve its requests in flight before asking again).
Streamed = tuple[SendoutSpec, PlannedEntry] | None


def why_not_stream(specs: Sequence[SendoutSpec], options: PlanOptions,
                   now: datetime) -> str | None:
    """None when a plan of these sendouts may be sent while it is made; else why not, in
    words for the person running apply."""
    if set(options.targets) - {s.name for s in specs}:
        return "--target names no sendout (the plan says so)"
    if options.max_recipients is not None:
        return "--max-recipients counts the whole plan"
    if options.frequency_caps:
        return "frequency caps are checked over the whole plan"
    if options.recover_in_doubt:
        return "--recover-in-doubt settles the whole plan"
    chosen = [s for s in specs if s.enabled and (not options.targets
                                                 or s.name in options.targets)]
    allow_one: dict[str, str] = {}
    for spec in chosen:
        if spec.max_recipients is not None:
            return f"sendout {spec.name} has max_recipients, which counts its whole plan"
        if spec.rollout:
            return f"sendout {spec.name} is a rollout, planned wave by wave"
        if spec.timed:
            return (f"sendout {spec.name} has a local schedule or quiet hours, summarised "
                    "over the whole plan")
        if spec.instant is not None and not options.allow_past_schedule \
                and datetime.fromisoformat(spec.instant) < now:
            return f"sendout {spec.name}'s schedule is in the past"
        if not spec.allow_multiple:
            other = allow_one.setdefault(spec.campaign, spec.name)
            if other != spec.name:
                return (f"sendouts {other} and {spec.name} both send campaign "
                        f"{spec.campaign!r} under allow_one: conflicts are checked over the "
                        "whole plan")
    return None


def feed(planner: SendoutDiff, entries: Iterable[Entry], stream: bool) -> Iterator[Streamed]:
    """Diff `entries` with `planner`; when streaming, yield each entry to send as soon as
    its chunk is diffed (not kept in the plan), or None for a chunk with none."""
    if not stream:
        planner.consume(entries)
        return
    spec = planner.spec
    pending = iter(entries)
    size = CHUNK
    collecting = gc.isenabled()  # a stream runs under gcpause.steady_gc, collecting
    while chunk := list(islice(pending, size)):
        # The audience's dedup (seen.SeenSet.first_occurrences) pauses the collector while
        # its read-ahead is out; suspended there, it would keep it paused for the whole
        # send, and the requests' cyclic garbage would pile up. Resumed here.
        if collecting and not gc.isenabled():
            gc.enable()
        # each chunk's entries to send, held as objects (never spilled: at most `size`),
        # handed on and dropped: the plan's to_send ends empty
        planner.to_send = found = Spool(memory=size)
        planner.consume(chunk)
        problems = planner.problems()
        if problems:  # a guard tripped: nothing of this chunk goes out
            raise PlanRefused(problems)
        if not found:
            yield None
            continue
        for planned in found:
            yield spec, planned
    planner.to_send = Spool()


def drain(steps: Generator[Streamed, None, Plan]) -> Plan:
    """Run a plan's steps to the end; its Plan."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            plan: Plan = done.value
            return plan


__all__ = ["CHUNK", "Streamed", "drain", "feed", "why_not_stream"]
