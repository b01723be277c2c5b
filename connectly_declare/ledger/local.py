"""The `local` ledger backend: a JSON Lines file inside the workspace (it diffs in Git).

Line 1 is the header; every later line is one record; lines are only ever appended, each
append being one ``write`` of all its lines followed by ``fsync`` before returning.

A crash in the middle of an append leaves a *torn* final line. Reading reports it (with
its line number) and ignores it: an intent that never reached the disk was never sent,
and a lost outcome just leaves its keys ``unknown``. The next append starts on a fresh
line (so the torn bytes never merge with a good record) and first writes a ``torn``
marker naming that line, so the torn line stays recognisable as torn forever, while an
unexplained damaged line anywhere else is corruption and refuses the plan.

``serial`` is the number of complete lines in the file: the header and each appended
record count one (so does an acknowledged torn line). It grows with every append.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from connectly_declare import clock
from connectly_declare.errors import LedgerCorrupt, LedgerError, Location
from connectly_declare.gcpause import no_gc
from connectly_declare.ledger import codec
from connectly_declare.ledger.base import Header, Intent, IntentEntry, LedgerState, LockInfo, Record
from connectly_declare.ledger.bulkfold import BulkFolder
from connectly_declare.ledger.lock import LocalLock

TORN = "torn"
_CHUNK = 1 << 20
RESTORE_HINT = (
    "the ledger was edited or damaged; restore it from Git history (`git log -p -- {path}`) "
    "or a backup; never delete lines of a ledger"
)


class _Scan:
    """Walks the file's lines, separating records from torn/damaged lines."""

    def __init__(self, path: Path, display: str, *, check_pairs: bool = True) -> None:
        self.path = path
        self.display = display
        self.check_pairs = check_pairs
        self.torn_tail = 0  # line number of an ignored damaged last line
        self.serial = 0
        self.warnings: list[str] = []
        self.raw = b""  # the line of the record items() yielded last

    def _corrupt(self, line: int, why: str) -> LedgerCorrupt:
        return LedgerCorrupt(
            f"damaged ledger record: {why}",
            location=Location(self.display, line),
            hint=RESTORE_HINT.format(path=self.display),
        )

    def records(self) -> Iterator[Record]:
        for record, pairs in self.items():
            if pairs is not None and isinstance(record, Intent):
                record = replace(record, entries=tuple(IntentEntry(c, f) for c, f in pairs))
            yield record

    def items(self) -> Iterator[tuple[Record, Sequence[Any] | None]]:
        """(record, None), or (intent without entries, its [client, fingerprint] pairs)."""
        pending: tuple[int, str] | None = None  # a damaged line waiting for its explanation
        seen_header = False
        number = 0
        with open(self.path, "rb") as fh:
            for raw in fh:
                number += 1
                complete = raw.endswith(b"\n")
                if complete:
                    self.serial = number
                try:
                    # the fast read leaves an intent's entries array as bytes until the
                    # fold asks (most never are: ledger.rawentries decodes them in bulk)
                    cut = None if self.check_pairs else codec.split_intent(raw)
                    text = raw if cut is None else cut[0]
                    obj: Any = json.loads(text)
                    codec.refuse_lone_surrogates(text, obj)
                    if isinstance(obj, dict) and obj.get("type") == TORN:
                        if pending is None or obj.get("line") != pending[0]:
                            raise self._corrupt(number, "a torn-line marker without its torn line")
                        self.warnings.append(
                            f"{self.display}:{pending[0]}: a write torn by a crash was skipped "
                            f"({pending[1]})"
                        )
                        pending = None
                        continue
                    record: Record
                    pairs: Sequence[Any] | None = None
                    if isinstance(obj, dict) and obj.get("type") == "intent":
                        record, pairs = codec.intent_from_json(
                            obj, check_pairs=self.check_pairs)
                        if cut is not None:
                            pairs = cut[1]
                    else:
                        record = codec.from_json(obj)
                except codec.NewerFormat as err:
                    raise LedgerError(
                        str(err), location=Location(self.display, number),
                        hint="upgrade connectly-declare to read this ledger",
                    ) from None
                # JSONDecodeError and bad shapes alike; RecursionError: a line nested too deep
                # for the parser (SECURITY.md: a committed ledger is pull-request data too)
                except (ValueError, RecursionError) as err:
                    if pending is not None:
                        raise self._corrupt(pending[0], pending[1]) from None
                    pending = (number, str(err) if complete else "incomplete line")
                    continue
                if pending is not None:
                    raise self._corrupt(pending[0], pending[1])
                if isinstance(record, Header) == seen_header:
                    why = "a second header" if seen_header else "the first record is not a header"
                    raise self._corrupt(number, why)
                seen_header = True
                self.raw = raw
                yield record, pairs
        if pending is not None:
            self.torn_tail = pending[0]
            self.warnings.append(
                f"{self.display}:{pending[0]}: the last line is damaged "
                f"(a write torn by a crash?) and was ignored: {pending[1]}"
            )


