"""Safe YAML that remembers where every value came from.

PyYAML composes the node tree (in C when libyaml is available: the benchmark's 2,000 files
must validate in well under 2 s), and this module builds plain Python data from it while
recording the line and column of every node, so any later problem (a pydantic error, an
unknown reference, a template that does not parse) can be reported as FILE:LINE:COL.

Deliberate departures from PyYAML's YAML 1.1 defaults, because manifests hold phone
numbers, schedules and template variables, and a silent conversion there messages the
wrong thing:

- Only ``true``/``false`` (any case) are booleans. ``yes``/``no``/``on``/``off``/``y``/``n``
  stay strings (YAML 1.2 agrees), so ``vars: {answer: no}`` renders "no", not "False".
- Dates and times stay strings, so a schedule without a time zone is reported as such
  instead of being silently read as a naive datetime.
- A plain scalar with a leading ``+`` or ``0`` (``+16505550123``, ``02134``) stays a string:
  those are phone numbers and postcodes, never quantities. So do sexagesimal ``12:30``,
  ``0x1F``, ``1_000`` and friends. Plain decimal integers and floats are numbers.
- A key written twice in one mapping is an error (PyYAML silently keeps the last one).
- Aliases (``*name``) are refused: a reviewed diff should show every value written out, and
  it stops alias bombs ("billion laughs") before they expand.
- Custom tags (``!!python/...``, ``!!binary``, ``!!set``, ``!foo``) are refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import yaml

from connectly_declare.errors import Location, Problem

try:  # libyaml makes composing ~10x faster; fall back to pure Python where it is missing
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

YamlPath = tuple[str | int, ...]

MAX_DEPTH = 64
MAX_FILE_BYTES = 5_000_000

_TAG = "tag:yaml.org,2002:"
_STR, _MAP, _SEQ = _TAG + "str", _TAG + "map", _TAG + "seq"
_IMPLICIT = {_TAG + t for t in ("null", "bool", "int", "float", "timestamp", "str")}
_INT = re.compile(r"-?(?:0|[1-9][0-9]*)\Z")
_FLOAT = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?\Z")
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_TRUE = frozenset({"true", "True", "TRUE"})
_FALSE = frozenset({"false", "False", "FALSE"})


class Mark(NamedTuple):
    """A 1-based line and column."""

    line: int
    col: int


@dataclass(frozen=True)
class Document:
    """One ``---`` document of a file: its data, and its node tree for marks.

    Marks are looked up on demand (only problems and `Workspace.location` need them), so
    loading a valid workspace never pays for them."""

    file: str
    index: int  # 0-based position of the document in its file
    data: Any
    root: yaml.Node = field(repr=False, compare=False)
    text: str = field(default="", repr=False, compare=False)  # the whole file's text

    @property
    def start(self) -> Mark:
        return _mark(self.root)

    def _walk(self, path: YamlPath) -> tuple[yaml.Node, yaml.Node | None, int]:
        """(deepest node found along `path`, its key node, how many steps were found)."""
        node, key_node, found = self.root, None, 0
        for part in path:
            child: tuple[yaml.Node | None, yaml.Node] | None = None
            if isinstance(node, yaml.MappingNode) and isinstance(part, str):
                child = next(((k, v) for k, v in node.value
                              if isinstance(k, yaml.ScalarNode) and k.value == part), None)
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) \
                    and 0 <= part < len(node.value):
                child = (None, node.value[part])
            if child is None:
                break
            key_node, node = child
            found += 1
        return node, key_node, found

    def has(self, path: YamlPath) -> bool:
        return self._walk(path)[2] == len(path)

    def mark(self, path: YamlPath) -> Mark:
        """The mark of the node at `path`, or of its deepest ancestor that exists."""
        return _mark(self._walk(path)[0])

    def key_mark(self, path: YamlPath) -> Mark:
        """The mark of the key naming `path` (the value's mark for list items)."""
        node, key_node, found = self._walk(path)
        if found == len(path) and key_node is not None:
            return _mark(key_node)
        return _mark(node)

    def is_block_scalar(self, path: YamlPath) -> bool:
        """Whether `path` is a literal `|` block: its text starts a line below the key and
        keeps its lines, so line N of the text is line N of the block (a folded `>` block
        joins lines, so its text lines do not map back)."""
        node, _key, found = self._walk(path)
        return found == len(path) and isinstance(node, yaml.ScalarNode) and node.style == "|"

    def location(self, mark: Mark) -> Location:
        return Location(self.file, mark.line, mark.col)


def dotted(path: YamlPath) -> str:
    """`("sources", 0, "csv")` -> `sources[0].csv`, as users read paths in messages."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class _Refused(Exception):
    """A document uses something this loader refuses; carries the message and mark."""

    def __init__(self, message: str, mark: Mark) -> None:
        super().__init__(message)
        self.message = message
        self.mark = mark


def _mark(node: yaml.Node) -> Mark:
    return Mark(node.start_mark.line + 1, node.start_mark.column + 1)


def _scalar(node: yaml.ScalarNode) -> Any:
    value: str = node.value
    if node.tag == _STR:
        return value
    if node.tag not in _IMPLICIT:
        raise _Refused(f"unsupported YAML tag {node.tag!r}: write a plain value", _mark(node))
    if value in _NULLS:
        return None
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    number = _number(value)
    return value if number is None else number


def _number(value: str) -> int | float | None:
    digits = value[1:] if value.startswith("-") else value
    if len(digits) > 1 and digits[0] == "0" and digits[1].isdigit():
        return None  # 0612345678, 02134: identifiers, not quantities
    if _INT.match(value):
        # Past CPython's int/str conversion limit (4,300 digits) int() raises ValueError;
        # such a "number" is no quantity a manifest needs, so it stays text and the model
        # reports it where a number is wanted (SECURITY.md, "Manifests (YAML)").
        return int(value) if len(digits) <= 4000 else None
    if _FLOAT.match(value):
        return float(value)
    if value.lower() in (".inf", "-.inf", ".nan"):
        return float(value.lower().replace(".", ""))
    return None


class _Builder:
    """Turns one composed document into plain data, refusing aliases and odd tags."""

    def __init__(self) -> None:
        self._seen: set[int] = set()
        self.problems: list[tuple[str, Mark]] = []

    def build(self, node: yaml.Node, depth: int) -> Any:
        if id(node) in self._seen:
            # The composer hands out the anchored node again for every alias.
            raise _Refused("alias", _mark(node))
        self._seen.add(id(node))
        if depth > MAX_DEPTH:
            raise _Refused(f"nested more than {MAX_DEPTH} levels deep", _mark(node))
        if isinstance(node, yaml.ScalarNode):
            return _scalar(node)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _SEQ:
                raise _Refused(f"unsupported YAML tag {node.tag!r}", _mark(node))
            return [self.build(item, depth + 1) for item in node.value]
        if isinstance(node, yaml.MappingNode):
            if node.tag != _MAP:
                raise _Refused(f"unsupported YAML tag {node.tag!r}", _mark(node))
            return self._mapping(node, depth)
        raise _Refused("unsupported YAML node", _mark(node))  # pragma: no cover

    def _mapping(self, node: yaml.MappingNode, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        first_key: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            if id(key_node) in self._seen:
                raise _Refused("alias", _mark(key_node))
            self._seen.add(id(key_node))
            if not isinstance(key_node, yaml.ScalarNode):
                raise _Refused("a mapping key must be plain text, not a list or mapping",
                               _mark(key_node))
            key = str(key_node.value)
            if key in first_key:
                self.problems.append((
                    f"duplicate key {key!r} (first at line {_mark(first_key[key]).line}); "
                    "YAML would silently keep only the last one",
                    _mark(key_node),
                ))
                continue
            first_key[key] = key_node
            result[key] = self.build(value_node, depth + 1)
        return result


def _alias_mark(text: str, index: int) -> Mark | None:
    """Where the first alias of document `index` is written (only on the error path)."""
    document = -1
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.DocumentStartEvent):
            document += 1
        elif isinstance(event, yaml.AliasEvent) and document == index \
                and event.start_mark is not None:
            return Mark(event.start_mark.line + 1, event.start_mark.column + 1)
    return None


def decode(raw: bytes, file: str) -> tuple[str | None, list[Problem]]:
    """UTF-8 text of a file (BOM dropped), or a located problem."""
    if len(raw) > MAX_FILE_BYTES:
        return None, [Problem(Location(file, 1, 1),
                              f"file is larger than {MAX_FILE_BYTES // 1_000_000} MB",
                              "keep recipients in CSV or JSON Lines files under data/")]
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return None, [Problem(Location(file, 1, 1), "file is UTF-16 text, not UTF-8",
                              "save it as UTF-8")]
    try:
        return raw.decode("utf-8-sig"), []
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        col = err.start - (raw.rfind(b"\n", 0, err.start) + 1) + 1
        return None, [Problem(
            Location(file, line, col),
            f"file is not UTF-8 text (byte 0x{raw[err.start]:02X})",
            "save it as UTF-8",
        )]


def _documents(text: str) -> Iterator[yaml.Node | None]:
    loader = _Loader(text)
    try:
        while loader.check_node():
            yield loader.get_node()
    finally:
        loader.dispose()


def parse(text: str, file: str) -> tuple[list[Document], list[Problem]]:
    """Every non-empty document of `text`, and the problems of those that are refused.

    A YAML syntax error ends the file (the parser cannot resynchronise), so the documents
    before it are returned along with the error.
    """
    docs: list[Document] = []
    problems: list[Problem] = []
    index = -1
    try:
        for node in _documents(text):
            index += 1
            if node is None or (isinstance(node, yaml.ScalarNode) and node.tag != _STR
                                and node.value in _NULLS):
                continue  # an empty document, e.g. after a trailing `---`
            builder = _Builder()
            try:
                data = builder.build(node, 0)
            except _Refused as refused:
                problems.append(_refused_problem(refused, text, index, file))
                continue
            if builder.problems:
                problems.extend(Problem(Location(file, m.line, m.col), msg)
                                for msg, m in builder.problems)
                continue
            docs.append(Document(file, index, data, node, text))
    except yaml.MarkedYAMLError as err:
        problems.append(_syntax_problem(err, file))
    except yaml.YAMLError as err:  # libyaml reader errors carry no mark
        problems.append(_reader_problem(err, text, file))
    return docs, problems


# What YAML 1.1 allows in a stream (the reader refuses anything else before parsing).
_NOT_PRINTABLE = re.compile(
    "[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _reader_problem(err: yaml.YAMLError, text: str, file: str) -> Problem:
    """A reader error (a raw ESC, BEL, C1 control...) located at the character itself:
    libyaml's error names only an offset, so the character is looked up here."""
    found = _NOT_PRINTABLE.search(text)
    if found is None:
        return Problem(Location(file, 1, 1), f"invalid YAML: {err}")
    start = found.start()
    line = text.count("\n", 0, start) + 1
    col = start - (text.rfind("\n", 0, start) + 1) + 1
    return Problem(Location(file, line, col),
                   f"invalid YAML: control character U+{ord(found.group(0)):04X} is not allowed",
                   "remove it: YAML files hold printable text only")


def _refused_problem(refused: _Refused, text: str, index: int, file: str) -> Problem:
    if refused.message != "alias":
        return Problem(Location(file, refused.mark.line, refused.mark.col), refused.message)
    mark = _alias_mark(text, index) or refused.mark
    return Problem(
        Location(file, mark.line, mark.col),
        "YAML aliases (*name) are not supported",
        "write the value out in full, so a reviewed diff shows it",
    )


def _syntax_problem(err: yaml.MarkedYAMLError, file: str) -> Problem:
    mark = err.problem_mark or err.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    text = f"invalid YAML: {err.problem or 'syntax error'}"
    if err.context and err.context_mark is not None:
        text += f" ({err.context} at line {err.context_mark.line + 1})"
    return Problem(Location(file, line, col), text)


def type_name(value: Any) -> str:
    """What a YAML value is, in the words error messages use ("a mapping", "text")."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    return {dict: "a mapping", list: "a list", str: "text", int: "a number",
            float: "a number"}.get(type(value), type(value).__name__)


__all__ = ["Document", "Mark", "YamlPath", "decode", "dotted", "parse", "type_name"]
