"""Ledger records <-> JSON objects, shared by every backend.

One record is one JSON object (one line in the local backend, one row's document in
PostgreSQL). Field names are the dataclasses' own; an intent's entries are stored as
``[client, fingerprint]`` pairs because an intent of 1,000 entries is written on every
request and read on every plan, and pairs halve its size against objects.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any, cast, overload

from connectly_declare.ledger.base import (
    FORMAT_VERSION,
    RESOLVED_AS,
    Header,
    Intent,
    IntentEntry,
    Outcome,
    Record,
    Resolution,
)

_OUTCOME_STATUSES = ("accepted", "rejected", "partial", "unknown")
# A verdict on many keys is its own type, so a connectly-declare that predates it stops at
# the line ("unknown record type") instead of folding only its first key.
BULK_RESOLUTION = "resolutions"


class NewerFormat(ValueError):
    """A header written by a newer connectly-declare (carries the version)."""

    def __init__(self, version: int) -> None:
        self.version = version
        super().__init__(
            f"ledger format version {version} is newer than this connectly-declare "
            f"supports ({FORMAT_VERSION})"
        )


def to_json(record: Record) -> dict[str, Any]:
    """The JSON object of a record (keys in a fixed order, so lines diff cleanly in Git)."""
    if isinstance(record, Intent):
        return {
            "type": "intent",
            "batch_id": record.batch_id,
            "at": record.at,
            "sendout": record.sendout,
            "campaign": record.campaign,
            "version": record.version,
            "scope": record.scope,
            "options": dict(record.options),
            "entries": [[e.client, e.fingerprint] for e in record.entries],
        }
    if isinstance(record, Outcome):
        return {
            "type": "outcome",
            "batch_id": record.batch_id,
            "at": record.at,
            "status": record.status,
            "accepted_count": record.accepted_count,
            "rejected_count": record.rejected_count,
            "sendout_id": record.sendout_id,
            "http_status": record.http_status,
            "error": record.error,
        }
    if isinstance(record, Resolution) and record.more:
        return {
            "type": BULK_RESOLUTION,
            "resolved_as": record.resolved_as,
            "by": record.by,
            "at": record.at,
            "reason": record.reason,
            "keys": [list(key) for key in record.keys()],
        }
    if isinstance(record, Resolution):
        return {
            "type": "resolution",
            "campaign": record.campaign,
            "client": record.client,
            "scope": record.scope,
            "resolved_as": record.resolved_as,
            "by": record.by,
            "at": record.at,
            "reason": record.reason,
        }
    return {
        "type": "header",
        "format_version": record.format_version,
        "lineage": record.lineage,
        "created_at": record.created_at,
        "environment": record.environment,
        "business_id": record.business_id,
    }


def encode(record: Record) -> str:
    """One compact JSON line (no trailing newline)."""
    return json.dumps(to_json(record), ensure_ascii=False, separators=(",", ":"))


def _str(obj: Mapping[str, Any], name: str) -> str:
    value = obj.get(name)
    if not isinstance(value, str):
        raise ValueError(f"field {name!r} must be a string")
    return value


def _opt_str(obj: Mapping[str, Any], name: str) -> str | None:
    value = obj.get(name)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"field {name!r} must be a string or null")
    return value


def _int(obj: Mapping[str, Any], name: str, default: int | None = None) -> int:
    value = obj.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"field {name!r} must be an integer")
    return value


def intent_from_json(obj: dict[str, Any], *,
                     check_pairs: bool = True) -> tuple[Intent, list[Any]]:
    """An intent without its entries, and its ``[client, fingerprint]`` pairs: the fold's
    fast path (:meth:`Folder.add_intent`) needs no IntentEntry per entry. Without
    `check_pairs` only the list itself is checked (the fold raises on a bad pair)."""
    intent = Intent(
        batch_id=_str(obj, "batch_id"),
        at=_str(obj, "at"),
        sendout=_str(obj, "sendout"),
        campaign=_str(obj, "campaign"),
        version=_opt_str(obj, "version"),
        scope=_str(obj, "scope"),
        options={},
        entries=(),
    )
    options = obj.get("options") or {}
    if not isinstance(options, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in options.items()
    ):
        raise ValueError("field 'options' must map strings to strings")
    pairs = obj.get("entries")
    if not isinstance(pairs, list) or (check_pairs and not all(
        type(p) is list and len(p) == 2 and type(p[0]) is str and type(p[1]) is str
        for p in pairs
    )):
        raise ValueError("field 'entries' must be a list of [client, fingerprint] pairs")
    return replace(intent, options=cast(dict[str, str], options)), pairs


class LazyPairs(Sequence[Any]):
    """An intent's ``[client, fingerprint]`` pairs, parsed from its line's bytes only when
    something reads them. The fold decodes most entries arrays straight from the bytes
    (ledger.rawentries) and never needs these lists: parsing every array twice was a fifth
    of reading a large ledger. A segment that does not parse, or not to `count` items,
    raises ValueError when read, as the whole line's parse would have."""

    __slots__ = ("_count", "_pairs", "segment")

    def __init__(self, segment: bytes, count: int) -> None:
        self.segment = segment  # the entries array, as JSON
        self._count = count
        self._pairs: list[Any] | None = None

    def __len__(self) -> int:
        return self._count

    def load(self) -> list[Any]:
        if self._pairs is None:
            pairs = json.loads(self.segment)
            if not isinstance(pairs, list) or len(pairs) != self._count:
                raise ValueError("field 'entries' must be a list of [client, fingerprint] pairs")
            self._pairs = pairs
        return self._pairs

    @overload
    def __getitem__(self, index: int) -> Any: ...

    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...

    def __getitem__(self, index: int | slice) -> Any:
        return self.load()[index]

    def __iter__(self) -> Iterator[Any]:
        return iter(self.load())


