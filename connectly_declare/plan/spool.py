"""A sendout's entries to send, kept in a spool instead of as Python objects.

A plan of a million recipients holds a million entries to send; as Python objects
(:class:`PlannedEntry` of an :class:`Entry`, its variables dict and strings) that is about
0.9 KiB each, most of `plan`'s memory. A :class:`Spool` keeps the first
:data:`IN_MEMORY` of them as they are (a small plan never touches the disk) and, past
that, only compact rows of their per-entry fields, `marshal`-ed in chunks of
:data:`CHUNK` rows (laid out as :mod:`plan.spoolcodec` says) to an anonymous temporary
file (``tempfile.TemporaryFile``: in the system temp folder, ``TMPDIR``; it has no name
and is gone when the spool is closed or the process ends, however it ends). What is the
same for every entry of a sendout (sendout, campaign, version, round, allow_multiple) is
stored once.

It is append-only and re-iterable: every iteration yields the entries in the order they
were appended, rebuilt equal to those put in (:class:`Entry` equality, and also their
`source`, `zone` and `timing`). Holding at most one chunk per iteration, a plan's
post-passes, `plan --out` and `apply` walk any number of entries in bounded memory.

``DECLARE_TEST_SPOOL_MEMORY`` and ``DECLARE_TEST_SPOOL_CHUNK`` (for tests and benchmarks
only) set how many entries a new spool keeps in memory before it spills, and how many rows
a chunk holds: ``0`` and ``1`` put every entry on disk as soon as it is appended.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from itertools import compress, islice
from operator import attrgetter, itemgetter
from typing import IO, Any

from connectly_declare.errors import DeclareError
from connectly_declare.gcpause import no_gc
from connectly_declare.plan.model import PlannedEntry
from connectly_declare.plan.spoolcodec import (
    CONSTANTS,
    FIELD_AT,
    FIELDS,
    HEAD,
    Chunk,
    Constants,
    Fields,
    chunk_of,
    decode,
    encode,
    rebuild,
)

IN_MEMORY = 20_000  # entries a spool keeps as objects before it spills to disk
CHUNK = 4_096  # rows per chunk on disk (what one iteration holds at a time)
MEMORY_ENV = "DECLARE_TEST_SPOOL_MEMORY"
CHUNK_ENV = "DECLARE_TEST_SPOOL_CHUNK"

_CLIENT = attrgetter("entry.client")  # of a PlannedEntry
_KEEP = bytes([1, 0]) + bytes(254)  # drop flags (0 or 1) to keep flags, by bytes.translate


def _from_env(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value.isdigit() else default


def _temp_dir() -> str | None:
    """The system's temporary folder, named without `tempfile.gettempdir()`, which
    writes and deletes a named probe file there first: on Linux the spool's file is then
    the only one the plan opens for writing, and it is anonymous (O_TMPFILE)."""
    for name in ("TMPDIR", "TEMP", "TMP"):
        if os.environ.get(name):
            return os.environ[name]
    return "/tmp" if os.name == "posix" else None  # elsewhere: tempfile decides


class Spool:
    """One sendout's planned entries: append-only, iterated any number of times in
    insertion order, the first `memory` kept as objects and the rest in a temporary
    file (see the module docstring)."""

    __slots__ = ("_chunk", "_constants", "_count", "_file", "_items", "_limit", "_size")
    __hash__ = None  # type: ignore[assignment]  # mutable while it is being filled

    def __init__(self, entries: Iterable[PlannedEntry] = (), *,
                 memory: int | None = None, chunk: int | None = None) -> None:
        self._chunk = max(1, _from_env(CHUNK_ENV, CHUNK) if chunk is None else chunk)
        self._items: list[PlannedEntry] = []  # all entries, or those not yet on disk
        # spill when _items grows past this
        self._limit = max(0, _from_env(MEMORY_ENV, IN_MEMORY) if memory is None else memory)
        self._file: IO[bytes] | None = None
        self._size = 0  # bytes written to the file
        self._count = 0  # entries on disk
        self._constants: Constants | None = None
        self.extend(entries)

    # -- filling -----------------------------------------------------------------------
    def append(self, planned: PlannedEntry) -> None:
        items = self._items
        items.append(planned)
        if len(items) > self._limit:
            self._spill()

    def extend(self, entries: Iterable[PlannedEntry]) -> None:
        if not isinstance(entries, list):  # any iterable, one at a time (never held whole)
            for planned in entries:
                self.append(planned)
            return
        # A list (a chunk of a plan's sends): in slices that spill exactly where appending
        # them one by one would, so the spool holds and writes the same chunks.
        items, start, count = self._items, 0, len(entries)
        while start < count:
            room = self._limit + 1 - len(items)  # >= 1: items never outgrow the limit
            items.extend(entries[start:start + room])
            start += room
            if len(items) > self._limit:
                self._spill()

    def _spill(self) -> None:
        """Write every entry still held as an object to disk, in chunks."""
        items = self._items
        if self._constants is None:
            self._constants = CONSTANTS(items[0].entry)
        constants = self._constants
        size = self._chunk
        for start in range(0, len(items), size):
            self._write(chunk_of(items[start:start + size], constants))
        self._count += len(items)
        items.clear()
        self._limit = size - 1  # from now on, a chunk at a time

    def _write(self, chunk: Chunk) -> None:
        self._write_blob(encode(chunk))

    def _write_blob(self, blob: bytes) -> None:
        """Append a chunk as it is on disk (header and data)."""
        try:
            if self._file is None:
                self._file = tempfile.TemporaryFile(prefix="connectly-declare-spool-",
                                                    buffering=0, dir=_temp_dir())
            self._file.seek(self._size)
            self._file.write(blob)
        except OSError as err:
            raise DeclareError(
                f"cannot keep the entries to send on disk ({tempfile.gettempdir()}): "
                f"{err.strerror or err}",
                hint="free space there, or point TMPDIR at a folder with room "
                "(a plan of a million entries needs roughly 200 MB)") from None
        self._size += len(blob)

    # -- reading -----------------------------------------------------------------------
    def __len__(self) -> int:
        return self._count + len(self._items)

    def __bool__(self) -> bool:
        return len(self) > 0

    def __iter__(self) -> Iterator[PlannedEntry]:
        if self._file is not None:
            yield from self._from_disk(self._count)
        yield from list(self._items)  # a copy: appending while iterating stays defined

    def _from_disk(self, count: int) -> Iterator[PlannedEntry]:
        assert self._constants is not None
        constants = self._constants
        chunks = self._chunks(count)
        while True:
            # The collector pauses while a chunk is read and rebuilt (thousands of small
            # acyclic objects at once: with it running, walking 90,000 spilled entries set
            # off ~530 collections, 4 of them full, and took twice as long), never while
            # the entries are out with the caller (apply's requests make cyclic garbage).
            with no_gc():
                chunk = next(chunks, None)
                built = rebuild(chunk, constants) if chunk is not None else None
            if built is None:
                return
            yield from built

    def _chunks(self, count: int) -> Iterator[Chunk]:
        """The chunks on disk, one at a time (each read at its own offset, so several
        iterations may run side by side)."""
        for kind, _, data, _ in self._blobs(count):
            yield decode(kind, data)

    def _blobs(self, count: int) -> Iterator[tuple[int, bytes, bytes, int]]:
        """The chunks on disk as they are: (encoding, header, data, rows) each."""
        assert self._file is not None
        offset, seen = 0, 0
        while seen < count:
            fh = self._file
            fh.seek(offset)
            head = fh.read(HEAD.size)
            kind, length, rows = (HEAD.unpack(head) if len(head) == HEAD.size
                                  else (0, -1, 0))
            data = fh.read(length) if length >= 0 else b""
            if len(data) != length:
                raise DeclareError("the spool of entries to send was cut short on disk",
                                   hint="check the temporary folder's disk (TMPDIR)")
            offset += HEAD.size + length
            seen += rows
            yield kind, head, data, rows

    def rows(self) -> Iterator[tuple[str, str, Fields, Constants]]:
        """Every entry as (action, reason, fields, constants), in order, without
        rebuilding Entry objects: fields are (client, variables, scheduled_at,
        fingerprint, source, zone, timing), constants (sendout, campaign, version, round,
        allow_multiple). What a saved plan's lines are written from."""
        if self._file is not None:
            assert self._constants is not None
            constants = self._constants
            for actions, reasons, fields, overrides in self._chunks(self._count):
                if overrides:
                    for i, (action, reason, f) in enumerate(zip(actions, reasons, fields,
                                                                strict=True)):
                        yield action, reason, f, overrides.get(i, constants)
                else:
                    for action, reason, f in zip(actions, reasons, fields, strict=True):
                        yield action, reason, f, constants
        for action, entry, reason in list(self._items):
            yield action, reason, FIELDS(entry), CONSTANTS(entry)

    def client_chunks(self) -> Iterator[list[str]]:
        """The entries' clients, in order, a chunk at a time (what plan.capcount counts)."""
        return self.field_chunks("client")

    def field_chunks(self, *names: str) -> Iterator[list[Any]]:
        """Per-entry fields of the entries, in order, a chunk at a time: for one name its
        value, for several a tuple of them. Read from the rows on disk without rebuilding
        any entry. `names` are of ``client, variables, scheduled_at, fingerprint, source,
        zone, timing``."""
        if not names or any(name not in FIELD_AT for name in names):
            raise ValueError(f"not per-entry fields of a spool: {names!r}")
        of_row = itemgetter(*(FIELD_AT[name] for name in names))
        of_entry = attrgetter(*(f"entry.{name}" for name in names))
        if self._file is not None:
            for chunk in self._chunks(self._count):
                yield list(map(of_row, chunk[2]))
        if self._items:
            yield list(map(of_entry, list(self._items)))

    def without(self, drop: bytes | bytearray) -> Spool:
        """A new spool of the entries whose position `i` here has ``drop[i] == 0``, in
        order. Rows on disk are copied a chunk at a time, no entry rebuilt."""
        if len(drop) != len(self):
            raise ValueError(f"{len(drop):,} flags for a spool of {len(self):,} entries")
        kept = Spool(chunk=self._chunk)
        position = 0
        if self._file is not None:
            kept._constants = self._constants
            size = self._chunk
            actions: list[str] = []
            reasons: list[str] = []
            fields: list[Fields] = []
            overrides: dict[int, Constants] = {}
            for kind, head, data, count in self._blobs(self._count):
                flags = drop[position:position + count]
                position += count
                if not any(flags):  # nothing dropped: the chunk is copied as it is
                    if actions:  # what came before it first, as a short chunk
                        kept._write((actions, reasons, fields, overrides))
                        kept._count += len(actions)
                        actions, reasons, fields, overrides = [], [], [], {}
                    kept._write_blob(head + data)
                    kept._count += count
                    continue
                read = decode(kind, data)
                keep = flags.translate(_KEEP)
                if read[3]:  # entries with constants of their own (never in a plan)
                    for n in compress(range(count), keep):
                        if n in read[3]:
                            overrides[len(actions)] = read[3][n]
                        actions.append(read[0][n])
                        reasons.append(read[1][n])
                        fields.append(read[2][n])
                else:
                    actions += compress(read[0], keep)
                    reasons += compress(read[1], keep)
                    fields += compress(read[2], keep)
                while len(actions) >= size:
                    kept._write((actions[:size], reasons[:size], fields[:size],
                                 {i: c for i, c in overrides.items() if i < size}))
                    kept._count += size
                    del actions[:size], reasons[:size], fields[:size]
                    overrides = {i - size: c for i, c in overrides.items() if i >= size}
            if actions:
                kept._write((actions, reasons, fields, overrides))
                kept._count += len(actions)
            if kept._count:
                kept._limit = size - 1  # as after a spill: a chunk at a time from now on
        kept.extend(list(compress(self._items, drop[position:].translate(_KEEP))))
        return kept

    def rows_at(self, positions: Iterable[int]) -> Iterator[tuple[str, str, Fields, Constants]]:
        """The rows (as :meth:`rows` gives them) at these positions, ascending: only the
        chunks on disk that hold one of them are read."""
        wanted = iter(positions)
        want = next(wanted, None)
        start = 0  # position of the current chunk's first row
        if self._file is not None and want is not None:
            assert self._constants is not None
            for kind, _, data, count in self._blobs(self._count):
                if want is None:
                    return
                if want >= start + count:
                    start += count
                    continue
                actions, reasons, fields, overrides = decode(kind, data)
                while want is not None and want < start + count:
                    n = want - start
                    yield (actions[n], reasons[n], fields[n],
                           overrides.get(n, self._constants))
                    want = next(wanted, None)
                start += count
        items = list(self._items)
        while want is not None:
            action, entry, reason = items[want - start]
            yield action, reason, FIELDS(entry), CONSTANTS(entry)
            want = next(wanted, None)

    def __getitem__(self, index: int) -> PlannedEntry:
        """The entry at `index` (walks the spool: for tests and samples, not loops)."""
        size = len(self)
        if index < 0:
            index += size
        if not 0 <= index < size:
            raise IndexError("spool index out of range")
        if index >= self._count:
            return self._items[index - self._count]
        for i, planned in enumerate(self):
            if i == index:
                return planned
        raise IndexError("spool index out of range")  # pragma: no cover

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Spool | tuple | list):
            return len(self) == len(other) and all(
                a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    def __repr__(self) -> str:
        where = f", {self._count:,} on disk" if self._file is not None else ""
        return f"Spool({len(self):,} entries{where})"

    @property
    def on_disk(self) -> int:
        """How many entries are in the temporary file (0: all in memory; once spilled,
        the last chunk's entries wait in memory until it is full)."""
        return self._count

    def close(self) -> None:
        """Drop the temporary file now (it also goes when the spool is collected)."""
        if self._file is not None:
            self._file.close()


def client_chunks(entries: Iterable[PlannedEntry]) -> Iterator[list[str]]:
    """The clients of `entries` (a Spool or any iterable of PlannedEntry), in order, a
    chunk at a time; a Spool's are read from its chunks without rebuilding any entry."""
    if isinstance(entries, Spool):
        yield from entries.client_chunks()
        return
    stream = iter(entries)
    while clients := list(map(_CLIENT, islice(stream, CHUNK))):
        yield clients


__all__ = ["CHUNK", "CHUNK_ENV", "IN_MEMORY", "MEMORY_ENV", "Spool", "client_chunks"]
