"""The ledger: every intent and outcome, append-only, per key. See `base` for the interface.

:func:`open_ledger` picks the backend `declare.yaml` (or the environment) names.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from connectly_declare.errors import DeclareError, Location
from connectly_declare.ledger.base import Ledger
from connectly_declare.workspace.config import (
    DEFAULT_LEDGER,
    LocalState,
    ResolvedEnvironment,
    environment_ledger,
)
from connectly_declare.workspace.environments import resolve_business_id


def local_ledger_path(root: Path, state: LocalState) -> Path:
    """Where the local ledger of a workspace lives (inside the workspace, always)."""
    path = (root / state.path).resolve()
    base = root.resolve()
    if path != base and base not in path.parents:
        raise DeclareError(
            f"state.path {state.path!r} points outside the workspace",
            location=Location("declare.yaml"),
            hint="give a path relative to the workspace root, e.g. .declare/ledger.jsonl",
        )
    if path.exists() and not path.is_file():
        # A pull request can commit a FIFO or a folder here: reading a FIFO blocks forever
        # (SECURITY.md, "The ledger (a committed file is pull-request data too)").
        raise DeclareError(
            f"state.path {state.path!r} is not a regular file",
            location=Location("declare.yaml"),
            hint="the local ledger is a JSON Lines file; remove what is at that path",
        )
    return path


def _header_environment(path: Path) -> tuple[bool, str | None]:
    """(is a ledger, the environment its header names) of the file at `path`."""
    try:
        with path.open("rb") as fh:
            first = json.loads(fh.readline() or b"null")
    except (OSError, ValueError):
        return False, None
    if isinstance(first, dict) and first.get("type") == "header":
        environment = first.get("environment")
        return True, environment if isinstance(environment, str) else None
    return False, None


def check_history_moved(root: Path, environment: str | None, state: LocalState) -> None:
    """Refuse to start an environment's own, empty default ledger while its history is
    still in the shared `.declare/ledger.jsonl` of older versions: planning against an
    empty history would send everyone everything again. The user moves the file (one
    `git mv`); nothing is moved behind their back."""
    if environment is None or state.path != environment_ledger(environment):
        return
    if (root / state.path).exists():
        return
    is_ledger, owner = _header_environment(root / DEFAULT_LEDGER)
    if is_ledger and owner == environment:
        raise DeclareError(
            f"the history of environment {environment} is in {DEFAULT_LEDGER}, but each "
            f"environment now has its own default ledger ({state.path}); refusing to start "
            "an empty one",
            location=Location(DEFAULT_LEDGER, 1),
            hint=f"move it (in the workspace): git mv {DEFAULT_LEDGER} {state.path}; or keep "
                 f"it where it is with `state: {{path: {DEFAULT_LEDGER}}}` under "
                 f"environments.{environment} in declare.yaml")


def open_ledger(root: Path, resolved: ResolvedEnvironment, *,
                environ: Mapping[str, str] = os.environ) -> Ledger:
    """The ledger of `resolved` in the workspace at `root`, bound to its environment and
    business (appending to a ledger of another business or environment is refused)."""
    business_id = resolve_business_id(resolved, environ)
    state = resolved.state
    if isinstance(state, LocalState):
        from connectly_declare.ledger.local import LocalLedger

        check_history_moved(root, resolved.environment, state)
        return LocalLedger(local_ledger_path(root, state), environment=resolved.environment,
                           business_id=business_id, display=state.path)
    from connectly_declare.ledger.pg_open import open_postgres

    return open_postgres(state, environment=resolved.environment, business_id=business_id,
                         environ=environ, workspace_root=root)


__all__ = ["check_history_moved", "local_ledger_path", "open_ledger"]
