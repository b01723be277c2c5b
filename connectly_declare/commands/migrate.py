"""`connectly-declare state migrate --to postgres`: which local ledger goes into which
PostgreSQL ledger, then the verified copy (`ledger.migrate`).

Works in either order of the switch: before `declare.yaml` says postgres (the local
ledger is the configured one; the destination comes from --dsn-env/--schema or their defaults)
or after (the destination is the configured one; the source is --from, by default the usual
local path). Until the switch, applies keep writing the local ledger; an empty postgres
ledger refuses to start while a local history of its environment exists, so the switch
cannot silently begin a second, empty history.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from connectly_declare.ledger import check_history_moved, local_ledger_path
from connectly_declare.ledger.local import LocalLedger
from connectly_declare.ledger.migrate import MigrateResult, migrate_to_postgres
from connectly_declare.ledger.pg_open import open_postgres
from connectly_declare.workspace.config import (
    DEFAULT_LEDGER,
    LocalState,
    PostgresState,
    environment_ledger,
)
from connectly_declare.workspace.environments import (
    environment_label,
    resolve_business_id,
    resolve_environment,
)
from connectly_declare.workspace.load import load_config_only


def run_migrate(start: Path, environment: str | None, *, source_path: str | None = None,
                dsn_env: str | None = None, schema: str | None = None,
                lock_timeout: float = 0.0, out: TextIO,
                environ: Mapping[str, str] = os.environ) -> int:
    root, config = load_config_only(start)
    resolved = resolve_environment(config, environment)
    business = resolve_business_id(resolved, environ)
    configured = resolved.state
    overrides = {k: v for k, v in (("dsn_env", dsn_env), ("schema", schema)) if v}
    if isinstance(configured, PostgresState):
        pg_state = PostgresState.model_validate(
            {**configured.model_dump(by_alias=True), **overrides})
        source_state = LocalState(path=source_path or (
            environment_ledger(resolved.environment) if resolved.environment
            else DEFAULT_LEDGER))
    else:
        pg_state = PostgresState.model_validate({"backend": "postgres", **overrides})
        source_state = LocalState(path=source_path) if source_path else configured
    if source_path is None and isinstance(source_state, LocalState):
        check_history_moved(root, resolved.environment, source_state)
    source = LocalLedger(local_ledger_path(root, source_state), environment=resolved.environment,
                         business_id=business, display=source_state.path)
    pg = open_postgres(pg_state, environment=resolved.environment, business_id=business,
                       environ=environ)
    try:
        result = migrate_to_postgres(source, pg, lock_timeout=lock_timeout)
    finally:
        pg.close()
    _report(result, environment_label(resolved.environment), pg_state,
            switched=isinstance(configured, PostgresState), out=out)
    return 0


def _report(result: MigrateResult, env: str, pg_state: PostgresState, *, switched: bool,
            out: TextIO) -> None:
    verb = "Already migrated" if result.already else "Migrated"
    out.write(f"{verb} (environment {env}): {result.records} records, {result.keys} keys of "
              f"ledger {result.lineage}\n  from {result.source}\n  to   {result.destination}\n"
              f"Verified record for record and key for key.\n")
    if not switched:
        out.write(
            "Next: point declare.yaml at it (for this environment), and merge that before "
            "the next apply:\n"
            f"  state: {{backend: postgres, dsn_env: {pg_state.dsn_env}, "
            f"schema: {pg_state.schema_name}}}\n"
            "Keep the local file as a read-only record; applies must no longer write it.\n")


__all__ = ["run_migrate"]
