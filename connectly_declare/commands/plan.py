"""Running `plan` and `show`: options in, the formatted plan out, an exit code back.

`plan` needs no API key and no network: it reads the manifests, their data files and the
ledger (without locking), and writes nothing but the optional `--out` file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TextIO

from connectly_declare import clock
from connectly_declare.errors import DeclareError, LedgerError, PlanError
from connectly_declare.plan.model import Plan, PlanOptions

if TYPE_CHECKING:
    from connectly_declare.workspace.config import ResolvedEnvironment
    from connectly_declare.workspace.load import Workspace

EXIT_CHANGES = 2


@dataclass(frozen=True)
class ShowRequest:
    fmt: str = "text"
    details: bool = False
    show_recipients: bool = False
    detailed_exitcode: bool = False
    color: bool = False


@dataclass(frozen=True)
class PlanRequest:
    start: Path
    environment: str | None = None
    targets: tuple[str, ...] = ()
    max_recipients: int | None = None
    allow_past_schedule: bool = False
    recover_in_doubt: bool = False  # plan.recovery
    quiet_hours: Literal["shift", "hold"] = "shift"
    out_file: Path | None = None
    show: ShowRequest = ShowRequest()
    out_comment: Path | None = None  # the pull-request comment body (Markdown + marker)
    retry_failed: bool = False  # --retry-failed [SENDOUT]
    retry_failed_sendouts: tuple[str, ...] = ()
    sim: bool = False  # the simulator's side: its own ledger, as `apply --sim` sends
    base_url: str | None = None  # --base-url / DECLARE_BASE_URL, checked


def emit(plan: Plan, show: ShowRequest, out: TextIO,
         regions: tuple[str, ...] | None = None) -> int:
    """Write `plan` to `out` in the chosen format; the exit code (2 for changes with
    --detailed-exitcode)."""
    from connectly_declare.report.format import FormatOptions, format_plan
    from connectly_declare.report.mask import DEFAULT_REGIONS

    options = FormatOptions(show_recipients=show.show_recipients, details=show.details,
                            color=show.color, regions=regions or DEFAULT_REGIONS)
    for chunk in format_plan(plan, show.fmt, options):
        out.write(chunk)
    out.flush()
    return EXIT_CHANGES if show.detailed_exitcode and plan.has_changes else 0


def workspace_regions(ws: Workspace) -> tuple[str, ...]:
    """The regions whose national numbers (`(650) 555-0102`) outputs mask: the workspace's
    default region and every region an audience source names."""
    regions = [ws.config.default_region]
    for audience in ws.audiences.values():
        for source in audience.sources:
            region = getattr(source, "region", None)
            if region and region not in regions:
                regions.append(region)
    return tuple(regions)


def make_workspace_plan(request: PlanRequest, *, environ: Mapping[str, str],
                        now: datetime) -> Plan:
    """Load the workspace and its ledger for the chosen environment and plan it."""
    return _plan_workspace(request, environ=environ, now=now)[0]


def _plan_workspace(request: PlanRequest, *, environ: Mapping[str, str],
                    now: datetime) -> tuple[Plan, tuple[str, ...]]:
    from connectly_declare.commands.destination import side
    from connectly_declare.ledger import open_ledger
    from connectly_declare.plan.make import build_plan
    from connectly_declare.workspace.environments import resolve_environment
    from connectly_declare.workspace.load import load_workspace

    ws = load_workspace(request.start)
    resolved = side(resolve_environment(ws.config, request.environment), sim=request.sim,
                    environ=environ)
    ledger = open_ledger(ws.root, resolved, environ=environ)
    options = PlanOptions(targets=request.targets, max_recipients=request.max_recipients,
                          allow_past_schedule=request.allow_past_schedule,
                          recover_in_doubt=request.recover_in_doubt,
                          batch_size=ws.config.batch_size, retry_failed=request.retry_failed,
                          retry_failed_sendouts=request.retry_failed_sendouts,
                          quiet_hours=request.quiet_hours,
                          frequency_caps=tuple(c.as_tuple() for c in ws.config.frequency_cap))
    try:
        plan = build_plan(ws, ledger, options, environ=environ, now=now,
                          keep=keeps_entries(request))
    except (PlanError, LedgerError):
        raise
    except DeclareError as first:
        # Reading the data stopped at its first problem: report every one of the run at
        # once (a second, collecting read of the sendouts planned), not one per run.
        from connectly_declare.entries.check import DataErrors, check_data

        planned = [name for name, sendout in ws.sendouts.items() if sendout.enabled
                   and (not request.targets or name in request.targets)]
        found = check_data(ws, sendouts=planned, audiences=False, environ=environ)
        if found.count > 1:
            raise DataErrors(found) from first
        raise
    return _where(plan, request, ws.root, resolved), workspace_regions(ws)


def keeps_entries(request: PlanRequest) -> bool:
    """Whether `plan` reads its entries to send after making the plan: to save it, or to
    list them (JSON, --details). Otherwise it shows counts, samples and notes only, and its
    entries to send are counted, not kept (plan.counted: no spool, no temporary file)."""
    return request.out_file is not None or request.show.fmt == "json" or request.show.details


def _where(plan: Plan, request: PlanRequest, root: Path, resolved: ResolvedEnvironment) -> Plan:
    """`plan` with where it is for: side, endpoint and ledger (header, saved file)."""
    from connectly_declare.commands.destination import ledger_place, plan_endpoint

    return replace(plan, sim=request.sim, ledger=ledger_place(root, resolved),
                   endpoint=plan_endpoint(resolved, sim=request.sim, base_url=request.base_url))


def run_plan(request: PlanRequest, *, out: TextIO, err: TextIO,
             environ: Mapping[str, str] = os.environ,
             now: Callable[[], datetime] = clock.now) -> int:
    """`connectly-declare plan`."""
    from connectly_declare.plan.planfile import write_plan

    now = clock.fixed_clock(environ, err) or now
    plan, regions = _plan_workspace(request, environ=environ, now=now())
    if request.out_file is not None:
        write_plan(plan, request.out_file)
    code = emit(plan, request.show, out, regions)
    review_outputs(plan, request.out_comment, environ, regions)
    annotate_failures(plan, err, environ)
    if request.out_file is not None:
        err.write(f"Saved the plan to {request.out_file}; send exactly it with "
                  f"`connectly-declare apply {request.out_file}`.\n")
    return code


def review_outputs(plan: Plan, out_comment: Path | None, environ: Mapping[str, str],
                   regions: tuple[str, ...] | None = None) -> None:
    """The pull-request comment body (--out-comment) and, in a GitHub Actions job, the
    Markdown plan appended to the job summary. Both always mask phone numbers, whatever
    --show-recipients says: they are read by everyone who can see the pull request."""
    from connectly_declare.report import github
    from connectly_declare.report.format import FormatOptions, format_plan
    from connectly_declare.report.mask import DEFAULT_REGIONS

    summary = github.in_github_actions(environ) and environ.get("GITHUB_STEP_SUMMARY")
    if out_comment is None and not summary:
        return
    options = FormatOptions(show_recipients=False, regions=regions or DEFAULT_REGIONS)
    markdown = "".join(format_plan(plan, "markdown", options))
    if out_comment is not None:
        github.write_comment(out_comment, markdown, plan.environment)
    if summary:
        github.append_step_summary(markdown, environ)


def failure_notes(plan: Plan) -> list[str]:
    """One line per sendout with `failed` entries: how many, and the server's words."""
    return [f"sendout {s.name}: {note}" for s in plan.sendouts if s.counts.get("failed")
            for note in s.notes if note.startswith("failed: ")]


