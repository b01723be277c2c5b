"""A workspace's postgres ledger opened from its `state` settings, the connection strings
read from the environment variables they name."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from connectly_declare.errors import LedgerError
from connectly_declare.ledger.postgres import CONFIG_LOCATION, PostgresLedger
from connectly_declare.workspace.config import PostgresState


def open_postgres(state: PostgresState, *, environment: str | None, business_id: str | None,
                  environ: Mapping[str, str], workspace_root: Path | None = None
                  ) -> PostgresLedger:
    """The postgres ledger `state` describes, its DSN read from `environ`."""
    dsn = environ.get(state.dsn_env, "").strip()
    if not dsn:
        raise LedgerError(
            f"environment variable {state.dsn_env} is not set: it must hold the PostgreSQL "
            f"connection string of the ledger", location=CONFIG_LOCATION,
            hint=f"export {state.dsn_env}=postgresql://USER:PASSWORD@HOST:5432/DB (state.dsn_env "
                 f"in declare.yaml names this variable)")
    lock_dsn = None
    lock_env = state.lock_dsn_env
    if lock_env:
        lock_dsn = environ.get(lock_env, "").strip() or None
        if lock_dsn is None:
            raise LedgerError(f"environment variable {lock_env} (state.lock_dsn_env) is not set",
                              location=CONFIG_LOCATION,
                              hint="set it to a direct (not pooled) connection string, or "
                                   "remove lock_dsn_env from declare.yaml")
    return PostgresLedger(dsn=dsn, schema=state.schema_name, environment=environment,
                          business_id=business_id, lock_mode=state.lock,
                          lock_dsn=lock_dsn,
                          lease_seconds=state.lease_seconds, workspace_root=workspace_root)
