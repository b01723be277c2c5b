"""Pydantic's validation errors as short located lines: ``FILE:LINE:COL: path.to.field: message``.

Pydantic reports union branches and discriminator tags inside an error's location
(``('audience', 'AudienceSpec', 'sources', 0, 'csv', 'regon')``). Walking that location
against the document's data separates the real path from the tags; of a plain union's
branches only those matching the value's type are kept (``audience: "bad name"`` is about
the name pattern, not about "should be a mapping"), and when none match, one "expected X
or Y, got Z" line replaces them all.
"""

from __future__ import annotations

import difflib
import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from connectly_declare.errors import Problem
from connectly_declare.workspace.config import ENV_VAR_PATTERN, WorkspaceConfig
from connectly_declare.workspace.manifests import NAME_PATTERN, VARIABLE_PATTERN
from connectly_declare.workspace.yamlmarks import Document, YamlPath, dotted, type_name

_SOURCE_TAGS = frozenset({"csv", "jsonl", "inline", "audience"})
_PATTERNS = {
    NAME_PATTERN: "must be a name of letters, digits, '.', '_' or '-' "
                  "(starting with a letter or digit, at most 128)",
    VARIABLE_PATTERN: "must be a variable name: letters, digits and '_', "
                      "not starting with a digit",
    r"^[A-Z]{2}$": "must be a two-letter region code in capitals, e.g. US or GB",
}
_ENV_VAR_RULE = "must be an environment variable name: letters, digits and '_'"
_WANTED = {"str": "text", "constrained-str": "text", "int": "a number",
           "float": "a number", "bool": "true/false", "none": "null"}
_WANTED_ORDER = ("text", "a number", "true/false", "null", "a list", "a mapping")
_SCHEDULE_HINT = "write e.g. 2027-03-01T09:00:00+01:00 or 2027-03-01T08:00:00Z"


Union_ = tuple[YamlPath, str, Any]  # where a union tag sits, the tag, the value there


def _walk(error: ErrorDetails, data: Any) -> tuple[YamlPath, list[Union_]]:
    """The real path of an error in `data`, and the union branches its location passes."""
    loc = error["loc"]
    path: YamlPath = ()
    current = data
    unions: list[Union_] = []
    for i, item in enumerate(loc):
        # A source's discriminator tag comes right after its list index.
        at_source = (i > 0 and isinstance(loc[i - 1], int) and len(path) >= 2
                     and path[-2] in ("sources", "exclude") and item in _SOURCE_TAGS)
        if isinstance(current, dict) and isinstance(item, str) and item in current \
                and not at_source:
            path, current = (*path, item), current[item]
        elif isinstance(current, list) and isinstance(item, int) and 0 <= item < len(current):
            path, current = (*path, item), current[item]
        elif i == len(loc) - 1 and error["type"] == "missing":
            path, current = (*path, item), None
        elif item == "[key]":
            continue  # a dict key failed (e.g. `variables: {first-name: ...}`): see _problem
        elif not at_source:
            unions.append((path, str(item), current))
    return path, unions


def _branch_fits(tag: str, value: Any) -> bool:
    if tag in ("str", "constrained-str"):
        return isinstance(value, str)
    if tag == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if tag == "float":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if tag == "bool":
        return isinstance(value, bool)
    if tag == "none":
        return value is None
    if tag.startswith("list["):
        return isinstance(value, list)
    return isinstance(value, dict)  # dict[...] or a model's class name


def _wanted(tag: str) -> str:
    if tag in _WANTED:
        return _WANTED[tag]
    return "a list" if tag.startswith("list[") else "a mapping"


Walked = tuple[ErrorDetails, YamlPath, list[Union_]]


def translate(err: ValidationError, doc: Document, model: type[BaseModel]) -> list[Problem]:
    """One located problem per distinct mistake in `err`, which validated `doc.data`."""
    walked = [(e, *_walk(e, doc.data)) for e in err.errors()]
    return [_problem(e, path, doc, model) if not isinstance(e, Problem) else e
            for e, path in _prune(walked, 0, doc)]


def _prune(walked: list[Walked], level: int,
           doc: Document) -> list[tuple[ErrorDetails | Problem, YamlPath]]:
    """Keep, at each union point (outermost first), only the branches that fit the value."""
    out: list[tuple[ErrorDetails | Problem, YamlPath]] = []
    groups: dict[YamlPath, list[Walked]] = {}
    for item in walked:
        if len(item[2]) > level:
            groups.setdefault(item[2][level][0], []).append(item)
        else:
            out.append((item[0], item[1]))
    for at, group in groups.items():
        tags = {unions[level][1] for _e, _p, unions in group}
        value = group[0][2][level][2]
        fitting = {t for t in tags if _branch_fits(t, value)} if len(tags) > 1 else tags
        if not fitting:
            names = {_wanted(t) for t in tags}
            ordered = [w for w in _WANTED_ORDER if w in names]
            wanted = ", ".join(ordered[:-1]) + " or " + ordered[-1] \
                if len(ordered) > 1 else ordered[0]
            out.append((Problem(doc.location(doc.mark(at)),
                                f"{dotted(at) or 'document'}: expected {wanted}, "
                                f"got {type_name(value)}"), at))
            continue
        out.extend(_prune([g for g in group if g[2][level][1] in fitting], level + 1, doc))
    return out


