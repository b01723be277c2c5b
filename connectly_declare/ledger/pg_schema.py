"""The PostgreSQL ledger's tables, created and versioned by the tool on first use.

One schema (``state.schema`` in declare.yaml) holds the ledgers of one workspace, one per
environment:

- ``schema_version``  the layout version; a newer one than this tool knows is refused, so an
                      old pipeline never writes records a newer tool would misread.
- ``ledgers``         one row per ledger name (the environment): lineage and header facts.
- ``records``         one row per record, ``seq`` 1, 2, 3... per ledger, gapless because it
                      is assigned under the append lock (a sequence would leave gaps on
                      rollback, and ``serial`` must count records exactly as the local
                      ledger does). ``payload`` is the record's JSON as text, not JSONB:
                      we never query inside it, and text keeps the bytes exactly as written
                      (JSONB would re-parse on insert and reorder keys).
- ``locks``           the writer lock's owner facts and fencing token (see ``pg_lock``).
"""

from __future__ import annotations

import psycopg
from psycopg import sql

SCHEMA_VERSION = 1

# Serialises concurrent first uses (two pipelines creating the tables at once would race on
# the catalog); a transaction-scoped advisory lock works behind a transaction pooler too.
_DDL_LOCK_NAME = "connectly-declare:ddl"

_TABLES = (
    """CREATE TABLE IF NOT EXISTS {s}.schema_version (
         version integer NOT NULL,
         applied_at timestamptz NOT NULL DEFAULT now())""",
    """CREATE TABLE IF NOT EXISTS {s}.ledgers (
         name text PRIMARY KEY,
         lineage text NOT NULL UNIQUE,
         environment text,
         business_id text,
         created_at text NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS {s}.records (
         ledger text NOT NULL REFERENCES {s}.ledgers (name),
         seq bigint NOT NULL,
         type text NOT NULL,
         payload text NOT NULL,
         appended_at timestamptz NOT NULL DEFAULT now(),
         PRIMARY KEY (ledger, seq))""",
    """CREATE TABLE IF NOT EXISTS {s}.locks (
         ledger text PRIMARY KEY,
         lock_id text NOT NULL,
         owner text NOT NULL,
         pid integer NOT NULL,
         command text NOT NULL,
         created_at text NOT NULL,
         mode text NOT NULL,
         expires_at timestamptz)""",
)


class NewerSchema(Exception):
    """The tables were made by a newer connectly-declare."""

    def __init__(self, found: int) -> None:
        super().__init__(found)
        self.found = found


def installed_version(conn: psycopg.Connection[tuple[object, ...]], schema: str) -> int | None:
    """The layout version in `schema`, or None when the tables do not exist yet."""
    row = conn.execute("SELECT to_regclass(%s)", (f'"{schema}".schema_version',)).fetchone()
    if row is None or row[0] is None:
        return None
    found = conn.execute(
        sql.SQL("SELECT max(version) FROM {}.schema_version").format(sql.Identifier(schema))
    ).fetchone()
    if found is None or found[0] is None:
        return None
    version = int(str(found[0]))
    if version > SCHEMA_VERSION:
        raise NewerSchema(version)
    return version


def ensure_schema(conn: psycopg.Connection[tuple[object, ...]], schema: str) -> None:
    """Create or upgrade the tables in one transaction (the caller's connection must be in
    autocommit mode; this opens and commits its own transaction)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                     (f"{_DDL_LOCK_NAME}:{schema}",))
        if installed_version(conn, schema) == SCHEMA_VERSION:
            return
        ident = sql.Identifier(schema)
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(ident))
        for statement in _TABLES:
            conn.execute(sql.SQL(statement).format(s=ident))
        conn.execute(sql.SQL("INSERT INTO {}.schema_version (version) VALUES (%s)")
                     .format(ident), (SCHEMA_VERSION,))
