"""Running an apply: from a plan (fresh or saved) to a summary, with the ledger lock held,
signals handled and, for `--sim`, the simulator started in-process.

`cli.py` parses options into an :class:`ApplyRequest` and calls :func:`run_apply`, which
runs the typed steps below in order: :func:`load_source` (the workspace or a saved plan),
:func:`resolve_destination`, :func:`check_business`, the ledger opened and locked,
:func:`plan_locked`, :func:`approved`, :func:`send_plan` (the `apply/` package does the
sending) and :func:`print_summary`.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TextIO

from connectly_declare import clock
from connectly_declare.apply.batching import PlannedLike, SendoutLike
from connectly_declare.apply.client import ClientSettings, ConnectlyClient, Secret
from connectly_declare.apply.engine import Engine, EngineSettings
from connectly_declare.apply.progress import Progress
from connectly_declare.apply.results import ApplyResult
from connectly_declare.apply.summary import (
    EXIT_INTERRUPTED,
    exit_code,
    failure_lines,
    nothing_to_send,
    summary_lines,
)
from connectly_declare.commands.destination import (
    SIM_RATE_LIMIT_ENV,
    Destination,
    check_saved_side,
    ledger_place,
    plan_command,
    resolve_destination,
)
from connectly_declare.commands.simhost import apart_for_entries
from connectly_declare.endpoint import is_loopback
from connectly_declare.errors import DeclareError, StalePlan
from connectly_declare.gcpause import steady_gc
from connectly_declare.ledger import open_ledger
from connectly_declare.ledger.base import Ledger, LedgerState
from connectly_declare.ledger.keyview import keys_with_status
from connectly_declare.plan.make import build_plan
from connectly_declare.plan.model import Plan, PlanOptions, check_fresh
from connectly_declare.report import escape, github
from connectly_declare.report.where import destination_text
from connectly_declare.workspace import environments
from connectly_declare.workspace.config import (
    CONFIG_FILE,
    MAX_BATCH_SIZE,
    LocalState,
    WorkspaceConfig,
    sim_ledger,
)
from connectly_declare.workspace.load import Workspace, load_config_only

if TYPE_CHECKING:
    from connectly_declare.sim.catalog import Catalog

IN_DOUBT = ("unknown", "partial")
UNPACED = 1e6  # requests/s of a pacing that never waits (DECLARE_SIM_RATE_LIMIT=0)


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


def announce_wait(ledger: Ledger, timeout: float, err: TextIO) -> None:
    """Say whom we wait for before waiting on a held lock (Terraform's "Acquiring state
    lock"): a pipeline that sits silent for minutes looks hung."""
    if timeout > 0:
        holder = ledger.lock_holder()
        if holder is not None:
            print(f"Waiting up to {timeout:g} s for the ledger's writer lock: "
                  f"{holder.describe()}", file=err, flush=True)


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


def in_doubt_keys(state: LedgerState) -> frozenset[str]:
    return frozenset(keys_with_status(state.keys, IN_DOUBT))  # in bulk over a large ledger


def client_settings(dest: Destination, base_url: str) -> ClientSettings:
    c = dest.config
    rate = c.requests_per_second
    if dest.sim and dest.sim_rate_limit is not None:  # DECLARE_SIM_RATE_LIMIT (0: unpaced)
        rate = dest.sim_rate_limit or UNPACED
    return ClientSettings(base_url=base_url, business_id=dest.business_id,
                          api_key=dest.api_key, requests_per_second=rate,
                          concurrency=c.concurrency, timeout_seconds=c.timeout_seconds)


class _Signals:
    """First SIGINT/SIGTERM: stop gracefully. Second: exit at once (intents are on disk)."""

    def __init__(self, engine: Engine, err: TextIO, grace: float) -> None:
        self.engine = engine
        self.err = err
        self.grace = grace
        self.count = 0

    def __call__(self) -> None:
        self.count += 1
        if self.count == 1:
            print(f"\nStopping: no new requests; waiting up to {self.grace:g} s for those in "
                  "flight. Press Ctrl-C again to exit at once.", file=self.err, flush=True)
            self.engine.stop()
            return
        print("Exiting now. The ledger holds an intent for every request made; the next plan "
              "shows what is in doubt.", file=self.err, flush=True)
        os._exit(EXIT_INTERRUPTED)

    @contextmanager
    def installed(self, loop: asyncio.AbstractEventLoop) -> Iterator[None]:
        sigs = (signal.SIGINT, signal.SIGTERM)
        for sig in sigs:
            loop.add_signal_handler(sig, self)
        try:
            yield
        finally:
            for sig in sigs:
                loop.remove_signal_handler(sig)


def send_plan(plan: Plan, ledger: Ledger, dest: Destination, base_url: str, *,
              in_doubt: frozenset[str], batch_size: int, err: TextIO,
              settings: EngineSettings | None = None, total: int,
              handle_signals: bool = True,
              fixed_now: Callable[[], datetime] | None = None) -> ApplyResult:
    """Send every planned entry (the caller holds the lock); return the summary."""
    return send_entries(_sends_of(plan), ledger, dest, base_url, in_doubt=in_doubt,
                        batch_size=batch_size, err=err, settings=settings, total=total,
                        handle_signals=handle_signals, fixed_now=fixed_now)


def _sends_of(plan: Plan) -> Iterator[tuple[SendoutLike, PlannedLike]]:
    yield from plan.iter_sends()  # read once the engine starts


def send_entries(sends: Iterable[tuple[SendoutLike, PlannedLike] | None], ledger: Ledger,
                 dest: Destination, base_url: str, *, in_doubt: frozenset[str],
                 batch_size: int, err: TextIO, settings: EngineSettings | None = None,
                 total: int | None, handle_signals: bool = True,
                 fixed_now: Callable[[], datetime] | None = None,
                 on_engine: Callable[[Engine], None] | None = None) -> ApplyResult:
    """Send `sends` (a plan's, or a plan's being made: plan.stream; the caller holds the
    lock); return the summary. `on_engine` is told the engine before it runs."""
    engine_settings = settings or EngineSettings(batch_size=batch_size,
                                                 concurrency=dest.config.concurrency)

    async def go() -> ApplyResult:
        progress = Progress(total, err)
        client = ConnectlyClient(client_settings(dest, base_url))
        # DECLARE_TEST_NOW: the ledger's times follow the tests' clock too
        timed: dict[str, Any] = {} if fixed_now is None else {
            "now": lambda: fixed_now().isoformat(timespec="milliseconds")}
        engine = Engine(sends, ledger, client, settings=engine_settings, in_doubt=in_doubt,
                        progress=progress, **timed)
        if on_engine is not None:
            on_engine(engine)
        handler = _Signals(engine, err, engine_settings.grace_seconds)
        guard = handler.installed(asyncio.get_running_loop()) if handle_signals else nullcontext()
        try:
            with guard:
                async with client:
                    return await engine.run()
        finally:
            progress.close()

    # No pauses while sending: the plan and ledger state built so far are frozen out of
    # the collector's sight and full collections are put off (gcpause.steady_gc).
    with steady_gc():
        return asyncio.run(go())


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


@contextmanager
def _endpoint(dest: Destination, catalog: Catalog | None,
              apart: Callable[[], bool] = lambda: False) -> Iterator[str]:
    """The base URL to send to: the real one, a simulator running apart, or one started
    for this apply on loopback: in a thread, or from a child process when `apart()` says
    the run is large (commands.simhost)."""
    if catalog is None:  # not a --sim run that starts its own simulator
        yield dest.base_url
        return
    from connectly_declare.sim import create_app, serve_in_thread

    # DECLARE_SIM_RATE_LIMIT (0: off); unset, the simulator's default
    rate_limit = 200.0 if dest.sim_rate_limit is None else dest.sim_rate_limit or None
    if apart():
        from connectly_declare.sim.child import simulator_process

        with simulator_process(catalog, rate_limit) as url:
            yield url
        return
    with serve_in_thread(create_app(catalog, rate_limit=rate_limit), "127.0.0.1", 0) as url:
        yield url


def plan_text(plan: Plan, *, show_recipients: bool = False, color: bool = False) -> str:
    """The plan as `connectly-declare plan` shows it, for the reviewer."""
    from connectly_declare.report.format import format_text

    return format_text(plan, show_recipients=show_recipients, color=color).rstrip("\n")


def _total(plan: Plan) -> int:
    return sum(len(s.to_send) for s in plan.sendouts)  # counted, not walked (plan.spool)


def _default_show(request: ApplyRequest) -> Callable[[Plan], str]:
    return lambda plan: plan_text(plan, show_recipients=request.show_recipients)


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


def print_summary(result: ApplyResult, dest: Destination, out: TextIO, err: TextIO,
                  environ: Mapping[str, str], plan: Plan | None = None) -> None:
    lines = summary_lines(result)
    # Every output names the environment: pipelines applying several log into one place.
    lines[0] += f" Environment {environments.environment_label(dest.resolved.environment)}."
    if plan is not None:  # and where: endpoint, business, ledger, simulator or not
        lines.insert(1, "  " + destination_text(plan))
    for line in lines:
        print(escape.terminal(line), file=out)  # names and API errors quoted in it
    # In GitHub Actions, entries refused for good also become warning annotations (stderr:
    # the runner reads both streams).
    for line in github.failure_annotations(map(escape.terminal, failure_lines(result)),
                                           title="connectly-declare: failed entries",
                                           environ=environ):
        print(line, file=err)


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
        from connectly_declare.commands.apply_stream import apply_streamed

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
    with _endpoint(dest, sim_catalog(dest, source, plan),
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
    "ApplyRequest",
    "ApplySource",
    "announce_sim",
    "announce_wait",
    "approved",
    "batch_size_for",
    "check_business",
    "check_side",
    "client_settings",
    "confirmation",
    "finish_apply",
    "in_doubt_keys",
    "load_source",
    "plan_locked",
    "plan_options",
    "plan_text",
    "plan_then_send",
    "print_summary",
    "run_apply",
    "send_entries",
    "send_plan",
    "sim_catalog",
    "sim_catalog_from_plan",
]