def _count_lines(fd: int, size: int) -> int:
    count = 0
    offset = 0
    while offset < size:
        chunk = os.pread(fd, _CHUNK, offset)
        if not chunk:
            break
        count += chunk.count(b"\n")
        offset += len(chunk)
    return count


def _last_line(fd: int, size: int) -> bytes:
    """The bytes of the file's last line (its trailing newline stripped)."""
    end = size - 1 if size and os.pread(fd, 1, size - 1) == b"\n" else size
    buf = b""
    start = end
    while start > 0:
        step = min(_CHUNK, start)
        start -= step
        buf = os.pread(fd, step, start) + buf
        cut = buf.rfind(b"\n")
        if cut >= 0:
            return buf[cut + 1:]
    return buf


def _is_record(line: bytes) -> bool:
    try:
        obj = json.loads(line)
        codec.refuse_lone_surrogates(line, obj)
        if isinstance(obj, dict) and obj.get("type") == TORN:
            return True
        codec.from_json(obj)
    except (ValueError, RecursionError):
        return False
    return True


class LocalLedger:
    """A ledger in one JSON Lines file; see the module docstring for the format."""

    def __init__(
        self,
        path: Path,
        *,
        environment: str | None = None,
        business_id: str | None = None,
        display: str | None = None,
        clock: Callable[[], datetime] = clock.now,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self.path = path
        self.environment = environment
        self.business_id = business_id
        self.display = display or str(path)
        self._clock = clock
        self._new_id = new_id
        self._lock = LocalLock(path, clock=clock)
        self._held: LockInfo | None = None
        # (size, lines, header) right after this writer's last append. While the lock is
        # held nobody else appends, so when the size still matches, the file is exactly as
        # we left it and the O(file) line count and tail checks can be skipped: without this
        # an apply of N batches costs O(N^2) reads of the ledger.
        self._tail: tuple[int, int, Header] | None = None

    def describe(self) -> str:
        # Every output names the environment (state list, errors, apply's messages).
        env = f" (environment {self.environment})" if self.environment else ""
        return f"local ledger {self.display}{env}"

    def _check_binding(self, header: Header) -> None:
        problems = []
        if header.environment != self.environment:
            problems.append(f"environment {header.environment or '(none)'!s}")
        if (header.business_id is not None and self.business_id is not None
                and header.business_id != self.business_id):
            problems.append(f"business {header.business_id}")
        if problems:
            raise LedgerError(
                f"this ledger belongs to {' and '.join(problems)}, not to this run's "
                f"environment {self.environment or '(none)'} / business "
                f"{self.business_id or '(unknown)'}",
                location=Location(self.display, 1),
                hint="check --env and the business id, or point state.path at the right ledger",
            )

    def read(self) -> LedgerState:
        if not self.path.exists():
            return LedgerState(lineage=None, serial=0, environment=self.environment,
                               business_id=self.business_id)
        try:
            # pairs checked by the fold as it goes (a million keys: checking them twice
            # shows); a bad pair anywhere sends us to the strict read, which names its line
            # or, on the last line, ignores it as a whole
            return self._read(check_pairs=False)
        except (TypeError, ValueError):
            return self._read(check_pairs=True)

    def _read(self, *, check_pairs: bool) -> LedgerState:
        scan = _Scan(self.path, self.display, check_pairs=check_pairs)
        folder = BulkFolder()  # a large ledger folds into a compact KeyIndex
        with no_gc():
            for record, pairs in scan.items():
                if pairs is not None and isinstance(record, Intent):
                    folder.add_intent(record, pairs, raw=scan.raw)
                    continue
                if isinstance(record, Header):
                    self._check_binding(record)
                folder.add(record)
        state = folder.state(serial=scan.serial)
        state.warnings[:0] = scan.warnings
        holder = self._lock.holder() if scan.torn_tail else None
        if holder is not None:
            # most likely not a crash: a writer is appending while we read (reads never
            # wait for writers); say so instead of alarming anyone
            state.warnings = [w for w in state.warnings if "the last line is damaged" not in w]
            state.warnings.append(
                f"{self.display}:{scan.torn_tail}: the last line is being written by "
                f"{holder.owner} (`{holder.command}`) and was not read")
        return state

    def records(self) -> Iterator[Record]:
        if self.path.exists():
            yield from _Scan(self.path, self.display).records()

    def lock(self, command: str,
             timeout: float = 0.0) -> contextlib.AbstractContextManager[LockInfo]:
        return self._holding(command, timeout)

    @contextlib.contextmanager
    def _holding(self, command: str, timeout: float) -> Iterator[LockInfo]:
        with self._lock.hold(command, timeout) as info:
            self._held = info
            self._tail = None
            try:
                yield info
            finally:
                self._held = None
                self._tail = None

    def unlock(self, lock_id: str) -> None:
        self._lock.unlock(lock_id)

    def lock_holder(self) -> LockInfo | None:
        """Who holds the writer lock now, if anyone (for messages)."""
        return self._lock.holder()

    def _first_header(self) -> Header | None:
        with open(self.path, "rb") as fh:
            for raw in fh:
                try:
                    obj = json.loads(raw)
                    if isinstance(obj, dict) and obj.get("type") == TORN:
                        continue
                    record = codec.from_json(obj)
                except codec.NewerFormat as err:
                    raise LedgerError(str(err), location=Location(self.display, 1),
                                      hint="upgrade connectly-declare") from None
                except (ValueError, RecursionError):
                    continue
                if not isinstance(record, Header):
                    raise LedgerCorrupt("the first record is not a header",
                                        location=Location(self.display, 1),
                                        hint=RESTORE_HINT.format(path=self.display))
                return record
        return None

    def append(self, records: Sequence[Record]) -> int:
        if self._held is None:
            raise LedgerError(
                "appending to the ledger needs the writer lock",
                hint="call Ledger.lock() around append (a bug in the caller)",
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            tail = self._tail if self._tail is not None and self._tail[0] == size else None
            self._tail = None
            before = tail[1] if tail else (_count_lines(fd, size) if size else 0)
            out: list[str] = []
            if size and tail is None:
                if os.pread(fd, 1, size - 1) != b"\n":
                    # the last append stopped before its final newline: end that line, and
                    # unless it is a whole record (only the newline was lost), say it is torn
                    out.append("")
                    if not _is_record(_last_line(fd, size)):
                        out.append(json.dumps({"type": TORN, "line": before + 1}))
                elif not _is_record(_last_line(fd, size)):
                    out.append(json.dumps({"type": TORN, "line": before}))
            header = tail[2] if tail else (self._first_header() if size else None)
            if header is None:
                header = Header(
                    lineage=self._new_id(),
                    created_at=self._clock().isoformat(timespec="seconds"),
                    environment=self.environment,
                    business_id=self.business_id,
                )
                out.append(codec.encode(header))
            else:
                self._check_binding(header)
            out.extend(codec.encode(r) for r in records if not isinstance(r, Header))
            data = ("\n".join(out) + "\n").encode("utf-8")
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
            lines = before + data.count(b"\n")
            self._tail = (size + len(data), lines, header)
        finally:
            os.close(fd)
        if created:
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        return lines


__all__ = ["LocalLedger"]
