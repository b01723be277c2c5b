"""The postgres ledger's writer lock against a real server: holder named, released when a
killed holder's connection dies, lease mode without session state, fencing, MVCC reads."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from connectly_declare.entry import make_key
from connectly_declare.errors import LedgerError, LedgerLocked
from connectly_declare.ledger.pg_lock import APP_PREFIX
from connectly_declare.ledger.postgres import PostgresLedger
from tests.postgres.helpers import intent, outcome, put
from tests.support.e2e import run_cli, write_workspace

Make = Callable[..., PostgresLedger]

HOLDER = """
import json, sys, time
from connectly_declare.ledger.postgres import PostgresLedger
dsn, schema, mode, lease = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
ledger = PostgresLedger(dsn=dsn, schema=schema, environment=sys.argv[5] or None,
                        lock_mode=mode, lease_seconds=lease)
with ledger.lock("connectly-declare apply --auto-approve", timeout=30) as info:
    print(json.dumps({"lock_id": info.lock_id, "pid": info.pid}), flush=True)
    time.sleep(600)
"""


@contextmanager
def holder_process(dsn: str, schema: str, mode: str = "session", lease: float = 60.0,
                   environment: str = "staging"
                   ) -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, dsn, schema, mode, str(lease),
                             environment],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, "the holder process did not take the lock"
        yield proc, json.loads(line)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_a_second_writer_is_refused_naming_the_holder(make_ledger: Make) -> None:
    first, second = make_ledger(), make_ledger()
    with first.lock("connectly-declare apply", timeout=0) as info:
        with pytest.raises(LedgerLocked) as err:
            with second.lock("connectly-declare apply --env staging", timeout=0):
                pass
        message = str(err.value)
        assert info.lock_id in message and f"pid {os.getpid()}" in message
        assert "`connectly-declare apply`" in message and "state unlock" in message
        assert second.lock_holder() == info
    with second.lock("again", timeout=0):  # released on exit
        assert first.lock_holder() is not None


def test_a_waiting_writer_gets_the_lock_when_it_is_released(make_ledger: Make) -> None:
    first, second = make_ledger(), make_ledger()
    got: list[str] = []
    # Every attempt to take the lock opens a connection: a second one means the first
    # attempt was made and refused, so the waiter is really waiting on `first`.
    attempts: list[str] = []
    refused_once = threading.Event()
    connect = second._lock_connect

    def counting_connect(application_name: str) -> psycopg.Connection[tuple[object, ...]]:
        attempts.append(application_name)
        if len(attempts) >= 2:
            refused_once.set()
        return connect(application_name)

    second._lock_connect = counting_connect  # type: ignore[method-assign]

    def wait_for_it() -> None:
        with second.lock("second", timeout=60) as info:
            got.append(info.lock_id)

    with first.lock("first", timeout=0) as held:
        waiter = threading.Thread(target=wait_for_it)
        waiter.start()
        assert refused_once.wait(timeout=30), "the waiter never asked for the lock twice"
        assert got == [] and waiter.is_alive()  # asked, refused, still waiting
        holder = second.lock_holder()
        assert holder is not None and holder.lock_id == held.lock_id
    waiter.join(timeout=60)
    assert not waiter.is_alive()
    assert len(got) == 1 and got[0] != held.lock_id


@pytest.mark.parametrize("mode", ["session", "lease"])
def test_a_killed_holders_lock_is_released(make_ledger: Make, pg_dsn: str, pg_schema: str,
                                           mode: str) -> None:
    put(make_ledger(), [intent("b1", "+16505550001")])  # the tables exist
    with holder_process(pg_dsn, pg_schema, mode, lease=2.0) as (proc, held):
        other = make_ledger(lock_mode=mode, lease_seconds=2.0)
        with pytest.raises(LedgerLocked, match=held["lock_id"]):
            with other.lock("apply", timeout=0):
                pass
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # session: freed as the connection dies; lease: when the 2 s lease runs out.
        with other.lock("apply", timeout=30) as info:
            assert info.lock_id != held["lock_id"]
            assert other.append([outcome("b1")]) == 3


def test_lease_mode_holds_no_session_state(make_ledger: Make, pg_dsn: str,
                                           pg_schema: str) -> None:
    """Behind a transaction pooler any server connection may be reused by others: the
    lease lock must hold when every connection of its holder is cut."""
    holder = make_ledger(lock_mode="lease", lease_seconds=600)
    other = make_ledger(lock_mode="lease", lease_seconds=600)
    with holder.lock("apply", timeout=0) as info:
        with psycopg.connect(pg_dsn, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                          " WHERE usename = current_user AND pid <> pg_backend_pid()"
                          " AND application_name LIKE 'connectly-declare%'")
        with pytest.raises(LedgerLocked, match=info.lock_id):
            with other.lock("apply", timeout=0):
                pass
        # ...and the holder still appends (reconnecting) after its connections were cut.
        assert holder.append([intent("b1", "+16505550001")]) == 2


def test_session_and_lease_writers_exclude_each_other(make_ledger: Make) -> None:
    session, lease = make_ledger(), make_ledger(lock_mode="lease", lease_seconds=600)
    with session.lock("s", timeout=0) as info:
        with pytest.raises(LedgerLocked, match=info.lock_id):
            with lease.lock("l", timeout=0):
                pass
    with lease.lock("l", timeout=0) as info:
        with pytest.raises(LedgerLocked, match=info.lock_id):
            with session.lock("s", timeout=0):
                pass


def test_force_unlock_fences_the_old_holder(make_ledger: Make, pg_dsn: str) -> None:
    stuck, rescuer = make_ledger(), make_ledger()
    with stuck.lock("apply", timeout=0) as info:
        stuck.append([intent("b1", "+16505550001")])
        with pytest.raises(LedgerError, match="no lock nope"):
            rescuer.unlock("nope")
        rescuer.unlock(info.lock_id)
        with psycopg.connect(pg_dsn) as conn:  # its lock connection was ended
            alive = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE"
                                 " application_name = %s", (APP_PREFIX + info.lock_id,))
            assert alive.fetchone() == (0,)
        with rescuer.lock("apply", timeout=0):
            # The old holder can no longer record an intent, so it can send nothing more.
            with pytest.raises(LedgerLocked, match="was lost"):
                stuck.append([intent("b2", "+16505550002")])
            assert rescuer.append([outcome("b1")]) == 3
    assert rescuer.read().serial == 3


def test_an_append_needs_the_lock(make_ledger: Make) -> None:
    holder, other = make_ledger(), make_ledger()
    with holder.lock("apply", timeout=0):
        with pytest.raises(LedgerError, match="needs the writer lock"):
            other.append([intent("b1", "+16505550001")])
    assert other.read().serial == 0


def test_reads_never_wait_for_a_writer(make_ledger: Make, pg_dsn: str, pg_schema: str) -> None:
    writer = make_ledger()
    put(writer, [intent("b1", "+16505550001")])
    with writer.lock("apply", timeout=0), psycopg.connect(pg_dsn) as mid_append:
        # A writer in the middle of an append transaction: lock taken, rows not committed.
        mid_append.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                           (f"connectly-declare:append:{pg_schema}:staging",))
        mid_append.execute(f'INSERT INTO "{pg_schema}".records (ledger, seq, type, payload)'
                           " VALUES ('staging', 3, 'outcome', '{}')")
        done: list[int] = []
        reader = threading.Thread(target=lambda: done.append(make_ledger().read().serial))
        reader.start()
        reader.join(timeout=120)
        assert done == [2]  # the committed snapshot, read while the writer is mid-way
        assert make_ledger().read().keys[make_key("spring promo", "+16505550001")].status \
            == "unknown"
        mid_append.rollback()


def test_state_unlock_frees_a_dead_lease_holders_lock(tmp_path: Path, pg_dsn: str,
                                                      pg_schema: str, make_ledger: Make) -> None:
    """The README's recovery path, through the real CLI: a killed apply's lease would hold
    for ten minutes; `state unlock ID` frees it now, and a wrong id changes nothing."""
    ws = tmp_path / "ws"
    write_workspace(ws, base_url="http://127.0.0.1:9", settings={"state": {
        "backend": "postgres", "dsn_env": "E2E_PG_DSN", "schema": pg_schema,
        "lock": "lease", "lease_seconds": 600}})
    env = {"E2E_PG_DSN": pg_dsn}
    put(make_ledger(environment=None), [intent("b1", "+16505550001")])
    with holder_process(pg_dsn, pg_schema, "lease", lease=600, environment="") as (proc, held):
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    other = make_ledger(environment=None, lock_mode="lease")
    with pytest.raises(LedgerLocked, match=held["lock_id"]):
        with other.lock("apply", timeout=0):
            pass
    wrong = run_cli(ws, "state", "unlock", "0123abcd", env=env)
    assert wrong.returncode == 1 and held["lock_id"] in wrong.stderr
    done = run_cli(ws, "state", "unlock", held["lock_id"], env=env)
    assert done.returncode == 0, done.stderr
    assert f"removed lock {held['lock_id']}" in done.stdout
    with other.lock("apply", timeout=0):
        assert other.append([outcome("b1")]) == 3
    for result in (wrong, done):
        assert urlsplit(pg_dsn).password not in result.stdout + result.stderr
