"""`connectly-declare sim`: the command's work, apart from option parsing (cli.py)."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from connectly_declare.errors import DeclareError
from connectly_declare.sim.app import Simulator
from connectly_declare.sim.catalog import Catalog, load_catalog
from connectly_declare.sim.engine import RepeatStyle
from connectly_declare.sim.exports import DEMO_API_KEY, Exports, how_to_apply, workspace_exports
from connectly_declare.sim.faults import FaultConfig
from connectly_declare.sim.server import check_loopback, run_server

API_KEY_ENV = "DECLARE_SIM_API_KEY"
DEFAULT_PORT = 8765


@dataclass(frozen=True)
class SimOptions:
    """What `connectly-declare sim` was asked for, as plain data."""

    catalog: Path | None = None
    workspace: Path | None = None  # where to look for declare.yaml without --catalog
    environment: str | None = None  # --env (else DECLARE_ENV), as for `apply --sim`
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    api_key: str | None = None
    rate_limit: float | None = 200.0
    burst: int | None = None
    faults: FaultConfig = field(default_factory=FaultConfig)
    access_log: bool = False
    repeat_style: RepeatStyle = "page"


def with_extra_key(catalog: Catalog, api_key: str) -> Catalog:
    """The catalog with `api_key` accepted by every business as well."""
    return catalog.model_copy(update={"businesses": [
        b.model_copy(update={"api_keys": [*b.api_keys, api_key]}) for b in catalog.businesses
    ]})


def build_catalog(options: SimOptions, environ: Mapping[str, str]) -> tuple[Catalog, str]:
    """The catalog, and where its API key comes from (said, never shown). Every business
    also accepts DEMO_API_KEY, the throwaway key of the printed `export` lines.

    With --catalog: the file, plus the key of --api-key / DECLARE_SIM_API_KEY if given.
    Without: the workspace's campaigns, for the business and environment `apply --sim`
    would send as (--env / DECLARE_ENV), accepting that key, else the key in the variable
    the environment names (`api_key_env`, so `apply` works unchanged), else DEMO_API_KEY."""
    api_key = options.api_key or environ.get(API_KEY_ENV)
    if options.catalog is not None:
        catalog = load_catalog(options.catalog)
        catalog = with_extra_key(catalog, DEMO_API_KEY)
        if api_key:
            return with_extra_key(catalog, api_key), f"the catalog's, and --api-key/${API_KEY_ENV}"
        return catalog, f"the catalog's, and the demo key {DEMO_API_KEY!r}"
    from connectly_declare.sim.workspace import catalog_from_workspace
    from connectly_declare.workspace import environments
    from connectly_declare.workspace.load import find_workspace, load_workspace

    try:
        root = find_workspace(options.workspace or Path.cwd())
    except DeclareError as err:
        raise DeclareError(f"no --catalog given, and {err.problem.message}",
                           hint="pass --catalog FILE, or run in a workspace (or -C DIR)") from err
    workspace = load_workspace(root)
    resolved = environments.resolve_environment(
        workspace.config, environments.chosen_environment(options.environment, environ))
    source = f"--api-key/${API_KEY_ENV}"
    if not api_key and environ.get(resolved.api_key_env):
        api_key, source = environ[resolved.api_key_env], f"${resolved.api_key_env}"
    business = environments.sim_business_id(resolved, environ)
    catalog = catalog_from_workspace(workspace, DEMO_API_KEY, business)
    if not api_key or api_key == DEMO_API_KEY:
        return catalog, f"the demo key {DEMO_API_KEY!r}"
    return with_extra_key(catalog, api_key), f"{source}, and the demo key {DEMO_API_KEY!r}"


# The `sim` options that set each fault, as the user typed them (not the dataclass repr).
_FAULT_FLAGS = {"latency_ms": "--latency-ms", "jitter_ms": "--jitter-ms",
                "error_500_rate": "--fail-rate", "error_429_rate": "--429-rate",
                "timeout_after_accept_rate": "--timeout-rate",
                "drop_after_accept_rate": "--drop-rate", "hang_seconds": "--hang-seconds",
                "seed": "--seed"}


def fault_flags(faults: FaultConfig) -> str:
    """The faults as the `sim` options that give them (those not at their default)."""
    default = FaultConfig()
    return " ".join(f"{flag} {getattr(faults, name):g}" for name, flag in _FAULT_FLAGS.items()
                    if getattr(faults, name) != getattr(default, name))


def describe(catalog: Catalog, options: SimOptions, url: str, key_source: str,
             exports: Exports | None = None) -> list[str]:
    """What the command prints once listening: the URL, businesses and campaigns, never
    the API keys."""
    lines = [f"Connectly simulator listening on {url}"]
    for b in catalog.businesses:
        names = ", ".join(c.name for c in b.campaigns) or "no campaigns"
        lines.append(f"  business {b.id}: {url}/v1/businesses/{b.id}/send/campaigns "
                     f"({len(b.api_keys)} API key(s); campaigns: {names})")
    lines.append(f"  API key: {key_source}")
    limit = f"{options.rate_limit:g} requests/s per key" if options.rate_limit else "off"
    lines.append(f"  rate limit: {limit}; inspect: {url}/_sim/stats, {url}/_sim/deliveries")
    lines.append(f"  repeats under allow_one: answered {options.repeat_style}-style"
                 + (" (ERROR_CODE_CAMPAIGN_ENTRY_INVALID, as the vendor's page)"
                    if options.repeat_style == "page" else " (rejected without an error)"))
    if options.faults.any:
        lines.append(f"  faults: {fault_flags(options.faults)}")
    lines.extend(how_to_apply(exports or Exports(), url))
    lines.append("Stop with Ctrl-C.")
    return lines


def _print(line: str) -> None:
    print(line, flush=True)


def serve(options: SimOptions, *, echo: Callable[[str], None] = _print,
          environ: Mapping[str, str] = os.environ) -> int:
    """Serve the simulator until SIGINT/SIGTERM; return the exit code (0 on a clean stop)."""
    check_loopback(options.host)
    catalog, key_source = build_catalog(options, environ)
    exports = workspace_exports(options.workspace, options.environment, environ)
    simulator = Simulator(catalog, faults=options.faults, rate_limit=options.rate_limit,
                          burst=options.burst, repeat_style=options.repeat_style)

    def ready(url: str) -> None:
        for line in describe(catalog, options, url, key_source, exports):
            echo(line)

    stopped_by = run_server(simulator.app, options.host, options.port, on_ready=ready,
                            access_log=options.access_log)
    stats = simulator.state.stats
    name = signal.Signals(stopped_by).name if stopped_by else "the server"
    echo(f"Stopped by {name} after {stats.requests} requests "
         f"({stats.accepted} entries accepted, {stats.rejected} rejected).")
    return 0
