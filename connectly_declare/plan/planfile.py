"""Saved plans: `plan --out FILE` writes one, `show FILE` and `apply FILE` read it.

The file is JSON Lines (gzip when its name ends in ``.gz``), written and read as a stream,
so no copy of the whole plan is ever built as one JSON document or one byte string::

    {"format_version":2,"plan":{... every sendout without its entries to send ...}}
    [0,"send","+16505550001","<fingerprint>",{"name":"Ana"},null,1,"data/a.csv:2",null]
    ...                                   (one line per entry to send: its sendout's index,
                                           then action, client, fingerprint, variables,
                                           scheduled_at, round, source, reason)
    {"end":true,"entries":<count>,"checksum":"<blake2b of every line above>"}

It holds everything apply needs (per sendout: campaign, version, API options, and every
entry to send with its variables, schedule and fingerprint), so apply never re-reads
manifests; the ledger lineage and serial it was made against, so a stale plan is refused;
and the side and endpoint it was made for (simulator or real). The closing line's count
and checksum make a truncated, damaged or hand-edited plan fail loudly instead of sending
something nobody reviewed. It never holds secrets: the API key is not part of a plan.

Plans saved by earlier versions (format 1: one JSON document with the checksum of its
``plan`` object) are still read.

The same plan always gives the same bytes (no wall-clock time, gzip with mtime 0).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import zlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from connectly_declare.entry import Entry
from connectly_declare.errors import DeclareError, Location
from connectly_declare.ledger.codec import refuse_lone_surrogates
from connectly_declare.plan.model import (
    ACTIONS,
    PLAN_FORMAT_VERSION,
    OrphanCount,
    Plan,
    PlannedEntries,
    PlannedEntry,
    SendoutPlan,
)
from connectly_declare.plan.rollout import WaveStatus
from connectly_declare.plan.spool import Spool

_GZIP_MAGIC = b"\x1f\x8b"


def _entry_row(planned: PlannedEntry) -> list[Any]:
    e = planned.entry
    return [planned.action, e.client, e.fingerprint, dict(e.variables), e.scheduled_at,
            e.round, e.source, planned.reason]


def _send_rows(to_send: PlannedEntries) -> Iterator[list[Any]]:
    """The rows of a sendout's entries to send, as :func:`_entry_row` makes them; from a
    spool's stored rows, without rebuilding each Entry."""
    if not isinstance(to_send, Spool):
        yield from map(_entry_row, to_send)
        return
    for action, reason, (client, variables, scheduled_at, fp, source, _zone, _timing), \
            constants in to_send.rows():
        yield [action, client, fp, variables if type(variables) is dict else dict(variables),
               scheduled_at, constants[3], source, reason]


def _sendout_json(s: SendoutPlan, *, entries: bool = True) -> dict[str, Any]:
    body = {
        "name": s.name, "campaign": s.campaign, "version": s.version, "options": s.options,
        "allow_multiple": s.allow_multiple, "enabled": s.enabled,
        "counts": {a: s.counts[a] for a in ACTIONS}, "audience_stats": s.audience_stats,
        "notes": list(s.notes), "timing": s.timing,
        # row: [action, client, fingerprint, variables, scheduled_at, round, source, reason]
        "to_send": list(_send_rows(s.to_send)) if entries else [],
        "samples": [_entry_row(p) for p in s.samples],
        **({"waves": [w.as_dict() for w in s.waves]} if s.waves else {}),
    }
    if not entries:
        del body["to_send"]
    return body


def plan_to_json(plan: Plan, *, entries: bool = True) -> dict[str, Any]:
    """The plan as a JSON object (format 1's ``plan`` member; without `entries`, format 2's
    header, each sendout's entries to send left for the lines that follow it)."""
    return {
        "created_by": plan.created_by, "workspace_digest": plan.workspace_digest,
        "environment": plan.environment, "business_id": plan.business_id,
        "lineage": plan.lineage, "serial": plan.serial, "options": plan.options,
        "sendouts": [_sendout_json(s, entries=entries) for s in plan.sendouts],
        "orphans": [[o.sendout, o.campaign, o.count] for o in plan.orphans],
        "warnings": list(plan.warnings),
        "sim": plan.sim, "endpoint": plan.endpoint, "ledger": plan.ledger,
    }


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _checksum(body: bytes) -> str:
    return hashlib.blake2b(body, digest_size=16).hexdigest()