def annotate_failures(plan: Plan, err: TextIO, environ: Mapping[str, str]) -> None:
    """In a GitHub Actions job, a warning annotation per sendout with `failed` entries
    (on stderr: the runner reads both streams, and stdout may be JSON)."""
    from connectly_declare.report import escape, github

    for line in github.failure_annotations(map(escape.terminal, failure_notes(plan)),
                                           title="connectly-declare: failed entries",
                                           environ=environ):
        err.write(line + "\n")


def run_show(path: Path, show: ShowRequest, *, out: TextIO, sim: bool = False) -> int:
    """`connectly-declare show FILE` (`--sim`: refuse a plan for real sends)."""
    from connectly_declare.errors import Location
    from connectly_declare.plan.planfile import read_plan

    plan = read_plan(path)
    if sim and not plan.sim:
        raise DeclareError(
            "this plan was made for real sends, not for the simulator (`plan --sim`)",
            location=Location(str(path)), hint="show it without --sim")
    return emit(plan, show, out, _config_regions(path.resolve().parent))


def _config_regions(start: Path) -> tuple[str, ...] | None:
    """The default region of the workspace around `start`, whose national numbers `show`
    masks too (None when there is no readable workspace there: the default regions)."""
    from connectly_declare.workspace.load import load_config_only

    try:
        return (load_config_only(start)[1].default_region,)
    except (DeclareError, OSError):
        return None


__all__ = ["EXIT_CHANGES", "PlanRequest", "ShowRequest", "annotate_failures", "emit",
           "failure_notes", "keeps_entries", "make_workspace_plan", "review_outputs", "run_plan",
           "run_show", "workspace_regions"]
