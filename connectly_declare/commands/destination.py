"""Where a plan sends and records: the endpoint, the business, the environment,
the ledger, and which side, the simulator's or the real one.

The simulator's side (`--sim`) has its own ledger (`workspace.config.sim_ledger`) so demo
runs never mark anyone as sent for real; it sends to an in-process simulator, or to a
separately running `connectly-declare sim` named by `--base-url` / DECLARE_BASE_URL, and
only ever on loopback. The real side sends to declare.yaml's `base_url`, or to the one
`--base-url` / DECLARE_BASE_URL give.

A saved plan records its side and endpoint; `apply FILE` refuses the other side with a
sentence saying so (`check_saved_side`), rather than calling the plan stale.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from connectly_declare.apply.client import Secret
from connectly_declare.endpoint import BASE_URL_ENV, clean_url, host_of, is_loopback
from connectly_declare.errors import DeclareError, Location
from connectly_declare.workspace import environments
from connectly_declare.workspace.config import (
    CONFIG_FILE,
    LocalState,
    ResolvedEnvironment,
    WorkspaceConfig,
    sim_ledger,
)


def chosen_base_url(option: str | None, environ: Mapping[str, str]) -> str | None:
    """--base-url wins over DECLARE_BASE_URL; empty means none. Checked: http(s), a host,
    no user or password in it (it is printed in every plan)."""
    given = option if option is not None else environ.get(BASE_URL_ENV)
    where = "--base-url" if option is not None else BASE_URL_ENV
    url = (given or "").strip()
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DeclareError(f"{where} {url!r} is not an http(s) URL",
                           hint="give the base URL, e.g. http://127.0.0.1:8765 (as "
                                "`connectly-declare sim` prints it)")
    if parts.username or parts.password:
        raise DeclareError(f"{where} must not hold a user or password",
                           hint="the API key is read from the variable api_key_env names")
    return clean_url(url)


# For measuring the tool's own speed (bench/bench_scale.py): the requests per second of the
# simulator's limit and of the client's pacing against it, on the simulator's side only;
# 0 turns both off. Never read for real sends.
SIM_RATE_LIMIT_ENV = "DECLARE_SIM_RATE_LIMIT"


def sim_rate_limit(environ: Mapping[str, str]) -> float | None:
    """DECLARE_SIM_RATE_LIMIT as a number of requests per second (0: off), None when unset."""
    text = environ.get(SIM_RATE_LIMIT_ENV, "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise DeclareError(f"{SIM_RATE_LIMIT_ENV} is not a number of requests per second: "
                           f"{text!r}", hint="set it to 0 (no limit) or a positive number, "
                                             "or unset it")
    return value


def ledger_place(root: Path, resolved: ResolvedEnvironment) -> str:
    """Where the ledger of `resolved` is, for people: a path (relative to the current
    folder when inside it) or the PostgreSQL schema."""
    state = resolved.state
    if isinstance(state, LocalState):
        path = root / state.path
        try:
            return path.relative_to(Path.cwd()).as_posix()
        except ValueError:
            return state.path
    return f"postgres schema {state.schema_name} (${state.dsn_env})"


def side(resolved: ResolvedEnvironment, *, sim: bool,
         environ: Mapping[str, str]) -> ResolvedEnvironment:
    """`resolved` as the chosen side sees it: on the simulator's, its own ledger and the
    business the simulator serves."""
    if not sim:
        return resolved
    return resolved.model_copy(update={
        "state": LocalState(path=sim_ledger(resolved.environment)),
        "business_id": environments.sim_business_id(resolved, environ),
        "business_id_env": None})


def plan_endpoint(resolved: ResolvedEnvironment, *, sim: bool,
                  base_url: str | None) -> str | None:
    """The endpoint a plan records: the override, else declare.yaml's (None on the
    simulator's side without one: the in-process simulator)."""
    if base_url is not None:
        return clean_url(base_url)
    return None if sim else clean_url(resolved.base_url)


@dataclass(frozen=True)
class Destination:
    """Where this apply sends and records: everything resolved before the lock is taken.
    `base_url` is "" for the in-process simulator (its URL is known once it listens)."""

    root: Path
    config: WorkspaceConfig
    resolved: ResolvedEnvironment
    business_id: str
    base_url: str
    api_key: Secret
    sim: bool
    # DECLARE_SIM_RATE_LIMIT on the simulator's side (None: unset; 0: no limit, no pacing)
    sim_rate_limit: float | None = None

    @property
    def endpoint(self) -> str | None:
        return clean_url(self.base_url) if self.base_url else None


