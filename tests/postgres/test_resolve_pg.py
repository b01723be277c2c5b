"""Bulk `state resolve` against the PostgreSQL ledger: the same scenario and checks as the
local backend's (tests/commands/test_resolve_cli.py), through the real CLI, on a real server."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.commands.test_resolve_cli import (
    check_bulk_resolve,
    check_refusals,
    populate,
    write_workspace,
)
from tests.support.pg import PgServer

DSN_ENV = "RESOLVE_PG_DSN"


def pg_workspace(root: Path, schema: str) -> Path:
    return write_workspace(root, {"state": {"backend": "postgres", "dsn_env": DSN_ENV,
                                            "schema": schema}})


@pytest.mark.slow  # many CLI subprocesses
def test_bulk_resolve_each_selector_postgres(tmp_path: Path, pg_server: PgServer,
                                             pg_schema: str) -> None:
    env = {DSN_ENV: pg_server.dsn}
    ws = pg_workspace(tmp_path / "ws", pg_schema)
    populate(ws, env)
    check_bulk_resolve(ws, env)
    with psycopg.connect(pg_server.dsn) as conn:  # each bulk verdict is one row
        rows = conn.execute(sql.SQL("SELECT payload FROM {}.records WHERE type = 'resolution' "
                                    "ORDER BY seq").format(sql.Identifier(pg_schema))).fetchall()
    assert [str(r[0]).count("+1650555") for r in rows] == [2, 1, 1, 2]
    assert '"type":"resolutions"' in str(rows[0][0])
    assert not (tmp_path / "ws" / ".declare" / "ledger.jsonl").exists()


@pytest.mark.slow  # many CLI subprocesses
def test_bulk_resolve_refusals_postgres(tmp_path: Path, pg_server: PgServer,
                                        pg_schema: str) -> None:
    env = {DSN_ENV: pg_server.dsn}
    ws = pg_workspace(tmp_path / "ws", pg_schema)
    populate(ws, env)
    check_refusals(ws, env)
