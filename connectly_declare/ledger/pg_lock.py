"""The PostgreSQL ledger's single-writer lock.

How others do it, and what we took:

- Terraform's pg backend takes a *session* advisory lock on a hash of the state name: it is
  released by PostgreSQL itself the moment the holder's connection dies (a killed `apply`
  never leaves a stale lock), but it cannot say who holds it, and it breaks behind a
  transaction-pooling proxy (pgbouncer ``pool_mode=transaction``): the lock stays on a
  pooled server connection that other clients then reuse.
- Flyway uses advisory locks too, and a lock table on databases without them.

Ours is both, in two modes (``state.lock`` in declare.yaml):

- ``session`` (default): a dedicated connection, opened on ``state.lock_dsn_env`` when set
  (point it at PostgreSQL directly when ``dsn_env`` goes through a pooler) and held idle
  for the whole apply, holds ``pg_advisory_lock``; released when that connection dies.
- ``lease``: for when only a transaction-pooled endpoint exists. No session state at all:
  every step is one short transaction on a fresh connection. The lock is a row whose lease
  (``expires_at``) a heartbeat thread renews every third of ``lease_seconds``; a killed
  apply's lock frees itself when its lease runs out.

In both modes the ``locks`` row names the holder (user@host, pid, command, since when), so
a waiting apply can say who it waits for, and its ``lock_id`` is a fencing token: every
append transaction re-reads the row under a transaction-scoped advisory lock and refuses
to write unless it still names this writer. A writer whose lock was lost (connection cut,
lease expired and taken over, `state unlock`) therefore cannot record another intent, and
since an intent is recorded before its request is sent, it cannot send another batch: the
promise "nobody is messaged twice" does not rest on timing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import psycopg
from psycopg import sql

from connectly_declare.ledger.base import LockInfo

LockMode = Literal["session", "lease"]
Connect = Callable[[str], "psycopg.Connection[tuple[object, ...]]"]  # application_name
POLL_SECONDS = 0.2
HOLDER_ROW_POLLS = 20  # x POLL_SECONDS / 4: up to one second
APP_PREFIX = "connectly-declare-lock:"


def lock_key(schema: str, ledger: str) -> str:
    """Hashed server-side (hashtextextended) into the session advisory lock's key."""
    return f"connectly-declare:lock:{schema}:{ledger}"


def append_key(schema: str, ledger: str) -> str:
    """Serialises appends and every change to the lock row (transaction-scoped)."""
    return f"connectly-declare:append:{schema}:{ledger}"


@dataclass
class Held:
    """One acquired lock; `release` is safe to call more than once."""

    info: LockInfo
    mode: LockMode
    replaced: LockInfo | None = None  # a stale holder's row we overwrote
    _release: Callable[[], None] = field(default=lambda: None, repr=False)
    _released: bool = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._release()


def _row_to_info(row: tuple[object, ...] | None) -> LockInfo | None:
    if row is None:
        return None
    lock_id, owner, pid, command, created_at = row[:5]
    return LockInfo(lock_id=str(lock_id), owner=str(owner), pid=int(str(pid)),
                    command=str(command), created_at=str(created_at))


class LockTable:
    """The `locks` row of one ledger, read and written inside the caller's transactions."""

    def __init__(self, schema: str, ledger: str) -> None:
        self.schema, self.ledger = schema, ledger
        self._table = sql.SQL("{}.locks").format(sql.Identifier(schema))

    def serialise(self, conn: psycopg.Connection[tuple[object, ...]]) -> None:
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                     (append_key(self.schema, self.ledger),))

    def current(self, conn: psycopg.Connection[tuple[object, ...]]
                ) -> tuple[LockInfo, str, bool] | None:
        """(holder, mode, lease expired) of the row, if any."""
        row = conn.execute(
            sql.SQL("SELECT lock_id, owner, pid, command, created_at, mode,"
                    " coalesce(expires_at <= clock_timestamp(), false)"
                    " FROM {} WHERE ledger = %s").format(self._table), (self.ledger,)
        ).fetchone()
        info = _row_to_info(row)
        if row is None or info is None:
            return None
        return info, str(row[5]), bool(row[6])

    def holder(self, conn: psycopg.Connection[tuple[object, ...]]) -> LockInfo | None:
        found = self.current(conn)
        return found[0] if found else None

    def write(self, conn: psycopg.Connection[tuple[object, ...]], info: LockInfo,
              mode: LockMode, lease_seconds: float | None) -> None:
        conn.execute(
            sql.SQL(
                "INSERT INTO {t} (ledger, lock_id, owner, pid, command, created_at, mode,"
                " expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s,"
                " clock_timestamp() + make_interval(secs => %s))"
                " ON CONFLICT (ledger) DO UPDATE SET lock_id = EXCLUDED.lock_id,"
                " owner = EXCLUDED.owner, pid = EXCLUDED.pid, command = EXCLUDED.command,"
                " created_at = EXCLUDED.created_at, mode = EXCLUDED.mode,"
                " expires_at = EXCLUDED.expires_at"
            ).format(t=self._table),
            (self.ledger, info.lock_id, info.owner, info.pid, info.command, info.created_at,
             mode, lease_seconds),
        )

    def delete(self, conn: psycopg.Connection[tuple[object, ...]], lock_id: str) -> bool:
        cur = conn.execute(sql.SQL("DELETE FROM {} WHERE ledger = %s AND lock_id = %s")
                           .format(self._table), (self.ledger, lock_id))
        return cur.rowcount > 0

    def renew(self, conn: psycopg.Connection[tuple[object, ...]], lock_id: str,
              lease_seconds: float) -> bool:
        cur = conn.execute(
            sql.SQL("UPDATE {} SET expires_at = clock_timestamp() + make_interval(secs => %s)"
                    " WHERE ledger = %s AND lock_id = %s").format(self._table),
            (lease_seconds, self.ledger, lock_id))
        return cur.rowcount > 0