def _problem(error: ErrorDetails, path: YamlPath, doc: Document,
             model: type[BaseModel]) -> Problem:
    kind = error["type"]
    where = dotted(path) or "document"
    if kind == "missing":
        return Problem(doc.location(doc.mark(path[:-1])), f"{where}: required field is missing")
    if kind == "extra_forbidden":
        allowed = _allowed_fields(model, error["loc"][:-1])
        key = str(path[-1]) if path else ""
        close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
        if close:
            hint = f"did you mean {close[0]!r}?"
        elif allowed:
            hint = "expected one of: " + ", ".join(allowed)
        else:
            hint = ""
        return Problem(doc.location(doc.key_mark(path)), f"{where}: unknown field", hint)
    if kind == "source_kind" and isinstance(error.get("input"), dict):
        # `- cvs: data/x.csv`: point at the key that was meant to name the source.
        keys = [str(k) for k in error["input"]]
        for key in keys:
            close = difflib.get_close_matches(key, sorted(_SOURCE_TAGS), n=1, cutoff=0.6)
            if close:
                return Problem(doc.location(doc.key_mark((*path, key))),
                               f"{where}: {error['msg']}", f"did you mean {close[0]!r}?")
    message = _message(error, model)
    if "[key]" in error["loc"]:
        return Problem(doc.location(doc.key_mark(path)), f"{where}: key {message}")
    if not path:  # a whole-model rule, e.g. "give business_id or business_id_env, not both"
        return Problem(doc.location(doc.start), message)
    return Problem(doc.location(doc.mark(path)), f"{where}: {message}")


def _shown(value: Any) -> str:
    """A value quoted in a message, cut short: it comes from an untrusted file."""
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:60]}... ({len(text)} characters)"


def _message(error: ErrorDetails, model: type[BaseModel]) -> str:
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    if kind == "literal_error":
        return f"{_shown(value)} is not allowed; expected {ctx.get('expected')}"
    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern"))
        if pattern == ENV_VAR_PATTERN and model is WorkspaceConfig:
            # `api_key_env: sk-live-...` is the classic mistake: never echo it.
            return f"{_ENV_VAR_RULE} (the value is not shown: it may be a secret)"
        return f"{_PATTERNS.get(pattern, f'must match {pattern}')}, got {_shown(value)}"
    if kind == "timezone_aware":
        return f"needs a time zone offset, got {_shown(value)}; {_SCHEDULE_HINT}"
    if kind.startswith(("datetime_", "date_")):
        return f"not an ISO 8601 date and time: {_shown(value)}; {_SCHEDULE_HINT}"
    if kind in ("string_type", "int_type", "float_type", "bool_type", "dict_type",
                "list_type", "model_type", "model_attributes_type"):
        wanted = {"string_type": "text", "int_type": "a whole number",
                  "float_type": "a number", "bool_type": "true or false",
                  "list_type": "a list"}.get(kind, "a mapping")
        return f"expected {wanted}, got {type_name(value)}"
    message = error["msg"]
    if kind in ("less_than", "less_than_equal", "greater_than", "greater_than_equal",
                "too_short", "too_long", "string_too_short", "string_too_long"):
        message += f", got {_shown(value)}" if not isinstance(value, list | dict) else ""
    if message.startswith("Value error, "):
        message = message[len("Value error, "):]
    return message[:1].lower() + message[1:]


# --- the fields a model allows at a location (for "did you mean") ----------------------


def _members(tp: Any) -> list[tuple[str | None, Any]]:
    """(Tag name or None, type) of each branch of a (possibly annotated) union."""
    origin = get_origin(tp)
    if origin is Annotated:
        inner, *meta = get_args(tp)
        tags = [getattr(m, "tag", None) for m in meta if type(m).__name__ == "Tag"]
        return [(tags[0] if tags else t, m) for t, m in _members(inner)] if tags \
            else _members(inner)
    if origin in (Union, types.UnionType):
        return [member for arg in get_args(tp) for member in _members(arg)]
    return [(None, tp)]


def _literal_values(model: type[BaseModel]) -> set[str]:
    values: set[str] = set()
    for info in model.model_fields.values():
        if get_origin(info.annotation) is Literal:
            values.update(str(v) for v in get_args(info.annotation))
    return values


def _step(tp: Any, item: str | int) -> Any:
    members = _members(tp)
    models = [(tag, m) for tag, m in members if isinstance(m, type) and issubclass(m, BaseModel)]
    if len(members) > 1 and isinstance(item, str):
        for tag, m in members:
            is_model = isinstance(m, type) and issubclass(m, BaseModel)
            if item == tag or (is_model and (item == m.__name__ or item in _literal_values(m))):
                return m
    for _tag, m in models:
        for name, info in m.model_fields.items():
            if item in (name, info.alias):
                return info.annotation
    for _tag, m in members:
        if get_origin(m) is list and isinstance(item, int):
            return get_args(m)[0]
        if get_origin(m) is dict and isinstance(item, str):
            return get_args(m)[1]
    return None


def _allowed_fields(model: type[BaseModel], loc: tuple[str | int, ...]) -> list[str]:
    current: Any = model
    for item in loc:
        current = _step(current, item)
        if current is None:
            return []
    for _tag, m in _members(current):
        if isinstance(m, type) and issubclass(m, BaseModel):
            return [info.alias or name for name, info in m.model_fields.items()]
    return []


__all__ = ["translate"]