def resolve_destination(root: Path, config: WorkspaceConfig, environment: str | None, *,
                        sim: bool, environ: Mapping[str, str],
                        base_url: str | None = None) -> Destination:
    """Business id, base URL and API key, each checked before anything is sent."""
    resolved = side(environments.resolve_environment(config, environment), sim=sim,
                    environ=environ)
    if sim:
        rate = sim_rate_limit(environ)
        if base_url is None:  # in-process: a throwaway key nobody sees
            return Destination(root, config, resolved, str(resolved.business_id), "",
                               Secret("sim-" + secrets.token_urlsafe(24)), True, rate)
        if not is_loopback(base_url):
            raise DeclareError(
                f"--sim sends to a simulator on loopback, and {host_of(base_url)} is not one",
                hint=f"unset {BASE_URL_ENV} (or --base-url) for the in-process simulator, or "
                     "give the URL `connectly-declare sim` prints")
        key = environ.get(resolved.api_key_env, "")
        if not key:
            raise DeclareError(
                f"the API key variable {resolved.api_key_env} is not set (or empty)",
                hint=f"export the lines `connectly-declare sim` printed, e.g. "
                     f"export {resolved.api_key_env}=sim-demo-key")
        return Destination(root, config, resolved, str(resolved.business_id), base_url,
                           Secret(key), True, rate)
    if base_url is not None and is_loopback(base_url):
        # the lines `connectly-declare sim` prints, without --sim: the simulator's
        # deliveries would be recorded in the real ledger as sent
        raise DeclareError(
            f"the base URL {host_of(base_url)} is on loopback, where `connectly-declare sim` "
            "listens: without --sim its deliveries would be recorded in the real ledger",
            hint="add --sim (the simulator's own ledger); to send to a loopback endpoint for "
                 "real, set base_url in declare.yaml")
    business = environments.resolve_business_id(resolved, environ)
    if not business:
        hint = (f"set the environment variable {resolved.business_id_env}"
                if resolved.business_id_env else "set business_id in declare.yaml")
        raise DeclareError("no business id to send for", location=Location(CONFIG_FILE),
                           hint=hint)
    key = environ.get(resolved.api_key_env, "")
    if not key:
        raise DeclareError(
            f"the API key variable {resolved.api_key_env} is not set (or empty)",
            location=Location(CONFIG_FILE),
            hint=f"export {resolved.api_key_env}=... (declare.yaml's api_key_env names it); "
                 "or try `apply --sim` to apply against the local simulator")
    resolved = resolved.model_copy(update={"business_id": business, "business_id_env": None})
    return Destination(root, config, resolved, business, base_url or resolved.base_url,
                       Secret(key), False)


def plan_command(environment: str | None, *, sim: bool) -> str:
    """The command that makes a saved plan for this side and environment."""
    env = f" --env {environment}" if environment else ""
    return f"connectly-declare{env} plan{' --sim' if sim else ''} --out FILE"


def check_saved_side(saved_sim: bool, saved_endpoint: str | None, *, sim: bool,
                     endpoint: str, environment: str | None) -> None:
    """Refuse a saved plan made for the other side, or (real side) for another endpoint
    than `endpoint`, the one this apply would send to. Before any key is asked for."""
    env = environment
    if saved_sim and not sim:
        raise DeclareError(
            "this plan was made for the simulator (`plan --sim`): it was checked against the "
            "simulator's ledger, not the real one, and is never sent for real",
            hint=f"make a plan for real sends: {plan_command(env, sim=False)}; or apply this "
                 "one with `apply --sim FILE`")
    if sim and not saved_sim:
        raise DeclareError(
            "this plan was made for real sends (against the real ledger"
            + (f", endpoint {host_of(saved_endpoint)}" if saved_endpoint else "")
            + "): `apply --sim` would check it against the simulator's ledger instead",
            hint=f"make a simulator plan: {plan_command(env, sim=True)}; or apply this one "
                 "without --sim")
    if not sim and saved_endpoint and saved_endpoint != clean_url(endpoint):
        raise DeclareError(
            f"this plan was made for endpoint {host_of(saved_endpoint)}, and this apply "
            f"would send to {host_of(endpoint)}",
            hint=f"send it where it was reviewed for (--base-url / {BASE_URL_ENV}, or "
                 f"declare.yaml's base_url), or make a new plan: "
                 f"{plan_command(env, sim=False)}")


__all__ = [
    "BASE_URL_ENV",
    "SIM_RATE_LIMIT_ENV",
    "Destination",
    "check_saved_side",
    "chosen_base_url",
    "ledger_place",
    "plan_command",
    "plan_endpoint",
    "resolve_destination",
    "side",
    "sim_rate_limit",
]