def session_holder_alive(conn: psycopg.Connection[tuple[object, ...]], key: str) -> bool:
    """Whether some connection holds the session lock: a transaction-scoped try-lock on the
    same key conflicts with it (and is released at commit, so this leaves nothing held)."""
    row = conn.execute("SELECT pg_try_advisory_xact_lock(hashtextextended(%s, 0))",
                       (key,)).fetchone()
    return not (row is not None and row[0])


class Busy(Exception):
    """The lock is held (by `holder`, None when its row is not written yet)."""

    def __init__(self, holder: LockInfo | None) -> None:
        super().__init__(holder)
        self.holder = holder


def acquire(connect: Connect, table: LockTable, info: LockInfo, *, mode: LockMode,
            lease_seconds: float, timeout: float,
            on_wait: Callable[[LockInfo | None], None] = lambda _holder: None,
            monotonic: Callable[[], float] = time.monotonic,
            sleep: Callable[[float], None] = time.sleep) -> Held:
    """Take the lock, waiting up to `timeout` seconds; raises `Busy` naming the holder."""
    deadline = monotonic() + timeout
    waited = False
    while True:
        held, holder = (_try_session if mode == "session" else _try_lease)(
            connect, table, info, lease_seconds)
        if held is not None:
            return held
        if monotonic() >= deadline:
            raise Busy(holder)
        if not waited:
            on_wait(holder)
            waited = True
        sleep(POLL_SECONDS)


def _try_session(connect: Connect, table: LockTable, info: LockInfo, lease_seconds: float
                 ) -> tuple[Held | None, LockInfo | None]:
    key = lock_key(table.schema, table.ledger)
    conn = connect(APP_PREFIX + info.lock_id)
    try:
        row = conn.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))",
                           (key,)).fetchone()
        if not (row is not None and row[0]):
            # The winner of a race takes the advisory lock a moment before it writes its
            # row: give that row a moment to appear so the loser can name the holder.
            holder = None
            for _ in range(HOLDER_ROW_POLLS):
                with conn.transaction():
                    holder = table.holder(conn)
                if holder is not None:
                    break
                time.sleep(POLL_SECONDS / 4)
            conn.close()
            return None, holder
        with conn.transaction():
            table.serialise(conn)
            found = table.current(conn)
            if found is not None and found[1] == "lease" and not found[2]:
                conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (key,))
                conn.close()
                return None, found[0]
            table.write(conn, info, "session", None)
    except BaseException:
        conn.close()
        raise

    def release() -> None:
        try:
            with conn.transaction():
                table.serialise(conn)
                table.delete(conn, info.lock_id)
            conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (key,))
        except psycopg.Error:
            # The connection is gone: PostgreSQL already dropped the advisory lock; the row
            # left behind is stale and the next writer replaces it.
            pass
        finally:
            conn.close()

    return Held(info, "session", replaced=found[0] if found else None,
                _release=release), None


def _try_lease(connect: Connect, table: LockTable, info: LockInfo, lease_seconds: float
               ) -> tuple[Held | None, LockInfo | None]:
    with connect(APP_PREFIX + info.lock_id) as conn, conn.transaction():
        table.serialise(conn)
        found = table.current(conn)
        if found is not None:
            holder, mode, expired = found
            stale = expired if mode == "lease" else not session_holder_alive(
                conn, lock_key(table.schema, table.ledger))
            if not stale:
                return None, holder
        table.write(conn, info, "lease", lease_seconds)
    beat = _Heartbeat(connect, table, info.lock_id, lease_seconds)
    beat.start()

    def release() -> None:
        beat.stop()
        try:
            with connect(APP_PREFIX + info.lock_id) as conn, conn.transaction():
                table.serialise(conn)
                table.delete(conn, info.lock_id)
        except psycopg.Error:
            pass  # the lease runs out by itself

    return Held(info, "lease", replaced=found[0] if found else None, _release=release), None


class _Heartbeat(threading.Thread):
    """Renews a lease every third of its length, each time on a fresh connection."""

    def __init__(self, connect: Connect, table: LockTable, lock_id: str,
                 lease_seconds: float) -> None:
        super().__init__(name="connectly-declare-lease", daemon=True)
        self._connect, self._table, self._lock_id = connect, table, lock_id
        self._lease = lease_seconds
        self._stopped = threading.Event()
        self.lost = False

    def run(self) -> None:
        while not self._stopped.wait(self._lease / 3):
            try:
                with self._connect(APP_PREFIX + self._lock_id) as conn, conn.transaction():
                    if not self._table.renew(conn, self._lock_id, self._lease):
                        self.lost = True  # unlocked or taken over: appends are fenced
                        return
            except psycopg.Error:
                continue  # try again; if the lease runs out meanwhile, fencing protects

    def stop(self) -> None:
        self._stopped.set()


def force_unlock(connect: Connect, table: LockTable, lock_id: str
                 ) -> tuple[bool, LockInfo | None]:
    """Remove the lock row `lock_id` and end its session lock's connection, if any.
    Returns (removed, the holder found)."""
    with connect("connectly-declare-unlock") as conn:
        with conn.transaction():
            table.serialise(conn)
            current = table.holder(conn)
            if current is None or current.lock_id != lock_id:
                return False, current
            table.delete(conn, lock_id)
        # A live session holder keeps its advisory lock until its connection ends; the
        # application_name carries the lock id, so only that connection is ended.
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                     " WHERE application_name = %s AND pid <> pg_backend_pid()",
                     (APP_PREFIX + lock_id,))
    return True, current