def _lines(plan: Plan) -> Iterator[bytes]:
    """The file's lines, one at a time: header, one per entry to send, closing line."""
    head = plan_to_json(plan, entries=False)
    digest = hashlib.blake2b(digest_size=16)
    line = b'{"format_version":%d,"plan":' % PLAN_FORMAT_VERSION + _canonical(head) + b"}\n"
    digest.update(line)
    yield line
    count = 0
    for index, s in enumerate(plan.sendouts):
        for row in _send_rows(s.to_send):
            line = _canonical([index, *row]) + b"\n"
            digest.update(line)
            count += 1
            yield line
    yield _canonical({"end": True, "entries": count, "checksum": digest.hexdigest()}) + b"\n"


def _write(plan: Plan, fh: IO[bytes], *, compress: bool) -> None:
    # level 6, not gzip's default 9: a 1M-entry plan is written ~25% faster, same size
    gz = gzip.GzipFile(filename="", mode="wb", fileobj=fh, compresslevel=6,
                       mtime=0) if compress else None
    write = fh.write if gz is None else gz.write
    chunk: list[bytes] = []
    for line in _lines(plan):
        chunk.append(line)
        if len(chunk) >= 4096:
            write(b"".join(chunk))
            chunk = []
    write(b"".join(chunk))
    if gz is not None:
        gz.close()  # writes gzip's trailer; `fh` stays open


def plan_bytes(plan: Plan, *, compress: bool = False) -> bytes:
    """The file content of `plan` (deterministic), in memory: for tests and small plans."""
    buffer = io.BytesIO()
    _write(plan, buffer, compress=compress)
    return buffer.getvalue()


