"""The ledger: every intent and outcome, append-only, per key. See `base` for the interface.

:func:`open_ledger` picks the backend `declare.yaml` (or the environment) names.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from connectly_declare.errors import DeclareError, Location
from connectly_declare.ledger.base import Ledger
from connectly_declare.workspace.config import LocalState, ResolvedEnvironment
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
        # (issue 8).
        raise DeclareError(
            f"state.path {state.path!r} is not a regular file",
            location=Location("declare.yaml"),
            hint="the local ledger is a JSON Lines file; remove what is at that path",
        )
    return path


def open_ledger(root: Path, resolved: ResolvedEnvironment, *,
                environ: Mapping[str, str] = os.environ) -> Ledger:
    """The ledger of `resolved` in the workspace at `root`, bound to its environment and
    business (appending to a ledger of another business or environment is refused)."""
    business_id = resolve_business_id(resolved, environ)
    state = resolved.state
    if isinstance(state, LocalState):
        from connectly_declare.ledger.local import LocalLedger

        return LocalLedger(local_ledger_path(root, state), environment=resolved.environment,
                           business_id=business_id, display=state.path)
    from connectly_declare.ledger.postgres import open_postgres

    return open_postgres(state, environment=resolved.environment, business_id=business_id,
                         environ=environ, workspace_root=root)


__all__ = ["local_ledger_path", "open_ledger"]
