"""What an apply reads and checks before anything is sent: the request (`ApplyRequest`),
its source (a loaded workspace or a saved plan, `ApplySource`), the saved plan's side,
endpoint and business checked, the plan made or checked fresh under the lock, and the
in-process simulator's catalog for `--sim`."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TextIO

from connectly_declare.apply.client import Secret
from connectly_declare.commands.destination import (
    SIM_RATE_LIMIT_ENV,
    Destination,
    check_saved_side,
    plan_command,
)
from connectly_declare.errors import DeclareError, StalePlan
from connectly_declare.ledger.base import Ledger, LedgerState
from connectly_declare.plan.make import build_plan
from connectly_declare.plan.model import Plan, PlanOptions, check_fresh
from connectly_declare.workspace import environments
from connectly_declare.workspace.config import (
    CONFIG_FILE,
    MAX_BATCH_SIZE,
    WorkspaceConfig,
    sim_ledger,
)
from connectly_declare.workspace.load import Workspace, load_config_only

if TYPE_CHECKING:
    from connectly_declare.sim.catalog import Catalog


@dataclass(frozen=True)
class ApplyRequest:
    """What `connectly-declare apply` was asked for, as plain data."""

    start: Path
    plan_file: Path | None = None
    environment: str | None = None
    auto_approve: bool = False
    sim: bool = False
    batch_size: int | None = None
    lock_timeout: float = 0.0
    show_recipients: bool = False
    targets: tuple[str, ...] = ()
    max_recipients: int | None = None
    allow_past_schedule: bool = False
    recover_in_doubt: bool = False  # plan.recovery
    retry_failed: bool = False  # --retry-failed [SENDOUT]: send `failed` entries again
    retry_failed_sendouts: tuple[str, ...] = ()
    quiet_hours: Literal["shift", "hold"] = "shift"
    base_url: str | None = None  # --base-url / DECLARE_BASE_URL, checked (destination.py)


def batch_size_for(request: ApplyRequest, config: WorkspaceConfig, saved: Plan | None) -> int:
    """Entries per request: a saved plan's own (what was reviewed is what is sent), else
    --batch-size, else declare.yaml's. A different --batch-size for a saved plan is
    refused rather than silently winning or losing."""
    if saved is None or "batch_size" not in saved.options:
        return request.batch_size or config.batch_size
    recorded = saved.options["batch_size"]
    if not isinstance(recorded, int) or isinstance(recorded, bool) \
            or not 1 <= recorded <= MAX_BATCH_SIZE:
        raise DeclareError(f"the saved plan's batch_size {recorded!r} is not a number of "
                           f"entries from 1 to {MAX_BATCH_SIZE}", hint="re-plan")
    if request.batch_size is not None and request.batch_size != recorded:
        raise DeclareError(
            f"the saved plan was reviewed with batch size {recorded}, not {request.batch_size}",
            hint="apply it without --batch-size, or re-plan with batch_size set in "
                 f"{CONFIG_FILE}")
    return recorded


def sim_catalog_from_plan(plan: Plan, business: str, key: Secret) -> Catalog:
    """The simulator's catalog from a saved plan alone (its campaigns, versions and the
    variables its entries carry): a saved plan is applied without reading manifests."""
    from connectly_declare.sim import catalog_from_campaigns

    versions: dict[str, dict[str | None, set[str]]] = {}
    for _sendout, planned in plan.iter_sends():
        entry = planned.entry
        versions.setdefault(entry.campaign, {}).setdefault(entry.version, set()).update(
            entry.variables)
    return catalog_from_campaigns(business, key.reveal(), [
        (name, [(v, sorted(names)) for v, names in by.items() if v is not None],
         sorted(by.get(None, set())))
        for name, by in versions.items()])


@dataclass(frozen=True)
class ApplySource:
    """What an apply sends from: a loaded workspace (planned under the lock) or a saved
    plan (applied as reviewed, without reading manifests)."""

    root: Path
    config: WorkspaceConfig
    environment: str | None
    workspace: Workspace | None = None
    saved: Plan | None = None


def load_source(request: ApplyRequest, environ: Mapping[str, str]) -> ApplySource:
    """The workspace, or the saved plan and declare.yaml, and the environment to use."""
    chosen = environments.chosen_environment(request.environment, environ)
    if request.plan_file is None:
        from connectly_declare.workspace.load import load_workspace

        ws = load_workspace(request.start)
        return ApplySource(ws.root, ws.config, chosen, workspace=ws)
    from connectly_declare.plan.planfile import read_plan

    saved = read_plan(request.plan_file)  # refuses damaged / newer files
    root, config = load_config_only(request.start)
    if chosen and saved.environment != chosen:
        raise DeclareError(
            f"the saved plan is for environment {saved.environment or '(none)'}, "
            f"not {request.environment}", hint="apply it without --env, or re-plan")
    return ApplySource(root, config, chosen or saved.environment, saved=saved)


def check_side(request: ApplyRequest, source: ApplySource) -> None:
    """A saved plan is applied on the side (simulator or real) and to the endpoint it was
    made for; said before any API key is asked for."""
    if source.saved is not None:
        check_saved_side(source.saved.sim, source.saved.endpoint, sim=request.sim,
                         environment=source.environment,
                         endpoint=request.base_url or environments.resolve_environment(
                             source.config, source.environment).base_url)


def check_business(source: ApplySource, dest: Destination) -> None:
    """A saved plan is sent only for the business it was planned for."""
    saved = source.saved
    if saved is not None and saved.business_id and saved.business_id != dest.business_id \
            and not dest.sim:
        raise DeclareError(f"the saved plan is for business {saved.business_id}, "
                           f"not {dest.business_id}", hint="re-plan for this business")


def announce_sim(dest: Destination, root: Path, out: TextIO) -> None:
    if dest.sim:
        where = root / sim_ledger(dest.resolved.environment)
        with suppress(ValueError):
            where = where.relative_to(Path.cwd())
        print(f"Simulator run: its ledger is {where} (apart from the real one; delete it to "
              "start the demo afresh).", file=out)
        if dest.sim_rate_limit is not None:
            rate = f"{dest.sim_rate_limit:g} requests/s" if dest.sim_rate_limit else "off"
            print(f"{SIM_RATE_LIMIT_ENV} is set: the simulator's rate limit and the pacing "
                  f"against it are {rate} (for benchmarks).", file=out)


def plan_locked(request: ApplyRequest, source: ApplySource, ledger: Ledger,
                state: LedgerState, *, environ: Mapping[str, str], now: datetime) -> Plan:
    """The plan to send, with the lock held: the saved one if still fresh, else a new
    one against `state`, read under the lock (the ledger is folded once)."""
    if source.saved is not None:
        try:
            check_fresh(source.saved, state)
        except StalePlan as exc:
            raise StalePlan(f"refusing a stale plan: {exc.problem.message}",
                            hint="make a new plan and review it: " + plan_command(
                                source.environment, sim=request.sim)) from exc
        return source.saved
    assert source.workspace is not None
    return build_plan(source.workspace, ledger, plan_options(request, source),
                      environ=environ, now=now, state=state)


def plan_options(request: ApplyRequest, source: ApplySource) -> PlanOptions:
    """The options of a fresh plan, from the request and declare.yaml."""
    return PlanOptions(targets=request.targets, max_recipients=request.max_recipients,
                       allow_past_schedule=request.allow_past_schedule,
                       recover_in_doubt=request.recover_in_doubt,
                       batch_size=batch_size_for(request, source.config, None),
                       retry_failed=request.retry_failed,
                       retry_failed_sendouts=request.retry_failed_sendouts,
                       quiet_hours=request.quiet_hours,
                       frequency_caps=tuple(c.as_tuple() for c in source.config.frequency_cap))


def sim_catalog(dest: Destination, source: ApplySource, plan: Plan | None) -> Catalog | None:
    """The in-process simulator's catalog (None: not a --sim run): from the manifests,
    else from the saved plan alone."""
    if not dest.sim or dest.base_url:  # real, or a simulator running apart
        return None
    if source.workspace is not None:
        from connectly_declare.sim.workspace import catalog_from_workspace

        return catalog_from_workspace(source.workspace, dest.api_key.reveal(),
                                      dest.business_id)
    assert plan is not None  # a saved plan's run
    return sim_catalog_from_plan(plan, dest.business_id, dest.api_key)


__all__ = [
    "ApplyRequest",
    "ApplySource",
    "announce_sim",
    "batch_size_for",
    "check_business",
    "check_side",
    "load_source",
    "plan_locked",
    "plan_options",
    "sim_catalog",
    "sim_catalog_from_plan",
]
