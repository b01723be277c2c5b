"""A real PostgreSQL for the postgres-ledger tests (see tests/support/pg.py): the server of
DECLARE_TEST_PG_DSN, else a throwaway one for the session. No server is an error, never a
skip: these tests guard the shared ledger."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from connectly_declare.ledger.postgres import PostgresLedger
from tests.support.pg import PgServer, postgres_server


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    with postgres_server() as server:
        yield server


@pytest.fixture
def pg_dsn(pg_server: PgServer) -> str:
    return pg_server.dsn


@pytest.fixture
def pg_schema(pg_server: PgServer) -> Iterator[str]:
    """A schema of its own per test, dropped afterwards."""
    name = f"t_{secrets.token_hex(6)}"
    yield name
    with psycopg.connect(pg_server.dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture
def make_ledger(pg_dsn: str, pg_schema: str) -> Iterator[Callable[..., PostgresLedger]]:
    made: list[PostgresLedger] = []

    def make(**kwargs: Any) -> PostgresLedger:
        options: dict[str, Any] = {"dsn": pg_dsn, "schema": pg_schema,
                                   "environment": "staging", "business_id": "biz-1"}
        options.update(kwargs)
        ledger = PostgresLedger(**options)
        made.append(ledger)
        return ledger

    yield make
    for ledger in made:
        ledger.close()
