"""Running an apply: from a plan (fresh or saved) to a summary, with the ledger lock held,
signals handled and, for `--sim`, the simulator started in-process.

`cli.py` parses options into an :class:`ApplyRequest` and calls :func:`run_apply`, which
runs these typed steps in order: :func:`load_source` (the workspace or a saved plan),
:func:`resolve_destination`, :func:`check_business`, the ledger opened and locked,
:func:`plan_locked`, :func:`approved`, :func:`send_plan` (the `apply/` package does the
sending) and :func:`print_summary`. What an apply reads and checks before sending is in
`commands.apply_source`, the sending and its summary in `commands.apply_send`, sending
while planning in `commands.apply_stream`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import TextIO

from connectly_declare import clock
from connectly_declare.apply.engine import EngineSettings
from connectly_declare.apply.results import ApplyResult
from connectly_declare.apply.summary import exit_code, nothing_to_send
from connectly_declare.commands.apply_send import (
    in_doubt_keys,
    print_summary,
    send_plan,
    sending_endpoint,
)
from connectly_declare.commands.apply_source import (
    ApplyRequest,
    ApplySource,
    announce_sim,
    batch_size_for,
    check_business,
    check_side,
    load_source,
    plan_locked,
    sim_catalog,
)
from connectly_declare.commands.apply_stream import apply_streamed
from connectly_declare.commands.destination import Destination, ledger_place, resolve_destination
from connectly_declare.commands.simhost import apart_for_entries
from connectly_declare.endpoint import is_loopback
from connectly_declare.errors import DeclareError
from connectly_declare.ledger import open_ledger
from connectly_declare.ledger.base import Ledger, LedgerState
from connectly_declare.plan.model import Plan
from connectly_declare.report.where import destination_text
from connectly_declare.workspace.config import LocalState


def announce_wait(ledger: Ledger, timeout: float, err: TextIO) -> None:
    """Say whom we wait for before waiting on a held lock (Terraform's "Acquiring state
    lock"): a pipeline that sits silent for minutes looks hung."""
    if timeout > 0:
        holder = ledger.lock_holder()
        if holder is not None:
            print(f"Waiting up to {timeout:g} s for the ledger's writer lock: "
                  f"{holder.describe()}", file=err, flush=True)


# confirm(question, word): True when the person typed `word` (`yes`, or against a real
# endpoint the environment or business id, as `terraform destroy` asks for a word).
Confirm = Callable[[str, str], bool]


def confirmation(plan: Plan, dest: Destination) -> tuple[str, str]:
    """The question asked before sending, and the word that confirms it."""
    where = destination_text(plan)
    if dest.sim or not dest.base_url or is_loopback(dest.base_url):
        return f"This apply {where}.\nApply these sends? (yes/no)", "yes"
    word = dest.resolved.environment or dest.business_id
    what = "environment" if dest.resolved.environment else "business id"
    return (f"This apply {where}.\nThese are real messages to real people; only the {what} "
            f"is accepted to confirm.\nType {word} to send", word)


def plan_text(plan: Plan, *, show_recipients: bool = False, color: bool = False) -> str:
    """The plan as `connectly-declare plan` shows it, for the reviewer."""
    from connectly_declare.report.format import format_text

    return format_text(plan, show_recipients=show_recipients, color=color).rstrip("\n")


def _total(plan: Plan) -> int:
    return sum(len(s.to_send) for s in plan.sendouts)  # counted, not walked (plan.spool)


def _default_show(request: ApplyRequest) -> Callable[[Plan], str]:
    return lambda plan: plan_text(plan, show_recipients=request.show_recipients)


def approved(request: ApplyRequest, confirm: Confirm | None, out: TextIO, plan: Plan,
             dest: Destination) -> bool:
    """--auto-approve, or the word `confirmation` wants on a terminal; without a
    terminal, refuse."""
    if request.auto_approve:
        return True
    if confirm is None:
        raise DeclareError(
            "refusing to send without confirmation: no terminal to ask on",
            hint="review the plan, then pass --auto-approve (pipelines), or apply "
                 "a reviewed saved plan: connectly-declare apply --auto-approve FILE")
    if confirm(*confirmation(plan, dest)):
        return True
    print("Apply cancelled: nothing was sent.", file=out)
    return False


def run_apply(request: ApplyRequest, *, out: TextIO, err: TextIO,
              confirm: Confirm | None, environ: Mapping[str, str] = os.environ,
              now: Callable[[], datetime] = clock.now,
              show_plan: Callable[[Plan], str] | None = None,
              engine_settings: EngineSettings | None = None) -> int:
    """`connectly-declare apply [PLANFILE]`: returns the exit code.

    `confirm(question)` asks on a terminal (None: there is none, so only --auto-approve
    proceeds). `show_plan(plan)` is the plan's text for the reviewer."""
    fixed = clock.fixed_clock(environ, err)
    now = fixed or now
    source = load_source(request, environ)
    check_side(request, source)
    dest = resolve_destination(source.root, source.config, source.environment,
                               sim=request.sim, environ=environ, base_url=request.base_url)
    check_business(source, dest)
    ledger = open_ledger(source.root, dest.resolved, environ=environ)
    announce_sim(dest, source.root, out)
    announce_wait(ledger, request.lock_timeout, err)
    with ledger.lock("apply", timeout=request.lock_timeout):
        state = ledger.read()
        # --auto-approve with a fresh plan: sent while it is made (commands.apply_stream)
        show = show_plan or _default_show(request)
        sent = apply_streamed(request, source, ledger, state, dest, environ=environ,
                              now=now(), fixed=fixed, out=out, err=err, show_plan=show,
                              engine_settings=engine_settings)
        if sent is None:
            sent = plan_then_send(request, source, ledger, state, dest, environ=environ,
                                  now=now(), fixed=fixed, out=out, err=err, show_plan=show,
                                  confirm=confirm, engine_settings=engine_settings)
        if isinstance(sent, int):
            return sent
    result, plan = sent
    return finish_apply(result, source, dest, out, err, environ, plan)


def plan_then_send(request: ApplyRequest, source: ApplySource, ledger: Ledger,
                   state: LedgerState, dest: Destination, *, environ: Mapping[str, str],
                   now: datetime, fixed: Callable[[], datetime] | None, out: TextIO,
                   err: TextIO, show_plan: Callable[[Plan], str], confirm: Confirm | None,
                   engine_settings: EngineSettings | None
                   ) -> tuple[ApplyResult, Plan | None] | int:
    """The whole plan (saved, or made now) shown and approved, then sent; or the exit
    code when nothing is sent."""
    plan = plan_locked(request, source, ledger, state, environ=environ, now=now)
    # where it goes, as resolved now (a saved plan's own side and endpoint were
    # checked to be these; an older one did not record them)
    plan = replace(plan, sim=dest.sim, endpoint=dest.endpoint,
                   ledger=ledger_place(source.root, dest.resolved))
    print(show_plan(plan), file=out)
    if not plan.has_changes:
        print(nothing_to_send(plan), file=out)
        return 0
    if not approved(request, confirm, out, plan, dest):
        return 1
    batch_size = batch_size_for(request, source.config, source.saved)
    total = _total(plan)
    with sending_endpoint(dest, sim_catalog(dest, source, plan),
                   lambda: apart_for_entries(environ, total)) as base_url:
        result = send_plan(plan, ledger, dest, base_url, in_doubt=in_doubt_keys(state),
                           batch_size=batch_size, err=err, total=total,
                           settings=engine_settings and replace(
                               engine_settings, batch_size=batch_size), fixed_now=fixed)
    return result, plan


def finish_apply(result: ApplyResult, source: ApplySource, dest: Destination, out: TextIO,
                 err: TextIO, environ: Mapping[str, str], plan: Plan | None) -> int:
    """After sending, with the lock released: the summary and the exit code."""
    if isinstance(dest.resolved.state, LocalState) and not dest.sim:
        from connectly_declare.commands.ledger_in_ci import warn_untracked_ledger
        from connectly_declare.ledger import local_ledger_path

        warn_untracked_ledger(local_ledger_path(source.root, dest.resolved.state), source.root,
                              environ, out=out, err=err)
    print_summary(result, dest, out, err, environ, plan)
    return exit_code(result)


__all__ = [
    "approved",
    "confirmation",
    "finish_apply",
    "plan_text",
    "plan_then_send",
    "run_apply",
]
