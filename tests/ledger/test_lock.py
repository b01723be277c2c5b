"""The writer lock between two real processes: contention names the holder, a killed
holder's lock is freed by the OS, `unlock` removes only stale locks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectly_declare.errors import LedgerError, LedgerLocked
from connectly_declare.ledger.local import LocalLedger

from .conftest import intent

HOLDER = """
import sys
from pathlib import Path
from connectly_declare.ledger.local import LocalLedger
ledger = LocalLedger(Path(sys.argv[1]))
with ledger.lock("apply --auto-approve") as info:
    print(info.lock_id, flush=True)
    sys.stdin.readline()
print("released", flush=True)
"""


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str, Path]]:
    path = tmp_path / "ledger.jsonl"
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    lock_id = proc.stdout.readline().strip()
    yield proc, lock_id, path
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def test_second_writer_fails_naming_the_holder(
        holder: tuple[subprocess.Popen[str], str, Path]) -> None:
    proc, lock_id, path = holder
    ledger = LocalLedger(path)
    with pytest.raises(LedgerLocked) as err, ledger.lock("state resolve", timeout=0):
        pass
    message = str(err.value)
    assert f"lock {lock_id} held by" in message
    assert f"pid {proc.pid}" in message and "`apply --auto-approve`" in message
    assert f"connectly-declare state unlock {lock_id}" in message


def test_waiter_gets_the_lock_once_the_holder_releases(
        holder: tuple[subprocess.Popen[str], str, Path]) -> None:
    proc, _, path = holder
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("go\n")
    proc.stdin.flush()
    ledger = LocalLedger(path)
    with ledger.lock("apply", timeout=30) as info:  # waits for the release
        assert info.pid == os.getpid()
        ledger.append([intent("b1", ["+16505550001"])])
    assert proc.stdout.readline().strip() == "released"
    assert ledger.read().serial == 2


def test_killed_holder_releases_and_unlock_refuses_live_holder(
        holder: tuple[subprocess.Popen[str], str, Path]) -> None:
    proc, lock_id, path = holder
    ledger = LocalLedger(path)
    with pytest.raises(LedgerError, match="still running"):
        ledger.unlock(lock_id)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # the owner file survives the kill, but the OS lock does not: the next writer proceeds
    assert ledger.lock_holder() is not None and ledger.lock_holder().lock_id == lock_id
    with ledger.lock("apply") as info:
        assert info.lock_id != lock_id
    assert ledger.lock_holder() is None


def test_unlock_removes_a_stale_lock_by_id(
        holder: tuple[subprocess.Popen[str], str, Path]) -> None:
    proc, lock_id, path = holder
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    ledger = LocalLedger(path)
    with pytest.raises(LedgerError, match="is not the current lock"):
        ledger.unlock("nope")
    ledger.unlock(lock_id)
    assert ledger.lock_holder() is None
    with pytest.raises(LedgerError, match="not locked"):
        ledger.unlock(lock_id)


def test_owner_file_of_another_host_is_respected(tmp_path: Path) -> None:
    # on a shared filesystem another host's OS lock may be invisible: its owner file counts
    path = tmp_path / "ledger.jsonl"
    owner = path.with_name("ledger.jsonl.lock.json")
    owner.write_text(json.dumps({"lock_id": "abc123", "owner": "ci@runner-7", "pid": 1,
                                 "command": "apply", "created_at": "2026-11-26T10:00:00"}))
    ledger = LocalLedger(path)
    with pytest.raises(LedgerLocked, match="lock abc123 held by ci@runner-7"), ledger.lock("x"):
        pass
    ledger.unlock("abc123")
    with ledger.lock("x"):
        pass


def test_reading_never_locks(holder: tuple[subprocess.Popen[str], str, Path]) -> None:
    _, _, path = holder
    assert LocalLedger(path).read().serial == 0
