"""`apply --auto-approve` of a fresh plan: sending starts while the plan is being made.

Each sendout's entries to send are handed to the apply engine chunk by chunk as its diff
finds them (plan.stream), so the first requests leave while the rest of the audience is
still read and diffed, and the plan never holds its entries. Everything else is as when
the plan is made first: the ledger lock is held throughout, an intent is durable before
each request, and the plan's guards are checked before anything is sent; a plan that
could trip a guard of the whole plan (`plan.stream.why_not_stream`) is made whole first,
as is any plan shown for approval (no --auto-approve) or applied from a file.

When planning stops at an error (a bad data row, a refused guard) sending stops too: no
new request starts, those in flight finish and are recorded, the summary says what was
sent, then the error is raised naming the file and row. A re-apply after the fix sends
the rest (what was sent is in the ledger: nobody gets it twice).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import replace
from datetime import datetime
from typing import TextIO

from connectly_declare.apply.engine import Engine, EngineSettings
from connectly_declare.apply.results import ApplyResult
from connectly_declare.apply.summary import nothing_to_send
from connectly_declare.commands.apply_send import (
    in_doubt_keys,
    print_summary,
    send_entries,
    sending_endpoint,
)
from connectly_declare.commands.apply_source import (
    ApplyRequest,
    ApplySource,
    batch_size_for,
    plan_options,
    sim_catalog,
)
from connectly_declare.commands.destination import Destination, ledger_place
from connectly_declare.commands.simhost import apart_for_workspace
from connectly_declare.ledger.base import Ledger, LedgerState
from connectly_declare.plan.make import (
    desired_sendouts,
    iter_plan,
    plan_labels,
    sendout_specs,
)
from connectly_declare.plan.model import Plan
from connectly_declare.plan.stream import Streamed, why_not_stream

STOPPED_BY_ERROR = "planning stopped at an error (below): no more requests were made"


class PlanFeed:
    """A plan's steps as the engine's sends. Afterwards `plan` is the whole plan (None
    when sending stopped first) and `error` what stopped planning, if anything."""

    def __init__(self, steps: Generator[Streamed, None, Plan]) -> None:
        self._steps = steps
        self._engine: Engine | None = None
        self.plan: Plan | None = None
        self.error: Exception | None = None

    def bind(self, engine: Engine) -> None:
        self._engine = engine

    def __iter__(self) -> Iterator[Streamed]:
        engine = self._engine
        steps = self._steps
        try:
            # interrupted (a signal), planning stops too: what is left is not needed to
            # say what was sent. Stopped for a reason (the API unreachable, the key
            # refused), the plan is finished unsent, so the summary counts every entry.
            while engine is None or not engine.stopping or engine.stopped_by is not None:
                try:
                    item = next(steps)
                except StopIteration as done:
                    self.plan = done.value
                    return
                yield item
        except Exception as exc:  # raised again by apply_streamed, after the summary
            self.error = exc
            if engine is not None:
                engine.stop(STOPPED_BY_ERROR)
        finally:
            steps.close()


def apply_streamed(request: ApplyRequest, source: ApplySource, ledger: Ledger,
                   state: LedgerState, dest: Destination, *, environ: Mapping[str, str],
                   now: datetime, fixed: Callable[[], datetime] | None, out: TextIO,
                   err: TextIO, show_plan: Callable[[Plan], str],
                   engine_settings: EngineSettings | None
                   ) -> tuple[ApplyResult, Plan | None] | int | None:
    """Plan and send at once when this apply may (the caller holds the lock): the result
    and the plan (None when stopped before it was whole), or 0 when there was nothing to
    send; None when the plan must be made first (the caller does that)."""
    workspace = source.workspace
    if not request.auto_approve or workspace is None or request.show_recipients:
        return None
    options = plan_options(request, source)
    if why_not_stream(sendout_specs(workspace, options, now), options, now) is not None:
        return None  # the caller makes the whole plan first
    steps = iter_plan(desired_sendouts(workspace, options, environ=environ, now=now), state,
                      options, now=now, stream=True, **plan_labels(workspace, ledger, state))
    print("Planning and sending at once (--auto-approve, a fresh plan): each batch is sent "
          "as soon as it is planned; the plan's summary follows.", file=out, flush=True)
    feed = PlanFeed(steps)
    batch_size = batch_size_for(request, source.config, None)
    with sending_endpoint(dest, sim_catalog(dest, source, None),
                   lambda: apart_for_workspace(environ, workspace)) as base_url:
        result = send_entries(feed, ledger, dest, base_url, in_doubt=in_doubt_keys(state),
                              batch_size=batch_size, err=err, total=None,
                              settings=engine_settings and replace(
                                  engine_settings, batch_size=batch_size),
                              fixed_now=fixed, on_engine=feed.bind)
    plan = feed.plan
    if plan is not None:
        plan = replace(plan, sim=dest.sim, endpoint=dest.endpoint,
                       ledger=ledger_place(source.root, dest.resolved))
        print(show_plan(plan), file=out)
    if feed.error is not None:
        if result.requests:  # what was sent before the error, then the error
            print_summary(result, dest, out, err, environ, plan)
        raise feed.error
    if plan is None:
        print("Stopped before the plan was complete: the summary counts only what was "
              "planned so far; `connectly-declare plan` shows what is left.", file=out)
    elif not plan.has_changes:
        print(nothing_to_send(plan), file=out)
        return 0
    return result, plan


__all__ = ["STOPPED_BY_ERROR", "PlanFeed", "apply_streamed"]
