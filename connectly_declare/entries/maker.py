"""One Python function per (sendout, source layout) that turns a recipient into an Entry.

At a million recipients, calling a renderer per variable, building a fields dict per CSV
row and hashing through `json.dumps` cost more than reading the file. So, once per
sendout and column layout, this module writes the loop body as Python source: constant
variables and their JSON encodings become literals, `{{ recipient.city }}` becomes
`row[2]` (or `d["city"]` for dict sources), the fingerprint's canonical JSON is joined
from pre-encoded pieces, and the function is compiled with `compile()`.

Only `repr()` of strings and integer indexes are written into the source, so manifest
text cannot become code. Templates that need Jinja are called as objects passed in, never
inlined. Tests check the output equals the straightforward path (`CompiledTemplate.render`
and `connectly_declare.entry.fingerprint`) on arbitrary values.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any

from connectly_declare.entry import Entry
from connectly_declare.templates.compiled import CompiledTemplate

_encode = json.encoder.encode_basestring  # what json.dumps(ensure_ascii=False) uses

# (client, data, source) -> Entry; with per_entry_time, also (scheduled_at, the time
# hashed into the fingerprint, zone, timing bits): see connectly_declare.policy.timing
EntryMaker = Callable[..., Entry]

_ENTRY_FIELDS = ("sendout", "campaign", "version", "client", "variables", "scheduled_at",
                 "round", "allow_multiple", "fingerprint", "source", "zone", "timing")
_FAST_NEW = (
    tuple(f.name for f in dataclasses.fields(Entry)) == _ENTRY_FIELDS
    and not hasattr(Entry, "__post_init__")
    and getattr(Entry, "__slots__", None) is not None
)
_SETTERS = [getattr(Entry, name).__set__ for name in _ENTRY_FIELDS] if _FAST_NEW else []


class MissingField(Exception):
    """A template names a column the source does not have (raised when building)."""


def _field_expr(name: str, header: Sequence[str] | None) -> str:
    if name == "client":
        return "c"
    if header is None:
        return f"_str(d[{name!r}])"  # Jinja renders a value with str()
    if name not in header:
        raise MissingField(name)
    return f"d[{header.index(name)}]"  # a CSV cell is already a str


def _value_expr(t: CompiledTemplate, index: int, header: Sequence[str] | None) -> str:
    if t.kind == "constant":
        return repr(t.constant)
    if t.kind == "jinja":
        return f"_t{index}(_fields(c, d), src)"
    pieces = [_field_expr(text, header) if is_field else repr(text)
              for is_field, text in t.parts if is_field or text]
    return " + ".join(pieces) if pieces else "''"


def build_maker(
    templates: Sequence[CompiledTemplate],
    *,
    sendout: str,
    campaign: str,
    version: str | None,
    scheduled_at: str | None,
    round_: int,
    allow_multiple: bool,
    header: Sequence[str] | None,
    as_fields: Callable[[str, Any], dict[str, Any]],
    per_entry_time: bool = False,
) -> EntryMaker:
    """The entry function for recipients whose data is a row of `header` columns (a CSV
    layout) or, with `header` None, a dict of fields. `templates` sorted by variable name.
    Raises :class:`MissingField` when a plain field template names a missing column.
    With `per_entry_time` the function takes (client, data, source, scheduled_at,
    fingerprint_at, zone, timing) and `scheduled_at` above is not used."""
    names = [t.variable for t in templates]
    if names != sorted(names):
        raise ValueError("templates must be sorted by variable name")
    dumps = json.dumps
    prefix = "[" + dumps(version, ensure_ascii=False) + ",["
    suffix = "]," + dumps(scheduled_at, ensure_ascii=False) + "," + dumps(round_) + "]"
    lines = ["def make(c, d, src):"]
    if per_entry_time:
        lines = ["def make(c, d, src, w, fw, z, tf):"]
    # The canonical text: prefix, then ["name",value] pairs joined by ",", then suffix,
    # exactly as entry.fingerprint's json.dumps writes it.
    text_parts: list[str] = []
    literal = prefix
    for i, t in enumerate(templates):
        lines.append(f"    v{i} = {_value_expr(t, i, header)}")
        literal += ("," if i else "") + "[" + _encode(t.variable) + ","
        if t.kind == "constant":
            literal += _encode(t.constant) + "]"
        else:
            text_parts.append(repr(literal))
            text_parts.append(f"_enc(v{i})")
            literal = "]"
    if per_entry_time:
        literal += "],"
        text_parts.append(repr(literal))
        text_parts.append("(_enc(fw) if fw is not None else 'null')")
        literal = "," + dumps(round_) + "]"
    else:
        literal += suffix
    text_parts.append(repr(literal))
    variables = "{" + ", ".join(f"{n!r}: v{i}" for i, n in enumerate(names)) + "}"
    # Copying a fresh blake2b(digest_size=16) skips parsing the keyword for every entry.
    lines.append("    h = _b2()")
    lines.append(f"    h.update(({' + '.join(text_parts)}).encode())")
    lines.append("    fp = h.hexdigest()")
    if _FAST_NEW:
        # Entry's own __init__ costs ten object.__setattr__ calls (it is frozen); the slot
        # descriptors set the same attributes at half the cost. Only taken while Entry has
        # exactly these fields and no __post_init__ (checked at import; a test compares).
        lines.append("    e = _new(_Entry)")
        when, zone, timing = ("w", "z", "tf") if per_entry_time else ("_when", "''", "0")
        values = ["_sendout", "_campaign", "_version", "c", variables, when, "_round",
                  "_multiple", "fp", "src", zone, timing]
        lines.extend(f"    _s{i}(e, {v})" for i, v in enumerate(values))
        lines.append("    return e")
    else:
        when, zone, timing = ("w", "z", "tf") if per_entry_time else ("_when", "''", "0")
        lines.append(f"    return _Entry(_sendout, _campaign, _version, c, {variables}, {when}, "
                     f"_round, _multiple, fp, src, {zone}, {timing})")
    namespace: dict[str, Any] = {
        "_Entry": Entry, "_b2": hashlib.blake2b(digest_size=16).copy, "_enc": _encode,
        "_str": str,
        "_fields": as_fields, "_sendout": sendout, "_campaign": campaign,
        "_version": version, "_when": scheduled_at, "_round": round_,
        "_multiple": allow_multiple,
        **{f"_t{i}": t.render for i, t in enumerate(templates)},
        "_new": object.__new__,
        **{f"_s{i}": s for i, s in enumerate(_SETTERS)},
    }
    code = compile("\n".join(lines), f"<entries of sendout {sendout}>", "exec")
    exec(code, namespace)
    maker: EntryMaker = namespace["make"]
    return maker


__all__ = ["EntryMaker", "MissingField", "build_maker"]
