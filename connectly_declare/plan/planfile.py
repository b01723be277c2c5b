"""Saved plans: `plan --out FILE` writes one, `show FILE` and `apply FILE` read it.

The file is JSON (gzip when its name ends in ``.gz``)::

    {"format_version": 1, "checksum": "<blake2b of the plan object>", "plan": {...}}

It holds everything apply needs (per sendout: campaign, version, API options, and every
entry to send with its variables, schedule and fingerprint), so apply never re-reads
manifests; and the ledger lineage and serial it was made against, so a stale plan is
refused. The checksum makes a damaged or hand-edited plan fail loudly instead of sending
something nobody reviewed. It never holds secrets: the API key is not part of a plan.

The same plan always gives the same bytes (no wall-clock time, gzip with mtime 0).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import zlib
from pathlib import Path
from typing import Any

from connectly_declare.entry import Entry
from connectly_declare.errors import DeclareError, Location
from connectly_declare.ledger.codec import refuse_lone_surrogates
from connectly_declare.plan.make import (
    ACTIONS,
    PLAN_FORMAT_VERSION,
    OrphanCount,
    Plan,
    PlannedEntry,
    SendoutPlan,
)
from connectly_declare.plan.rollout import WaveStatus

_GZIP_MAGIC = b"\x1f\x8b"


def _entry_row(planned: PlannedEntry) -> list[Any]:
    e = planned.entry
    return [planned.action, e.client, e.fingerprint, dict(e.variables), e.scheduled_at,
            e.round, e.source, planned.reason]


def _sendout_json(s: SendoutPlan) -> dict[str, Any]:
    return {
        "name": s.name, "campaign": s.campaign, "version": s.version, "options": s.options,
        "allow_multiple": s.allow_multiple, "enabled": s.enabled,
        "counts": {a: s.counts[a] for a in ACTIONS}, "audience_stats": s.audience_stats,
        "notes": list(s.notes), "timing": s.timing,
        # row: [action, client, fingerprint, variables, scheduled_at, round, source, reason]
        "to_send": [_entry_row(p) for p in s.to_send],
        "samples": [_entry_row(p) for p in s.samples],
        **({"waves": [w.as_dict() for w in s.waves]} if s.waves else {}),
    }


def plan_to_json(plan: Plan) -> dict[str, Any]:
    """The plan as a JSON object (the file's ``plan`` member)."""
    return {
        "created_by": plan.created_by, "workspace_digest": plan.workspace_digest,
        "environment": plan.environment, "business_id": plan.business_id,
        "lineage": plan.lineage, "serial": plan.serial, "options": plan.options,
        "sendouts": [_sendout_json(s) for s in plan.sendouts],
        "orphans": [[o.sendout, o.campaign, o.count] for o in plan.orphans],
        "warnings": list(plan.warnings),
        "sim": plan.sim, "endpoint": plan.endpoint, "ledger": plan.ledger,
    }


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _checksum(body: bytes) -> str:
    return hashlib.blake2b(body, digest_size=16).hexdigest()


def plan_bytes(plan: Plan, *, compress: bool = False) -> bytes:
    """The file content of `plan` (deterministic)."""
    body = _canonical(plan_to_json(plan))
    head = f'{{"format_version":{PLAN_FORMAT_VERSION},"checksum":"{_checksum(body)}","plan":'
    data = head.encode("utf-8") + body + b"}\n"
    # level 6, not gzip's default 9: a 1M-entry plan is written ~25% faster, same size
    return gzip.compress(data, compresslevel=6, mtime=0) if compress else data


def write_plan(plan: Plan, path: Path) -> None:
    """Write `plan` to `path` atomically (a reader never sees half a plan)."""
    data = plan_bytes(plan, compress=path.name.endswith(".gz"))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
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


def _sendout(s: dict[str, Any]) -> SendoutPlan:
    return SendoutPlan(
        name=s["name"], campaign=s["campaign"], version=s["version"],
        options=dict(s["options"]), allow_multiple=bool(s["allow_multiple"]),
        # held and capped came later: a plan saved before them counts none
        counts={a: int(s["counts"].get(a, 0)) for a in ACTIONS},
        to_send=tuple(_planned(r, s) for r in s["to_send"]),
        samples=tuple(_planned(r, s) for r in s["samples"]),
        notes=tuple(s["notes"]), audience_stats=dict(s["audience_stats"]),
        enabled=bool(s["enabled"]), timing=dict(s.get("timing") or {}),
        waves=tuple(WaveStatus.from_dict(w) for w in s.get("waves", ())),
    )


def plan_from_json(obj: dict[str, Any], *, format_version: int = PLAN_FORMAT_VERSION) -> Plan:
    """The Plan of a ``plan`` object; KeyError/TypeError/ValueError when malformed."""
    return Plan(
        format_version=format_version, created_by=obj["created_by"],
        workspace_digest=obj["workspace_digest"], environment=obj["environment"],
        business_id=obj["business_id"], lineage=obj["lineage"], serial=int(obj["serial"]),
        options=dict(obj["options"]), sendouts=tuple(_sendout(s) for s in obj["sendouts"]),
        orphans=tuple(OrphanCount(s, c, int(n)) for s, c, n in obj["orphans"]),
        warnings=tuple(obj["warnings"]),
        # absent in plans of older versions: the real side, endpoint not recorded
        sim=bool(_typed(obj.get("sim", False), bool, "sim")),
        endpoint=_typed(obj.get("endpoint"), str, "endpoint"),
        ledger=_typed(obj.get("ledger"), str, "ledger"),
    )


def _typed(value: Any, kind: type, name: str) -> Any:
    if value is not None and not isinstance(value, kind):
        raise TypeError(f"{name} is {type(value).__name__}, not {kind.__name__}")
    return value


def read_plan(path: Path) -> Plan:
    """Read a saved plan; a DeclareError naming the file when it is missing, damaged,
    edited, or from a newer connectly-declare."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise DeclareError(f"cannot read the plan: {err.strerror}", location=Location(str(path)),
                           hint="give the file written by `plan --out`") from None
    try:
        if data[:2] == _GZIP_MAGIC:
            data = gzip.decompress(data)
        doc = json.loads(data)
    except (OSError, EOFError, zlib.error, ValueError) as err:
        raise _damaged(path, f"it is not complete JSON ({err})") from None
    try:
        refuse_lone_surrogates(data, doc)
    except ValueError as err:  # no output could print it
        raise _damaged(path, str(err)) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("format_version"), int):
        raise _damaged(path, "it has no format_version")
    version = doc["format_version"]
    if version > PLAN_FORMAT_VERSION:
        raise DeclareError(
            f"the plan has format version {version}, newer than this connectly-declare "
            f"supports ({PLAN_FORMAT_VERSION})", location=Location(str(path)),
            hint="use the connectly-declare version that wrote it, or upgrade")
    body = doc.get("plan")
    if not isinstance(body, dict) or doc.get("checksum") != _checksum(_canonical(body)):
        raise _damaged(path, "its checksum does not match (the file was changed after "
                       "`plan --out` wrote it)")
    try:
        return plan_from_json(body, format_version=version)
    except (KeyError, TypeError, ValueError) as err:
        raise _damaged(path, f"unexpected content ({type(err).__name__}: {err})") from None


__all__ = ["plan_bytes", "plan_from_json", "plan_to_json", "read_plan", "write_plan"]
