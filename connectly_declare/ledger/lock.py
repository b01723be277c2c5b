"""The local ledger's single-writer lock.

Two files next to the ledger:

- ``ledger.jsonl.lock``: the OS-level exclusive lock (``filelock``, i.e. ``flock``). The OS
  releases it when its process dies, however it dies, so a crashed apply never leaves the
  ledger locked on this machine.
- ``ledger.jsonl.lock.json``: who holds it (user@host, pid, command, lock id, time), so a
  waiter can name the holder.

An OS lock is only trustworthy between processes of one machine: on a shared filesystem
another host's lock may be invisible. So an owner file written by *another host* is
respected even when the OS lock looks free (``LedgerLocked``, and ``state unlock ID`` is
the escape hatch), while an owner file of *this host* whose OS lock is free belongs to a
process that died and is replaced.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import filelock

from connectly_declare import clock
from connectly_declare.errors import LedgerError, LedgerLocked, Location
from connectly_declare.ledger.base import LockInfo, current_owner

OWNER_FILE_GRACE = 1.0  # seconds a loser waits for the winner to write who it is
UNLOCK_HINT = (
    "wait for it to finish or pass --lock-timeout SECONDS to wait; if that process is gone, "
    "run `connectly-declare state unlock {lock_id}`"
)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LocalLock:
    """The writer lock of one ledger file."""

    def __init__(
        self,
        ledger_path: Path,
        *,
        clock: Callable[[], datetime] = clock.now,
        owner: Callable[[], str] = current_owner,
    ) -> None:
        self.os_path = ledger_path.with_name(ledger_path.name + ".lock")
        self.owner_path = ledger_path.with_name(ledger_path.name + ".lock.json")
        self._clock = clock
        self._owner = owner

    def holder(self) -> LockInfo | None:
        """The owner file's content, None when there is none (or it is unreadable)."""
        try:
            data = json.loads(self.owner_path.read_text(encoding="utf-8"))
            return LockInfo(
                lock_id=str(data["lock_id"]),
                owner=str(data["owner"]),
                pid=int(data["pid"]),
                command=str(data["command"]),
                created_at=str(data["created_at"]),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _busy_holder(self) -> LockInfo | None:
        """The holder of a lock we could not take. The winner of a race takes the OS lock a
        moment before it writes the owner file: give that file a moment to appear, so the
        loser can name who holds the lock."""
        deadline = time.monotonic() + OWNER_FILE_GRACE
        while True:
            holder = self.holder()
            if holder is not None or time.monotonic() >= deadline:
                return holder
            time.sleep(0.05)

    def _locked_error(self, holder: LockInfo | None) -> LedgerLocked:
        if holder is None:
            return LedgerLocked(
                "the ledger is locked by another process that has not said who it is yet",
                location=Location(str(self.os_path)),
                hint="wait for it to finish or pass --lock-timeout SECONDS to wait",
            )
        return LedgerLocked(
            f"the ledger is locked: {holder.describe()}",
            location=Location(str(self.os_path)),
            hint=UNLOCK_HINT.format(lock_id=holder.lock_id),
        )

    def _write_owner(self, info: LockInfo) -> None:
        tmp = self.owner_path.with_name(self.owner_path.name + f".{os.getpid()}.tmp")
        data = {"lock_id": info.lock_id, "owner": info.owner, "pid": info.pid,
                "command": info.command, "created_at": info.created_at}
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, self.owner_path)

    @contextlib.contextmanager
    def hold(self, command: str, timeout: float = 0.0) -> Iterator[LockInfo]:
        """Hold the lock for the `with` block; LedgerLocked naming the holder after `timeout` s."""
        self.os_path.parent.mkdir(parents=True, exist_ok=True)
        os_lock = filelock.FileLock(self.os_path, thread_local=False)
        try:
            os_lock.acquire(timeout=max(timeout, 0.0))
        except filelock.Timeout:
            raise self._locked_error(self._busy_holder()) from None
        try:
            previous = self.holder()
            host = socket.gethostname()
            if previous is not None and previous.owner.rpartition("@")[2] != host:
                raise self._locked_error(previous)
            info = LockInfo(
                lock_id=uuid.uuid4().hex[:12],
                owner=self._owner(),
                pid=os.getpid(),
                command=command,
                created_at=self._clock().isoformat(timespec="seconds"),
            )
            self._write_owner(info)
            try:
                yield info
            finally:
                current = self.holder()
                if current is not None and current.lock_id == info.lock_id:
                    with contextlib.suppress(FileNotFoundError):
                        self.owner_path.unlink()
        finally:
            os_lock.release()

    def unlock(self, lock_id: str) -> LockInfo:
        """Remove the lock `lock_id` (`state unlock`); refuses a lock held by a live process
        of this host. Returns what was removed."""
        holder = self.holder()
        if holder is None:
            raise LedgerError("the ledger is not locked", location=Location(str(self.owner_path)),
                              hint="nothing to unlock")
        if holder.lock_id != lock_id:
            raise LedgerError(
                f"lock id {lock_id!r} is not the current lock: {holder.describe()}",
                hint=f"check the id; to remove this lock run `connectly-declare state unlock "
                f"{holder.lock_id}`",
            )
        if holder.owner.rpartition("@")[2] == socket.gethostname():
            probe = filelock.FileLock(self.os_path, thread_local=False)
            try:
                probe.acquire(timeout=0)
            except filelock.Timeout:
                if _pid_alive(holder.pid):
                    raise LedgerError(
                        f"{holder.describe()} and that process is still running",
                        hint=f"stop process {holder.pid} first; a running writer's lock is "
                        "never removed",
                    ) from None
            else:
                probe.release()
        with contextlib.suppress(FileNotFoundError):
            self.owner_path.unlink()
        return holder


__all__ = ["LocalLock"]
