"""How a spool's chunk is laid out on disk and rebuilt (:mod:`plan.spool` keeps the
chunks and the file they are in).

A chunk holds compact rows of its entries' per-entry fields, column by column, behind a
small header; it is `marshal`-ed, or pickled when a value is one marshal does not know.
What is the same for every entry of a sendout is not in the rows: the spool keeps it once
and hands it back when a chunk's rows are rebuilt into PlannedEntry objects.
"""

from __future__ import annotations

import dataclasses
import marshal
import pickle
import struct
from collections import deque
from collections.abc import Iterable
from itertools import repeat
from operator import attrgetter, itemgetter
from typing import Any, cast

from connectly_declare.entry import Entry
from connectly_declare.gcpause import no_gc
from connectly_declare.plan.model import PlannedEntry, new_planned

# A chunk on disk is columnar: (actions, reasons, fields, overrides), the fields of entry i
# being (client, variables, scheduled_at, fingerprint, source, zone, timing) and
# `overrides` mapping i to the entry's constants where they differ from the spool's
# (never in a plan). Built with map() over C getters, it costs a third of a row per entry.
Fields = tuple[Any, ...]
Chunk = tuple[list[str], list[str], list[Fields], dict[int, "Constants"]]
Constants = tuple[str, str, str | None, int, bool]
CONSTANTS = attrgetter("sendout", "campaign", "version", "round", "allow_multiple")
_ACTION, _ENTRY, _REASON = itemgetter(0), itemgetter(1), itemgetter(2)
# chunk header: encoding (0 marshal, 1 pickle), length, rows (a chunk is copied whole,
# never decoded, when none of its rows changes: Spool.without)
HEAD = struct.Struct("<BQI")
_MARSHAL, _PICKLE = 0, 1

_ENTRY_FIELDS = ("sendout", "campaign", "version", "client", "variables", "scheduled_at",
                 "round", "allow_multiple", "fingerprint", "source", "zone", "timing")
# Entry is frozen: its __init__ sets each field through object.__setattr__. Rebuilding a
# million entries through the slot descriptors costs half as much (as entries.maker does);
# only while Entry has exactly these fields and no __post_init__.
_FAST = (tuple(f.name for f in dataclasses.fields(Entry)) == _ENTRY_FIELDS
         and not hasattr(Entry, "__post_init__")
         and getattr(Entry, "__slots__", None) is not None)
_PER_ENTRY = ("client", "variables", "scheduled_at", "fingerprint", "source", "zone", "timing")
FIELD_AT = {name: n for n, name in enumerate(_PER_ENTRY)}  # a row's fields, by name
FIELDS = attrgetter(*_PER_ENTRY)  # an entry's row
_SET_PER_ENTRY = tuple(getattr(Entry, n).__set__ for n in _PER_ENTRY) if _FAST else ()
_SET_CONSTANT = tuple(getattr(Entry, n).__set__ for n in (
    "sendout", "campaign", "version", "round", "allow_multiple")) if _FAST else ()


def _drain(calls: Iterable[object]) -> None:
    """Run an iterator of calls for their effect, in C."""
    deque(calls, maxlen=0)


def chunk_of(part: list[PlannedEntry], constants: Constants) -> Chunk:
    """The chunk of these entries, `constants` being the spool's."""
    entries = list(map(_ENTRY, part))
    own = list(map(CONSTANTS, entries))
    overrides = {} if own.count(constants) == len(own) else {
        i: c for i, c in enumerate(own) if c != constants}
    return (list(map(_ACTION, part)), list(map(_REASON, part)),
            list(map(FIELDS, entries)), overrides)


def encode(chunk: Chunk) -> bytes:
    """A chunk as it is on disk: header, then data."""
    try:
        data, kind = marshal.dumps(chunk), _MARSHAL
    except ValueError:  # a value marshal does not know (a str subclass, a mapping...)
        # variables as a plain dict (equal to the mapping it was), anything else pickled
        fields = [(*f[:1], v if type(v := f[1]) is dict else dict(v), *f[2:])
                  for f in chunk[2]]
        data, kind = pickle.dumps((*chunk[:2], fields, chunk[3]),
                                  pickle.HIGHEST_PROTOCOL), _PICKLE
    return HEAD.pack(kind, len(data), len(chunk[0])) + data


def decode(kind: int, data: bytes) -> Chunk:
    """A chunk read from disk. The collector pauses while it is decoded (thousands of
    small acyclic objects at once), never while its rows are out with the caller."""
    with no_gc():
        chunk: Chunk = marshal.loads(data) if kind == _MARSHAL else pickle.loads(data)
    return chunk


def entry_of_row(fields: Fields, constants: Constants) -> Entry:
    """The Entry of one row (as :meth:`Spool.rows` yields them)."""
    client, variables, when, fingerprint, source, zone, timing = fields
    sendout, campaign, version, round_, multiple = constants
    return Entry(sendout, campaign, version, client, variables, when, round_, multiple,
                 fingerprint, source, zone, timing)


def rebuild(chunk: Chunk, constants: Constants) -> list[PlannedEntry]:
    """A chunk's entries as PlannedEntry objects, in order."""
    actions, reasons, fields, overrides = chunk
    new_tuple = tuple.__new__
    out: list[Any] = []
    append = out.append
    if _FAST:
        # Column by column, each through map() over the slot descriptors' C setters: no
        # Python bytecode runs per entry (a loop setting twelve fields costs twice as much).
        count = len(actions)
        built = list(map(object.__new__, repeat(Entry, count)))
        columns = list(zip(*fields, strict=True)) if fields else [()] * len(_PER_ENTRY)
        for setter, column in zip(_SET_PER_ENTRY, columns, strict=True):
            _drain(map(setter, built, column))
        for setter, value in zip(_SET_CONSTANT, constants, strict=True):
            _drain(map(setter, built, repeat(value, count)))
        out = list(map(new_planned, zip(actions, built, reasons, strict=True)))
    else:
        c = constants
        for action, reason, (client, variables, when, fp, source, zone, timing) in zip(
                actions, reasons, fields, strict=True):
            e = Entry(c[0], c[1], c[2], client, variables, when, c[3], c[4], fp, source, zone,
                      timing)
            append(new_tuple(PlannedEntry, (action, e, reason)))
    for i, (sendout, campaign, version, round_, multiple) in overrides.items():
        old = out[i].entry
        e = Entry(sendout, campaign, version, old.client, old.variables, old.scheduled_at,
                  round_, multiple, old.fingerprint, old.source, old.zone, old.timing)
        out[i] = new_tuple(PlannedEntry, (out[i].action, e, out[i].reason))
    return cast(list[PlannedEntry], out)


__all__ = ["CONSTANTS", "FIELDS", "FIELD_AT", "HEAD", "Chunk", "Constants", "Fields", "chunk_of",
           "decode", "encode", "entry_of_row", "rebuild"]
