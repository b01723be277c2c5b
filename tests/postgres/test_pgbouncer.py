"""The postgres ledger behind a real transaction-pooling proxy (pgbouncer,
pool_mode=transaction): why session locks cannot be trusted there, and that `lock: lease`
(and a session lock on a direct `lock_dsn_env` connection) keep one writer at a time."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator

import psycopg
import pytest

from connectly_declare.errors import LedgerLocked
from connectly_declare.ledger.postgres import PostgresLedger
from tests.postgres.helpers import intent, outcome, put, two_applies_at_once
from tests.support.e2e import CAMPAIGN, catalog, new_api_key, sim_process, write_workspace
from tests.support.pg import PgServer
from tests.support.pgbouncer import pgbouncer

HOLDER = """
import json, sys, time
from connectly_declare.ledger.postgres import PostgresLedger
dsn, lock_dsn, schema, mode = sys.argv[1:5]
ledger = PostgresLedger(dsn=dsn, lock_dsn=lock_dsn, schema=schema, lock_mode=mode,
                        lease_seconds=2.0)
with ledger.lock("connectly-declare apply", timeout=30) as info:
    ledger.append([])
    print(json.dumps({"lock_id": info.lock_id}), flush=True)
    time.sleep(600)
"""


@pytest.fixture(scope="module")
def bouncer(pg_server: PgServer) -> Iterator[str]:
    with pgbouncer(pg_server, pool_size=1) as dsn:
        yield dsn


def test_session_advisory_locks_break_behind_the_proxy(bouncer: str) -> None:
    """The reason for `lock: lease`: two clients sharing the one pooled server connection
    both 'get' the same session advisory lock."""
    with psycopg.connect(bouncer, autocommit=True, prepare_threshold=None) as one, \
            psycopg.connect(bouncer, autocommit=True, prepare_threshold=None) as two:
        take = "SELECT pg_try_advisory_lock(424242)"
        assert one.execute(take).fetchone() == (True,)
        assert two.execute(take).fetchone() == (True,)  # a second holder: no mutual exclusion
        one.execute("SELECT pg_advisory_unlock_all()")


def _holder(dsn: str, lock_dsn: str, schema: str, mode: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, dsn, lock_dsn, schema, mode],
                            stdout=subprocess.PIPE, text=True)
    return proc


@pytest.mark.parametrize("mode", ["lease", "session-direct"])
def test_one_writer_at_a_time_behind_the_proxy(bouncer: str, pg_server: PgServer,
                                               pg_schema: str, mode: str) -> None:
    lock_mode = "lease" if mode == "lease" else "session"
    lock_dsn = bouncer if mode == "lease" else pg_server.dsn
    proc = _holder(bouncer, lock_dsn, pg_schema, lock_mode)
    try:
        assert proc.stdout is not None
        held = json.loads(proc.stdout.readline())
        other = PostgresLedger(dsn=bouncer, lock_dsn=lock_dsn, schema=pg_schema,
                               lock_mode=lock_mode, lease_seconds=2.0)
        try:
            for _ in range(3):  # whichever pooled connection serves us, the holder is seen
                with pytest.raises(LedgerLocked, match=held["lock_id"]):
                    with other.lock("apply", timeout=0):
                        pass
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            # session on a direct connection: freed at once; lease: after its 2 s.
            with other.lock("apply", timeout=30):
                assert other.append([intent("b1", "+16505550001")]) == 2
                assert other.append([outcome("b1")]) == 3
            assert other.read().serial == 3
        finally:
            other.close()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def test_a_lease_holder_keeps_its_lock_across_pooled_connections(
        bouncer: str, pg_schema: str, make_ledger: Callable[..., PostgresLedger]) -> None:
    holder = make_ledger(dsn=bouncer, lock_mode="lease", lease_seconds=600)
    rival = make_ledger(dsn=bouncer, lock_mode="lease", lease_seconds=600)
    with holder.lock("apply") as info:
        for i in range(20):  # many transactions, all on the shared server connection
            assert holder.append([intent(f"b{i}", f"+165055500{i:02d}")]) == i + 2
            with pytest.raises(LedgerLocked, match=info.lock_id):
                with rival.lock("apply", timeout=0):
                    pass
    assert put(rival, [outcome("b0")]) == 22


@pytest.mark.slow
def test_two_applies_at_once_through_the_proxy(tmp_path: object, bouncer: str,
                                               pg_schema: str) -> None:
    from pathlib import Path

    key = new_api_key()
    ws = Path(str(tmp_path)) / "ws"
    settings = {"state": {"backend": "postgres", "dsn_env": "E2E_PG_DSN", "schema": pg_schema,
                          "lock": "lease", "lease_seconds": 5},
                # slow enough (40 requests: 1.3 s) that the two surely overlap
                "batch_size": 50, "requests_per_second": 30, "concurrency": 8}
    with sim_process(catalog(key), args=["--latency-ms", "5"]) as sim:
        clients = write_workspace(ws, base_url=sim.url, recipients=2_000, settings=settings)
        results = two_applies_at_once(ws, key, {"E2E_PG_DSN": bouncer}, "0")
        assert sorted(r.returncode for r in results) == [0, 1], [
            r.stdout + r.stderr for r in results]
        failed = next(r for r in results if r.returncode == 1)
        assert "held by" in failed.stderr
        assert sim.counts(CAMPAIGN) == dict.fromkeys(clients, 1)
