"""The `postgres` ledger: the same records as the local JSON Lines file, in PostgreSQL, so
many pipelines share one ledger per (workspace schema, environment).

- The connection string comes from the environment variable named by ``state.dsn_env``
  (`pg_open`); it is never stored, and every message that could carry it (psycopg's errors
  can quote the DSN) is redacted (`pg_dsn`). ``describe()`` names host, port and database
  only.
- Tables are created and versioned by the tool on first write (`pg_schema`); reading a
  ledger that does not exist yet creates nothing, so a pull request's `plan` can run with
  read-only credentials.
- One transaction per appended batch; records are copied in with COPY and numbered
  gaplessly under a transaction-scoped advisory lock, which also fences writers that lost
  the single-writer lock (`pg_lock`).
- Reads are plain MVCC snapshots (REPEATABLE READ, READ ONLY) streamed through a
  server-side cursor: they take no lock and never wait for a writer.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import NoReturn

import psycopg
from psycopg import sql

from connectly_declare import clock
from connectly_declare.errors import LedgerCorrupt, LedgerError, LedgerLocked, Location
from connectly_declare.gcpause import no_gc
from connectly_declare.ledger import codec, pg_dsn, pg_lock
from connectly_declare.ledger.base import Header, LedgerState, LockInfo, Record, current_owner
from connectly_declare.ledger.bulkfold import BulkFolder
from connectly_declare.ledger.local_history import lines, local_histories
from connectly_declare.ledger.pg_schema import NewerSchema, ensure_schema, installed_version

DEFAULT_LEDGER_NAME = "default"  # the ledger of a workspace without environments
_FETCH_ROWS = 2000
CONFIG_LOCATION = Location("declare.yaml")


class _Reconnect(Exception):
    """The data connection was dead before an append began."""


class PostgresLedger:
    """A ledger in PostgreSQL implementing :class:`connectly_declare.ledger.base.Ledger`."""

    def __init__(self, *, dsn: str, schema: str, name: str | None = None,
                 environment: str | None = None, business_id: str | None = None,
                 lock_mode: pg_lock.LockMode = "session", lock_dsn: str | None = None,
                 lease_seconds: float = 60.0, now: Callable[[], str] = clock.now_iso,
                 owner: Callable[[], str] = current_owner, workspace_root: Path | None = None
                 ) -> None:
        self._dsn, self._lock_dsn = dsn, lock_dsn or dsn
        self.schema = schema
        self.name = name or environment or DEFAULT_LEDGER_NAME
        self.environment, self.business_id = environment, business_id
        self.lock_mode, self.lease_seconds = lock_mode, lease_seconds
        self._now, self._owner = now, owner
        self._redact = pg_dsn.Redactor([dsn, self._lock_dsn])
        self._locks = pg_lock.LockTable(schema, self.name)
        self._ident = sql.Identifier(schema)
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self._schema_ready = False
        self._held: pg_lock.Held | None = None
        self._workspace_root = workspace_root
        # One data connection, used by one transaction at a time: apply may append from
        # several threads, and psycopg would interleave their transactions otherwise.
        self._mutex = threading.RLock()

    # -- connections and errors ------------------------------------------------------
    def describe(self) -> str:
        env = f" (environment {self.environment})" if self.environment else ""
        return (f"postgres ledger {self.name!r}{env} in schema {self.schema!r} "
                f"at {pg_dsn.where(self._dsn)}")

    def _fail(self, what: str, err: BaseException) -> NoReturn:
        # libpq's messages run over lines ("...refused\n\tIs the server running..."): one
        # line, or the terminal escaping would print a literal \n\t.
        message = " ".join(self._redact(str(err)).split()) or type(err).__name__
        raise LedgerError(
            f"{self.describe()}: {what} failed: {message}", location=CONFIG_LOCATION,
            hint="check the server and the connection string in the environment variable "
                 "named by state.dsn_env") from None

    @contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        try:
            yield
        except NewerSchema as err:
            raise LedgerError(
                f"{self.describe()}: its tables are at layout version {err.found}, newer "
                f"than this connectly-declare supports", location=CONFIG_LOCATION,
                hint="upgrade connectly-declare in this pipeline") from None
        except psycopg.Error as err:
            self._drop_connection()
            self._fail(what, err)

    def _connect(self, dsn: str, application_name: str = "connectly-declare"
                 ) -> psycopg.Connection[tuple[object, ...]]:
        # prepare_threshold=None: no server-side prepared statements, which a
        # transaction-pooling proxy cannot route back to the connection that made them.
        try:
            return psycopg.connect(dsn, autocommit=True, prepare_threshold=None,
                                   application_name=application_name, connect_timeout=15)
        except psycopg.Error as err:
            self._fail("connecting", err)

    def _data(self) -> psycopg.Connection[tuple[object, ...]]:
        if self._conn is None or self._conn.closed:
            self._conn = self._connect(self._dsn)
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def close(self) -> None:
        if self._held is not None:
            self._held.release()
            self._held = None
        self._drop_connection()

    # -- reading ---------------------------------------------------------------------
    def _rows(self) -> Iterator[tuple[int, str]]:
        """(seq, payload) of every record, from one snapshot, streamed."""
        with self._mutex, self._guard("reading"):
            conn = self._data()
            with conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                if installed_version(conn, self.schema) is None:
                    return
                cursor = conn.cursor(name="connectly_declare_records")
                cursor.itersize = _FETCH_ROWS
                cursor.execute(sql.SQL("SELECT seq, payload FROM {}.records WHERE ledger = %s"
                                       " ORDER BY seq").format(self._ident), (self.name,))
                for seq, payload in cursor:
                    yield int(str(seq)), str(payload)

    def records(self) -> Iterator[Record]:
        for seq, payload in self._rows():
            yield self._decode(seq, payload)

    def _decode(self, seq: int, payload: str) -> Record:
        try:
            return codec.decode(payload)
        except codec.NewerFormat as err:
            raise LedgerError(f"{self.describe()}: {err}",
                              hint="upgrade connectly-declare") from None
        except ValueError as err:
            raise LedgerCorrupt(f"{self.describe()}: record {seq} is damaged: {err}",
                                hint="restore it from a backup; records are append-only"
                                ) from None

    def read(self) -> LedgerState:
        folder = BulkFolder()  # a large ledger folds into a compact KeyIndex
        with no_gc():
            for seq, payload in self._rows():
                try:
                    obj = json.loads(payload)
                    if isinstance(obj, dict) and obj.get("type") == "intent":
                        # The fold's fast path: entries as validated pairs, no IntentEntry.
                        intent, pairs = codec.intent_from_json(obj)
                        folder.add_intent(intent, pairs)
                        continue
                except ValueError:
                    pass  # _decode names the damage
                folder.add(self._decode(seq, payload))
        state = folder.state()
        if state.lineage is not None:
            self._check_environment(state.environment)
            self._check_business(state.business_id)
        else:
            state.environment, state.business_id = self.environment, self.business_id
        return state

    def _check_business(self, recorded: str | None) -> None:
        if recorded is not None and self.business_id is not None \
                and recorded != self.business_id:
            raise LedgerError(
                f"{self.describe()} belongs to business {recorded}, not {self.business_id}",
                location=CONFIG_LOCATION,
                hint="check --env and the business id, or give this environment its own "
                     "state settings in declare.yaml")

    def _check_environment(self, recorded: str | None) -> None:
        if recorded != self.environment:
            raise LedgerError(
                f"{self.describe()} belongs to environment {recorded or '(none)'}, "
                f"not {self.environment or '(none)'}", location=CONFIG_LOCATION,
                hint="choose the right environment with --env / DECLARE_ENV, or give this "
                     "environment its own state settings in declare.yaml")

    # -- writing ---------------------------------------------------------------------
    def _ready(self, conn: psycopg.Connection[tuple[object, ...]]) -> None:
        if not self._schema_ready:
            ensure_schema(conn, self.schema)
            self._schema_ready = True

    def append(self, records: Sequence[Record]) -> int:
        with self._mutex:
            try:
                return self._append(list(records))
            except _Reconnect:
                # The connection had died before this transaction began (a server restart, a
                # pooler recycling it, an idle timeout): nothing was written, so once more.
                return self._append(list(records))

    def import_records(self, records: Sequence[Record]) -> int:
        """Copy a whole ledger (its header first) into this empty one, in one transaction
        that reads the rows back and compares them before committing (`state migrate`)."""
        batch = list(records)
        if not batch or not isinstance(batch[0], Header):
            raise LedgerError("a ledger to import must start with its header")
        with self._mutex:
            return self._append(batch, fresh=True)

    def _append(self, batch: list[Record], fresh: bool = False) -> int:
        with self._guard("appending"):
            conn = self._data()
            self._ready(conn)
            body_done = False
            try:
                with conn.transaction():
                    self._locks.serialise(conn)
                    serial = self._checked_serial(conn, batch, fresh)
                    if serial == 0:
                        batch = self._start(conn, batch)
                    with conn.cursor().copy(sql.SQL(
                            "COPY {}.records (ledger, seq, type, payload) FROM STDIN"
                    ).format(self._ident)) as copy:
                        for offset, record in enumerate(batch, start=1):
                            copy.write_row((self.name, serial + offset, record.type,
                                            codec.encode(record)))
                    if fresh:
                        self._compare_rows(conn, batch)
                    body_done = True
            except psycopg.OperationalError:
                if body_done:
                    raise  # the COMMIT itself failed: whether it landed is unknown
                # The connection died before anything was committed (a server restart, a
                # pooler recycling it, an idle timeout): safe to reconnect and try once more.
                self._drop_connection()
                raise _Reconnect() from None
            return serial + len(batch)

    def _checked_serial(self, conn: psycopg.Connection[tuple[object, ...]],
                        batch: list[Record], fresh: bool) -> int:
        """Fence, binding and current serial, read in one round trip (appends are the
        apply's hot path), then checked."""
        row = conn.execute(sql.SQL(
            "SELECT (SELECT lock_id FROM {s}.locks WHERE ledger = %(n)s),"
            " (SELECT coalesce(max(seq), 0) FROM {s}.records WHERE ledger = %(n)s),"
            " l.name IS NOT NULL, l.environment, l.business_id"
            " FROM (SELECT 1) AS one LEFT JOIN {s}.ledgers AS l ON l.name = %(n)s"
        ).format(s=self._ident), {"n": self.name}).fetchone()
        assert row is not None
        lock_id, serial = row[0], int(str(row[1]))
        mine = self._held.info.lock_id if self._held is not None else None
        if mine is None:
            raise LedgerError("appending to the ledger needs the writer lock",
                              hint="call Ledger.lock() around append (a bug in the caller)")
        if lock_id != mine:
            current = self._locks.holder(conn)
            now = f"; it is now {current.describe()}" if current else ""
            raise LedgerLocked(
                f"{self.describe()}: this run's writer lock {mine} was lost{now}; "
                f"nothing more was written", location=CONFIG_LOCATION,
                hint="the last batch may be unknown: run `connectly-declare plan` to see "
                     "what remains")
        if fresh and serial:
            raise LedgerError(f"{self.describe()} is not empty ({serial} records)",
                              hint="migrate into an empty schema or environment")
        if row[2]:
            self._check_environment(None if row[3] is None else str(row[3]))
            self._check_business(None if row[4] is None else str(row[4]))
        if serial and any(isinstance(r, Header) for r in batch):
            raise LedgerCorrupt(f"{self.describe()}: refusing a second header record")
        return serial

    def _check_local_history(self) -> None:
        """Refuse to write while this environment's history also lives, further along, in
        a local ledger of the workspace: an empty postgres ledger would send everyone
        again, and one behind its local source would resend what was sent since. Both
        are fixed by `state migrate` (which catches up a copy that fell behind)."""
        if self._workspace_root is None:
            return
        paths = local_histories(self._workspace_root, self.environment)
        if not paths:
            return
        from connectly_declare.ledger.local import LocalLedger

        with self._mutex, self._guard("reading"):
            conn = self._data()
            row = conn.execute(sql.SQL(
                "SELECT l.lineage, (SELECT coalesce(max(seq), 0) FROM {s}.records"
                " WHERE ledger = %(n)s) FROM {s}.ledgers AS l WHERE l.name = %(n)s"
            ).format(s=self._ident), {"n": self.name}).fetchone()
        lineage, serial = (str(row[0]), int(str(row[1]))) if row else (None, 0)
        for path, local_lineage in paths:
            full = self._workspace_root / path
            # Line count first: it bounds the record count and costs no decoding.
            ahead = lineage is None or (
                local_lineage == lineage and lines(full) > serial
                and sum(1 for _ in LocalLedger(full, environment=self.environment).records())
                > serial)
            if ahead:
                env = f" --env {self.environment}" if self.environment else ""
                raise LedgerError(
                    f"{self.describe()} " + ("is empty" if lineage is None else
                                             f"is behind {path}")
                    + f", while the local ledger {path} holds this environment's history: "
                    f"writing now could send people again", location=CONFIG_LOCATION,
                    hint=f"copy it first: connectly-declare{env} state migrate --to postgres "
                         f"--from {path}")

    def _compare_rows(self, conn: psycopg.Connection[tuple[object, ...]],
                      batch: list[Record]) -> None:
        """Inside the importing transaction: every row decodes to the record it came from."""
        cursor = conn.execute(sql.SQL("SELECT seq, payload FROM {}.records WHERE ledger = %s"
                                      " ORDER BY seq").format(self._ident), (self.name,))
        count = 0
        for count, (seq, payload) in enumerate(cursor, start=1):
            if count > len(batch) or self._decode(int(str(seq)), str(payload)) != batch[count - 1]:
                raise LedgerCorrupt(f"{self.describe()}: record {count} did not read back "
                                    f"as written; nothing was imported",
                                    hint="report this as a bug")
        if count != len(batch):
            raise LedgerCorrupt(f"{self.describe()}: {count} of {len(batch)} records read back; "
                                f"nothing was imported", hint="report this as a bug")

    def _start(self, conn: psycopg.Connection[tuple[object, ...]], batch: list[Record]
               ) -> list[Record]:
        """The first append: a header first (the caller's, e.g. when migrating, or new)."""
        if not batch or not isinstance(batch[0], Header):
            batch.insert(0, Header(lineage=uuid.uuid4().hex, created_at=self._now(),
                                   environment=self.environment,
                                   business_id=self.business_id))
        header = batch[0]
        assert isinstance(header, Header)
        self._check_environment(header.environment)
        self._check_business(header.business_id)
        conn.execute(sql.SQL("INSERT INTO {}.ledgers (name, lineage, environment, business_id,"
                             " created_at) VALUES (%s, %s, %s, %s, %s)").format(self._ident),
                     (self.name, header.lineage, header.environment, header.business_id,
                      header.created_at))
        return batch

    def _unlock_hint(self, holder: LockInfo | None) -> str:
        lock_id = holder.lock_id if holder else "LOCK_ID"
        return (f"wait for it to finish; if that run is gone for good, run "
                f"`connectly-declare state unlock {lock_id}` (a killed run's lock is freed by "
                f"PostgreSQL when its connection closes"
                + (f", or after its {self.lease_seconds:g} s lease" if self.lock_mode == "lease"
                   else "") + ")")

    def lock(self, command: str, timeout: float = 0.0) -> AbstractContextManager[LockInfo]:
        return self._lock(command, timeout)

    @contextmanager
    def _lock(self, command: str, timeout: float) -> Iterator[LockInfo]:
        info = LockInfo(lock_id=uuid.uuid4().hex, owner=self._owner(), pid=os.getpid(),
                        command=command, created_at=self._now())
        with self._guard("locking"):
            with self._mutex:
                self._ready(self._data())
            try:
                held = pg_lock.acquire(self._lock_connect, self._locks, info,
                                       mode=self.lock_mode, lease_seconds=self.lease_seconds,
                                       timeout=timeout)
            except pg_lock.Busy as busy:
                who = busy.holder.describe() if busy.holder else "another run (starting up)"
                raise LedgerLocked(f"{self.describe()} is locked: {who}",
                                   location=CONFIG_LOCATION,
                                   hint=self._unlock_hint(busy.holder)) from None
        self._held = held
        try:
            self._check_local_history()
            yield held.info
        finally:
            self._held = None
            held.release()

    def _lock_connect(self, application_name: str) -> psycopg.Connection[tuple[object, ...]]:
        return self._connect(self._lock_dsn, application_name)

    def lock_holder(self) -> LockInfo | None:
        """Who holds the writer lock now (None: nobody), for `state` commands."""
        with self._mutex, self._guard("reading the lock"):
            conn = self._data()
            if installed_version(conn, self.schema) is None:
                return None
            with conn.transaction():
                return self._locks.holder(conn)

    def unlock(self, lock_id: str) -> None:
        with self._mutex, self._guard("unlocking"):
            if installed_version(self._data(), self.schema) is None:
                removed, current = False, None
            else:
                removed, current = pg_lock.force_unlock(self._lock_connect, self._locks,
                                                        lock_id)
        if not removed:
            now = f"; the lock is {current.describe()}" if current else "; it is not locked"
            raise LedgerError(f"{self.describe()}: no lock {lock_id}{now}",
                              hint="copy the lock id from the message that named the holder")
