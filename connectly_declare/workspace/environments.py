"""Choosing the environment (`--env NAME` or `DECLARE_ENV`) a command works on.

`declare.yaml` may define named environments (staging, production...), each overriding the
business id, base URL, API-key variable and ledger settings (`config.EnvironmentSettings`). When it
defines any, a command that reads or writes a ledger must be told which one: falling back
to the top-level settings silently would let a pipeline that forgot `--env` plan or apply
against the wrong ledger, so that is an error naming the known environments.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from connectly_declare.errors import DeclareError, Location
from connectly_declare.workspace.config import (
    CONFIG_FILE,
    ENVIRONMENT_NAME_PATTERN,
    SIM_BUSINESS_ID,
    ResolvedEnvironment,
    WorkspaceConfig,
)

ENV_VAR = "DECLARE_ENV"
NO_ENVIRONMENT = "default"  # how outputs name the top-level settings
_NAME = re.compile(ENVIRONMENT_NAME_PATTERN)


def check_name(name: str, what: str = "--env / DECLARE_ENV") -> str:
    """`name` when it is a valid environment name, else a DeclareError saying why."""
    if _NAME.fullmatch(name) is None:
        from connectly_declare.report.escape import terminal

        shown = terminal(name if len(name) <= 80 else name[:80] + "…")
        raise DeclareError(
            f"{what}: '{shown}' is not a valid environment name",
            hint="use letters, digits, '-', '_' and '.', at most 63 characters, "
                 "starting with a letter or digit")
    return name


def chosen_environment(option: str | None, environ: Mapping[str, str]) -> str | None:
    """`--env` wins over DECLARE_ENV; empty means none."""
    name = option if option is not None else environ.get(ENV_VAR)
    if name is None or not name.strip():
        return None
    return check_name(name.strip())


def resolve_environment(config: WorkspaceConfig, name: str | None) -> ResolvedEnvironment:
    """The effective settings of environment `name` (None: the top level)."""
    known = ", ".join(sorted(config.environments))
    if name is not None:
        check_name(name)
    if name is None:
        if config.environments:
            raise DeclareError(
                f"{CONFIG_FILE} defines environments ({known}): choose one",
                location=Location(CONFIG_FILE),
                hint=f"pass --env NAME or set {ENV_VAR}, e.g. "
                     f"connectly-declare --env {sorted(config.environments)[0]} plan")
        return config.for_environment(None)
    if name not in config.environments:
        raise DeclareError(
            f"unknown environment {name!r}: {CONFIG_FILE} defines "
            + (known if known else "no environments"),
            location=Location(CONFIG_FILE),
            hint="add it under `environments:` in declare.yaml, or fix --env / "
                 f"{ENV_VAR}")
    return config.for_environment(name)


def resolve_business_id(resolved: ResolvedEnvironment, environ: Mapping[str, str]) -> str | None:
    """The business id of `resolved`: given directly, or read from the variable it names
    (None when that variable is unset: planning needs no business id)."""
    if resolved.business_id is not None:
        return resolved.business_id
    if resolved.business_id_env:
        return environ.get(resolved.business_id_env) or None
    return None


def sim_business_id(resolved: ResolvedEnvironment, environ: Mapping[str, str]) -> str:
    """The business the simulator serves (`apply --sim` and `connectly-declare sim`
    alike): the environment's business id when it has one, else SIM_BUSINESS_ID."""
    return resolve_business_id(resolved, environ) or SIM_BUSINESS_ID


def environment_label(name: str | None) -> str:
    """What every output calls the environment."""
    return name or NO_ENVIRONMENT


__all__ = ["ENV_VAR", "NO_ENVIRONMENT", "check_name", "chosen_environment", "environment_label",
           "resolve_business_id", "resolve_environment", "sim_business_id"]
