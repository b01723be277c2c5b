"""Reading the postgres ledger streams its rows: a server-side cursor fetched 2,000 rows at
a time, so a ten-million-key ledger is never held as rows in the runner (its fold is the
compact one, ledger/bulkfold.py). Seen from the server: while the first record is being
read, the reading session's last statement is a FETCH of that cursor."""

from __future__ import annotations

from collections.abc import Callable

import psycopg

from connectly_declare.ledger.postgres import PostgresLedger
from tests.postgres.helpers import intent, outcome, put


def test_records_come_through_a_server_side_cursor_in_batches(
        make_ledger: Callable[..., PostgresLedger], pg_dsn: str) -> None:
    ledger = make_ledger()
    batches = 1500  # 3,001 records with the header: more than one fetch
    put(ledger, [r for b in range(batches)
                 for r in (intent(f"b{b}", f"+1415555{b:04d}"), outcome(f"b{b}"))])
    reader = make_ledger()
    rows = reader.records()
    first = next(rows)
    assert first.type == "header"
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        seen = conn.execute(
            "SELECT query FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name = 'connectly-declare' AND query LIKE 'FETCH%%'"
        ).fetchall()
    assert len(seen) == 1 and "2000" in seen[0][0] and "connectly_declare_records" in seen[0][0]
    assert sum(1 for _ in rows) == 2 * batches  # and the rest follows, in order
    assert len(reader.read().keys) == batches