_ENTRIES_KEY = b',"entries":['
_INTENT_START = b'{"type":"intent",'


def _entries_cut(line: bytes) -> tuple[int, bytes] | None:
    """Where an intent line's ``,"entries":[`` starts and its entries array's bytes (up
    to the line's last ``]}``), when the array holds no backslash; else None."""
    start = line.rfind(_ENTRIES_KEY)
    end = line.rfind(b"]}")
    if start < 0 or end < start:
        return None
    segment = line[start + len(_ENTRIES_KEY) - 1:end + 1]
    return None if b"\\" in segment else (start, segment)


def entries_segment(line: bytes) -> bytes | None:
    """The bytes of the entries array of an intent line as the codec writes it, or None
    (what ledger.rawentries decodes)."""
    cut = _entries_cut(line)
    return None if cut is None else cut[1]


def split_intent(raw: bytes) -> tuple[bytes, LazyPairs] | None:
    """An intent line as this codec writes it (``"entries"`` last, its strings without
    escapes), cut in two: the line with ``[]`` for its entries array, and the array's
    pairs, read lazily. None for any other line (parsed whole, as before).

    The cut is exact: ``,"entries":[`` cannot occur inside a JSON string (its quote would
    be escaped) and the array holds no backslash, so its quotes delimit its strings, four
    per pair; it ends at the line's final ``]}``."""
    if not raw.startswith(_INTENT_START) or not raw.rstrip(b"\r\n").endswith(b"]}"):
        return None
    cut = _entries_cut(raw)
    if cut is None:
        return None
    start, segment = cut
    quotes = segment.count(b'"')
    if quotes % 4:
        return None
    return raw[:start] + b',"entries":[]}', LazyPairs(segment, quotes // 4)


def from_json(obj: Any) -> Record:
    """The record of a decoded JSON object; ValueError naming what is wrong.

    A header of a newer format raises :class:`NewerFormat` (a ValueError) so callers can
    tell "upgrade" from "damaged".
    """
    if not isinstance(obj, dict):
        raise ValueError("a record must be a JSON object")
    kind = obj.get("type")
    if kind == "intent":
        intent, pairs = intent_from_json(obj)
        return replace(intent, entries=tuple(IntentEntry(c, f) for c, f in pairs))
    if kind == "outcome":
        status = obj.get("status")
        if status not in _OUTCOME_STATUSES:
            raise ValueError(f"field 'status' must be one of {', '.join(_OUTCOME_STATUSES)}")
        error = obj.get("error")
        if error is not None and not isinstance(error, dict):
            raise ValueError("field 'error' must be an object or null")
        http_status = obj.get("http_status")
        if http_status is not None:
            http_status = _int(obj, "http_status")
        return Outcome(
            batch_id=_str(obj, "batch_id"),
            at=_str(obj, "at"),
            status=status,
            accepted_count=_int(obj, "accepted_count", 0),
            rejected_count=_int(obj, "rejected_count", 0),
            sendout_id=_opt_str(obj, "sendout_id"),
            http_status=http_status,
            error=error,
        )
    if kind in ("resolution", BULK_RESOLUTION):
        resolved_as = obj.get("resolved_as")
        if resolved_as not in RESOLVED_AS:
            raise ValueError(f"field 'resolved_as' must be one of {', '.join(RESOLVED_AS)}")
        if kind == BULK_RESOLUTION:
            return _bulk_resolution(obj, resolved_as)
        return Resolution(
            campaign=_str(obj, "campaign"),
            client=_str(obj, "client"),
            scope=_str(obj, "scope"),
            resolved_as=resolved_as,
            by=_str(obj, "by"),
            at=_str(obj, "at"),
            reason=_opt_str(obj, "reason") or "",
        )
    if kind == "header":
        version = _int(obj, "format_version")
        if version > FORMAT_VERSION:
            raise NewerFormat(version)
        return Header(
            lineage=_str(obj, "lineage"),
            created_at=_str(obj, "created_at"),
            environment=_opt_str(obj, "environment"),
            business_id=_opt_str(obj, "business_id"),
            format_version=version,
        )
    raise ValueError(f"unknown record type {kind!r}")


def _bulk_resolution(obj: Mapping[str, Any], resolved_as: Any) -> Resolution:
    keys = obj.get("keys")
    if not isinstance(keys, list) or not keys or not all(
        type(k) is list and len(k) == 3 and all(type(part) is str for part in k) for k in keys
    ):
        raise ValueError("field 'keys' must be a non-empty list of [campaign, client, scope]")
    (campaign, client, scope), *more = keys
    return Resolution(campaign=campaign, client=client, scope=scope, resolved_as=resolved_as,
                      by=_str(obj, "by"), at=_str(obj, "at"),
                      reason=_opt_str(obj, "reason") or "",
                      more=tuple((c, k, s) for c, k, s in more))


def refuse_lone_surrogates(raw: str | bytes, obj: Any) -> None:
    """ValueError when the JSON line `raw` (parsed as `obj`) holds a lone surrogate
    (`"\\ud800"`): JSON allows the escape, but it is not text and no output can encode
    it. Cheap unless `raw` holds such an escape at all."""
    probe = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if b"\\ud" not in probe and b"\\uD" not in probe:
        return
    try:
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"a lone surrogate \\u{ord(exc.object[exc.start]):04x} in a "
                         "string is not valid Unicode text") from None


def decode(line: str | bytes) -> Record:
    """The record of one JSON line; ValueError (incl. JSONDecodeError) when damaged."""
    obj = json.loads(line)
    refuse_lone_surrogates(line, obj)
    return from_json(obj)


__all__ = ["LazyPairs", "NewerFormat", "decode", "encode", "entries_segment", "from_json",
           "intent_from_json", "refuse_lone_surrogates", "split_intent", "to_json"]
