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
from connectly_declare.sim.faults import FaultConfig
from connectly_declare.sim.server import check_loopback, run_server

API_KEY_ENV = "DECLARE_SIM_API_KEY"
DEFAULT_PORT = 8765


@dataclass(frozen=True)
class SimOptions:
    """What `connectly-declare sim` was asked for, as plain data."""

    catalog: Path | None = None
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    api_key: str | None = None
    rate_limit: float | None = 200.0
    burst: int | None = None
    faults: FaultConfig = field(default_factory=FaultConfig)
    access_log: bool = False


def with_extra_key(catalog: Catalog, api_key: str) -> Catalog:
    """The catalog with `api_key` accepted by every business as well."""
    return catalog.model_copy(update={"businesses": [
        b.model_copy(update={"api_keys": [*b.api_keys, api_key]}) for b in catalog.businesses
    ]})


def build_catalog(options: SimOptions, environ: Mapping[str, str]) -> Catalog:
    """The catalog file of `--catalog`, plus the key of --api-key / DECLARE_SIM_API_KEY."""
    if options.catalog is None:
        # TODO(workspace): build the catalog from the workspace's Campaign manifests once
        # the workspace loader exists (catalog_from_campaigns takes the plain data).
        raise DeclareError("no simulator catalog given",
                           hint="pass --catalog FILE (YAML or JSON; see README.md, Simulator)")
    catalog = load_catalog(options.catalog)
    api_key = options.api_key or environ.get(API_KEY_ENV)
    return with_extra_key(catalog, api_key) if api_key else catalog


def describe(catalog: Catalog, options: SimOptions, url: str) -> list[str]:
    """What the command prints once listening: the URL, businesses and campaigns, never
    the API keys."""
    lines = [f"Connectly simulator listening on {url}"]
    for b in catalog.businesses:
        names = ", ".join(c.name for c in b.campaigns) or "no campaigns"
        lines.append(f"  business {b.id}: {url}/v1/businesses/{b.id}/send/campaigns "
                     f"({len(b.api_keys)} API key(s); campaigns: {names})")
    limit = f"{options.rate_limit:g} requests/s per key" if options.rate_limit else "off"
    lines.append(f"  rate limit: {limit}; inspect: {url}/_sim/stats, {url}/_sim/deliveries")
    if options.faults.any:
        lines.append(f"  faults: {options.faults}")
    lines.append("Stop with Ctrl-C.")
    return lines


def _print(line: str) -> None:
    print(line, flush=True)


def serve(options: SimOptions, *, echo: Callable[[str], None] = _print,
          environ: Mapping[str, str] = os.environ) -> int:
    """Serve the simulator until SIGINT/SIGTERM; return the exit code (0 on a clean stop)."""
    check_loopback(options.host)
    catalog = build_catalog(options, environ)
    simulator = Simulator(catalog, faults=options.faults, rate_limit=options.rate_limit,
                          burst=options.burst)

    def ready(url: str) -> None:
        for line in describe(catalog, options, url):
            echo(line)

    stopped_by = run_server(simulator.app, options.host, options.port, on_ready=ready,
                            access_log=options.access_log)
    stats = simulator.state.stats
    name = signal.Signals(stopped_by).name if stopped_by else "the server"
    echo(f"Stopped by {name} after {stats.requests} requests "
         f"({stats.accepted} entries accepted, {stats.rejected} rejected).")
    return 0
