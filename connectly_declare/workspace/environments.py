"""Choosing the environment (`--env NAME` or `DECLARE_ENV`) a command works on.

`declare.yaml` may define named environments (staging, production...), each overriding the
business id, base URL, API-key variable and ledger settings (`config.EnvironmentSettings`). When it
defines any, a command that reads or writes a ledger must be told which one: falling back
to the top-level settings silently would let a pipeline that forgot `--env` plan or apply
against the wrong ledger, so that is an error naming the known environments.
"""

from __future__ import annotations

from collections.abc import Mapping

from connectly_declare.errors import DeclareError, Location
from connectly_declare.workspace.config import CONFIG_FILE, ResolvedEnvironment, WorkspaceConfig

ENV_VAR = "DECLARE_ENV"
NO_ENVIRONMENT = "default"  # how outputs name the top-level settings


def chosen_environment(option: str | None, environ: Mapping[str, str]) -> str | None:
    """`--env` wins over DECLARE_ENV; empty means none."""
    name = option if option is not None else environ.get(ENV_VAR)
    return name.strip() or None if name is not None else None


def resolve_environment(config: WorkspaceConfig, name: str | None) -> ResolvedEnvironment:
    """The effective settings of environment `name` (None: the top level)."""
    known = ", ".join(sorted(config.environments))
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


def environment_label(name: str | None) -> str:
    """What every output calls the environment."""
    return name or NO_ENVIRONMENT


__all__ = ["ENV_VAR", "NO_ENVIRONMENT", "chosen_environment", "environment_label",
           "resolve_environment"]