def write_plan(plan: Plan, path: Path) -> None:
    """Write `plan` to `path` as a stream, atomically (a reader never sees half a plan)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            _write(plan, fh, compress=path.name.endswith(".gz"))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise DeclareError(f"cannot write the plan: {err.strerror}", location=Location(str(path)),
                           hint="check the path and its folder's permissions") from None


def _damaged(path: Path, why: str) -> DeclareError:
    return DeclareError(
        f"not a usable saved plan: {why}", location=Location(str(path)),
        hint="make a new one with `connectly-declare plan --out FILE`; never edit a saved plan")


def _planned(row: list[Any], s: dict[str, Any]) -> PlannedEntry:
    action, client, fp, variables, scheduled_at, round_, source, reason = row
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    entry = Entry(sendout=s["name"], campaign=s["campaign"], version=s["version"],
                  client=client, variables=variables, scheduled_at=scheduled_at,
                  round=round_, allow_multiple=s["allow_multiple"], fingerprint=fp,
                  source=source)
    return PlannedEntry(action, entry, reason)


def _sendout(s: dict[str, Any], to_send: Spool | None = None) -> SendoutPlan:
    return SendoutPlan(
        name=s["name"], campaign=s["campaign"], version=s["version"],
        options=dict(s["options"]), allow_multiple=bool(s["allow_multiple"]),
        # held and capped came later: a plan saved before them counts none
        counts={a: int(s["counts"].get(a, 0)) for a in ACTIONS},
        to_send=Spool(_planned(r, s) for r in s["to_send"]) if to_send is None else to_send,
        samples=tuple(_planned(r, s) for r in s["samples"]),
        notes=tuple(s["notes"]), audience_stats=dict(s["audience_stats"]),
        enabled=bool(s["enabled"]), timing=dict(s.get("timing") or {}),
        waves=tuple(WaveStatus.from_dict(w) for w in s.get("waves", ())),
    )


def plan_from_json(obj: dict[str, Any], *, format_version: int = PLAN_FORMAT_VERSION,
                   to_send: Sequence[Iterable[PlannedEntry]] | None = None) -> Plan:
    """The Plan of a ``plan`` object (format 1), or of format 2's header with `to_send`,
    each sendout's entries read from the lines (spools, or iterables made into spools);
    KeyError/TypeError/ValueError when malformed."""
    sendouts = obj["sendouts"]
    if to_send is not None and len(to_send) != len(sendouts):
        raise ValueError("entries name a sendout the header does not have")
    return Plan(
        format_version=format_version, created_by=obj["created_by"],
        workspace_digest=obj["workspace_digest"], environment=obj["environment"],
        business_id=obj["business_id"], lineage=obj["lineage"], serial=int(obj["serial"]),
        options=dict(obj["options"]), sendouts=tuple(
            _sendout(s, None if to_send is None else _spool(to_send[i]))
            for i, s in enumerate(sendouts)),
        orphans=tuple(OrphanCount(s, c, int(n)) for s, c, n in obj["orphans"]),
        warnings=tuple(obj["warnings"]),
        # absent in plans of older versions: the real side, endpoint not recorded
        sim=bool(_typed(obj.get("sim", False), bool, "sim")),
        endpoint=_typed(obj.get("endpoint"), str, "endpoint"),
        ledger=_typed(obj.get("ledger"), str, "ledger"),
    )


def _spool(entries: Iterable[PlannedEntry]) -> Spool:
    return entries if isinstance(entries, Spool) else Spool(entries)


def _typed(value: Any, kind: type, name: str) -> Any:
    if value is not None and not isinstance(value, kind):
        raise TypeError(f"{name} is {type(value).__name__}, not {kind.__name__}")
    return value


_Reader = gzip.GzipFile | io.BufferedReader


def _open(path: Path) -> _Reader:
    try:
        with open(path, "rb") as probe:
            gz = probe.read(2) == _GZIP_MAGIC
        return gzip.open(path, "rb") if gz else open(path, "rb")
    except OSError as err:
        raise DeclareError(f"cannot read the plan: {err.strerror}", location=Location(str(path)),
                           hint="give the file written by `plan --out`") from None


def _json_line(path: Path, line: bytes) -> Any:
    try:
        obj = json.loads(line)
    except ValueError as err:
        raise _damaged(path, f"it is not complete JSON ({err})") from None
    try:
        refuse_lone_surrogates(line, obj)
    except ValueError as err:  # no output could print it
        raise _damaged(path, str(err)) from None
    return obj


def _check_version(path: Path, doc: Any) -> int:
    if not isinstance(doc, dict) or not isinstance(doc.get("format_version"), int):
        raise _damaged(path, "it has no format_version")
    version: int = doc["format_version"]
    if version > PLAN_FORMAT_VERSION:
        raise DeclareError(
            f"the plan has format version {version}, newer than this connectly-declare "
            f"supports ({PLAN_FORMAT_VERSION})", location=Location(str(path)),
            hint="use the connectly-declare version that wrote it, or upgrade")
    return version


_CHANGED = "its checksum does not match (the file was changed after `plan --out` wrote it)"


def _read_v1(path: Path, doc: dict[str, Any]) -> Plan:
    """Format 1: one document, the checksum of its ``plan`` object beside it."""
    body = doc.get("plan")
    if not isinstance(body, dict) or doc.get("checksum") != _checksum(_canonical(body)):
        raise _damaged(path, _CHANGED)
    try:
        return plan_from_json(body, format_version=1)
    except (KeyError, TypeError, ValueError) as err:
        raise _damaged(path, f"unexpected content ({type(err).__name__}: {err})") from None


def _read_stream(path: Path, fh: _Reader, first: bytes, head: dict[str, Any]) -> Plan:
    """Format 2: the header, one line per entry to send, the closing line; each line is
    checked and turned into an entry as it is read, into its sendout's spool (the file is
    never held whole, nor are its entries as objects); the Plan is returned only once the
    closing line's count and checksum match."""
    digest = hashlib.blake2b(first, digest_size=16)
    body = head.get("plan")
    if not isinstance(body, dict) or not isinstance(body.get("sendouts"), list):
        raise _damaged(path, _CHANGED)
    sendouts: list[Any] = body["sendouts"]
    to_send = [Spool() for _ in sendouts]
    count = 0
    try:
        for line in fh:
            row = _json_line(path, line)
            if isinstance(row, dict):  # the closing line
                if fh.read(1):
                    raise _damaged(path, "it has lines after its end")
                if row.get("checksum") != digest.hexdigest() or row.get("entries") != count:
                    raise _damaged(path, _CHANGED)
                return plan_from_json(body, format_version=2, to_send=to_send)
            digest.update(line)
            count += 1
            if not isinstance(row, list) or not row or not isinstance(row[0], int) \
                    or not 0 <= row[0] < len(sendouts) or not isinstance(sendouts[row[0]], dict):
                raise ValueError(f"entry line {count + 1} names no sendout of the header")
            to_send[row[0]].append(_planned(row[1:], sendouts[row[0]]))
    except (OSError, EOFError, zlib.error) as err:
        raise _damaged(path, f"it is not complete JSON ({err})") from None
    except (KeyError, TypeError, ValueError) as err:
        raise _damaged(path, f"unexpected content ({type(err).__name__}: {err})") from None
    raise _damaged(path, "it is not complete JSON (its closing line is missing: the file was "
                   "cut short)")


def read_plan(path: Path) -> Plan:
    """Read a saved plan, line by line; a DeclareError naming the file when it is missing,
    damaged, edited, or from a newer connectly-declare."""
    with _open(path) as fh:
        try:
            first = fh.readline()
        except (OSError, EOFError, zlib.error) as err:
            raise _damaged(path, f"it is not complete JSON ({err})") from None
        doc = _json_line(path, first)
        version = _check_version(path, doc)
        if version == 1:
            return _read_v1(path, doc)
        return _read_stream(path, fh, first, doc)


__all__ = ["plan_bytes", "plan_from_json", "plan_to_json", "read_plan", "write_plan"]
