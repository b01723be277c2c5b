"""Reading one audience source (CSV, JSON Lines or inline) into normalised recipients.

Every problem is located: a data file's problems at `FILE:ROW` (CSV rows are numbered by
the line they start on, the header being line 1, so a row after a quoted newline still
points where an editor shows it; JSON Lines by line), with the manifest line that names
the file in the message. Invalid phone numbers are errors unless the source says
`on_invalid: skip`, which counts and reports them instead.

The CSV loop is the hot path of a million-row audience: it uses `csv.reader` (not
`DictReader`), zips one dict per row from a header read once, and asks
:func:`connectly_declare.audience.phones.fast_e164` before the full `phonenumbers` parse.
"""

from __future__ import annotations

import codecs
import csv
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connectly_declare.audience.phones import InvalidPhone, fast_e164, normalize
from connectly_declare.errors import DeclareError, Location, Problem
from connectly_declare.workspace.manifests import CsvSource, InlineSource, JsonlSource

PHONE_COLUMNS = ("phone", "client")
SNIFF_BYTES = 8 * 1024  # csv.Sniffer is slow; the first lines decide
SNIFF_DELIMITERS = ",;\t|"
MAX_SKIP_SAMPLES = 20
_CHUNK = 1 << 20
MAX_JSONL_LINE = 1 << 20  # characters; one recipient never needs more


class Recipient:
    """One person: E.164 `client`, the source's `fields` (every column, plus `client`
    replaced by the E.164 form) and `source`, the row it came from (`data/vip.csv:12`)."""

    __slots__ = ("client", "fields", "source")

    def __init__(self, client: str, fields: dict[str, Any], source: str) -> None:
        self.client = client
        self.fields = fields
        self.source = source

    def __repr__(self) -> str:
        return f"Recipient(source={self.source!r})"


# The internal stream between sources, audiences and entries: (client, data, source,
# header). A CSV row stays the list the csv module made (`header` is its column names) so
# the million-row path builds no dict per row; other sources give a dict (`header` None)
# that already holds `client`. `as_fields` makes the dict a template or filter sees.
Raw = tuple[str, Any, str, "tuple[str, ...] | None"]


def as_fields(raw: Raw) -> dict[str, Any]:
    """The recipient's fields: every column, with `client` replaced by the E.164 form."""
    client, data, _, header = raw
    if header is None:
        return data  # type: ignore[no-any-return]
    fields = dict(zip(header, data, strict=True))
    fields["client"] = client
    return fields


def as_recipient(raw: Raw) -> Recipient:
    return Recipient(raw[0], as_fields(raw), raw[2])


@dataclass
class SourceCounts:
    """Counters of one source (or nested audience)."""

    read: int = 0
    invalid_skipped: int = 0


@dataclass
class SkipLog:
    """Invalid numbers skipped under `on_invalid: skip`: a count and the first few, located.

    With `errors` set (a data check: `validate --data`, a failed plan's report), an invalid
    number that would stop the run is recorded there instead and its row skipped, so one
    run reports every invalid number, not only the first."""

    count: int = 0
    samples: list[Problem] = field(default_factory=list)
    errors: Callable[[Problem], None] | None = None

    def add(self, problem: Problem) -> None:
        self.count += 1
        if len(self.samples) < MAX_SKIP_SAMPLES:
            self.samples.append(problem)


@dataclass(frozen=True)
class SourceContext:
    """What reading a source needs besides the source itself."""

    label: str  # the file as written (`data/vip.csv`) or `inline`
    path: Path | None  # the resolved file
    where: Location  # the manifest node naming the source
    region: str | None
    counts: SourceCounts
    skips: SkipLog
    locate_item: Callable[[int], Location] = lambda i: Location()


def _hint_skip(where: Location) -> str:
    return f"fix it, or add on_invalid: skip to the source at {where} to skip invalid numbers"


def _prescan(ctx: SourceContext, *, needs_header: bool) -> None:
    """Reject a NUL byte, non-UTF-8 bytes or (for a CSV, which needs its header row) an
    empty file before reading rows, naming the line; one pass in 1 MiB chunks, so memory
    stays flat. An empty JSON Lines file is simply no one (an empty opt-out list)."""
    assert ctx.path is not None
    decoder = codecs.getincrementaldecoder("utf-8")()
    lines_before = 1
    seen_text = False
    with ctx.path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            nul = chunk.find(b"\x00")
            if nul >= 0:
                line = lines_before + chunk.count(b"\n", 0, nul)
                raise DeclareError("contains a NUL byte: not a text file",
                                   location=Location(ctx.label, line),
                                   hint=f"export it as UTF-8 CSV/JSON Lines (named at {ctx.where})")
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                line = lines_before + chunk.count(b"\n", 0, exc.start)
                raise DeclareError("is not UTF-8 text",
                                   location=Location(ctx.label, line),
                                   hint=f"save it as UTF-8 (named at {ctx.where})") from None
            seen_text = seen_text or bool(chunk.lstrip(b"\xef\xbb\xbf \t\r\n"))
            lines_before += chunk.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise DeclareError("is not UTF-8 text (truncated at the end)",
                               location=Location(ctx.label, lines_before),
                               hint=f"save it as UTF-8 (named at {ctx.where})") from None
    if needs_header and not seen_text:
        raise DeclareError("is empty", location=Location(ctx.label),
                           hint=f"a CSV needs a header row; the file is named at {ctx.where}")


def _normalize(raw: str, ctx: SourceContext, at: Location, on_invalid: str) -> str | None:
    try:
        return normalize(raw, ctx.region)
    except InvalidPhone as exc:
        message = f"invalid phone number: {exc.reason}"
        if on_invalid == "skip":
            ctx.skips.add(Problem(at, message))
            ctx.counts.invalid_skipped += 1
            return None
        if ctx.skips.errors is not None:
            ctx.skips.errors(Problem(at, message, _hint_skip(ctx.where)))
            return None
        raise DeclareError(message, location=at, hint=_hint_skip(ctx.where)) from None


def _sniff(fh: Any, given: str | None) -> tuple[str, bool]:
    if given is not None:
        return given, False
    sample = fh.read(SNIFF_BYTES)
    fh.seek(0)
    first_line = sample.split("\n", 1)[0]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=SNIFF_DELIMITERS)
        delimiter = str(dialect.delimiter)
    except csv.Error:
        delimiter = ","
    # The sniffer guesses from the whole sample; a header line is the clearest evidence.
    if delimiter not in first_line:
        counts = {d: first_line.count(d) for d in SNIFF_DELIMITERS}
        best = max(counts, key=lambda d: counts[d])
        delimiter = best if counts[best] else ","
    return delimiter, True


def read_csv(source: CsvSource, ctx: SourceContext) -> Iterator[Raw]:
    """The recipients of a CSV source, in file order."""
    _prescan(ctx, needs_header=True)
    assert ctx.path is not None
    label = ctx.label
    with ctx.path.open("r", encoding="utf-8-sig", newline="") as fh:
        delimiter, sniffed = _sniff(fh, source.delimiter)
        reader = csv.reader(fh, delimiter=delimiter, strict=True)
        header: list[str] = []
        try:
            while not any(h.strip() for h in header):  # blank lines before the header
                header = next(reader)
        except (StopIteration, csv.Error) as exc:
            raise DeclareError(f"cannot read the header row: {exc or 'no header'}",
                               location=Location(label, reader.line_num or 1)) from None
        header = [h.strip() for h in header]
        phone_index = _phone_column(header, source, ctx, delimiter, sniffed, reader.line_num)
        columns = tuple(header)
        width = len(header)
        on_invalid, counts = source.on_invalid, ctx.counts
        last_line = reader.line_num
        try:
            for row in reader:
                line = last_line + 1
                last_line = reader.line_num
                if len(row) != width or not row[phone_index].strip():
                    if not any(cell.strip() for cell in row):
                        continue  # a blank line, or a spreadsheet's empty row `,,,`
                if len(row) != width:
                    raise DeclareError(
                        f"row has {len(row)} fields, the header has {width}",
                        location=Location(label, line),
                        hint=f"quote fields that contain {delimiter!r}, or fix the row")
                counts.read += 1
                raw = row[phone_index]
                client = fast_e164(raw)
                if client is None:
                    client = _normalize(raw, ctx, Location(label, line), on_invalid)
                    if client is None:
                        continue
                yield client, row, f"{label}:{line}", columns
        except csv.Error as exc:
            raise DeclareError(f"malformed CSV: {exc}", location=Location(label, last_line + 1),
                               hint="check the quoting of this row") from None


def _phone_column(header: list[str], source: CsvSource, ctx: SourceContext,
                  delimiter: str, sniffed: bool, line: int) -> int:
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise DeclareError(f"the header names column {name!r} twice",
                               location=Location(ctx.label, line),
                               hint="give every column a distinct name")
        seen.add(name)
    wanted = [source.phone_column] if source.phone_column else list(PHONE_COLUMNS)
    for name in wanted:
        if name in header:
            return header.index(name)
    if not source.phone_column:
        # Spreadsheets capitalise headers: `Phone` is the default column too.
        for name in wanted:
            matches = [i for i, h in enumerate(header) if h.casefold() == name]
            if len(matches) == 1:
                return matches[0]
    how = f"sniffed delimiter {delimiter!r}" if sniffed else f"delimiter {delimiter!r}"
    raise DeclareError(
        f"no phone column {' or '.join(repr(w) for w in wanted)} in the header "
        f"(columns: {', '.join(header[:10])}; {how})",
        location=Location(ctx.label, line),
        hint=f"name the column with phone_column: (or set delimiter:) at {ctx.where}",
    )


# The file is valid UTF-8 (pre-scanned), so a lone surrogate can only come from a JSON
# escape such as "\ud800": JSON allows it, but it is not text (no output can encode it).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _refuse_lone_surrogates(obj: dict[str, Any], at: Location) -> None:
    try:
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(exc.object[exc.start])
        raise DeclareError(
            f"bad JSON: a lone surrogate \\u{code:04x} in a string is not valid Unicode text",
            location=at, hint="write the character itself, or a complete surrogate pair "
                              "(\\ud83d\\ude00)") from None


def read_jsonl(source: JsonlSource, ctx: SourceContext) -> Iterator[Raw]:
    """The recipients of a JSON Lines source, in file order; blank lines are ignored."""
    _prescan(ctx, needs_header=False)
    assert ctx.path is not None
    label = ctx.label
    wanted = [source.phone_field] if source.phone_field else list(PHONE_COLUMNS)
    with ctx.path.open("r", encoding="utf-8-sig", newline=None) as fh:
        # readline with a limit: a 50 MB line is refused without being read whole
        # (SECURITY.md, "Audience data"); the CSV reader has its own field size limit.
        for number, text in enumerate(iter(lambda: fh.readline(MAX_JSONL_LINE + 1), ""),
                                      start=1):
            if len(text) > MAX_JSONL_LINE:
                raise DeclareError("line is longer than 1 MiB", location=Location(label, number),
                                   hint="each line must be one JSON object of at most 1 MiB")
            if not text.strip():
                continue
            at = Location(label, number)
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                raise DeclareError(f"bad JSON: {exc.msg} (column {exc.colno})", location=at,
                                   hint="each line must be one JSON object") from None
            except RecursionError:
                raise DeclareError("bad JSON: nested too deeply", location=at,
                                   hint="each line must be one JSON object") from None
            except ValueError:  # an integer past CPython's 4,300-digit conversion limit
                raise DeclareError("bad JSON: a number with more than 4,300 digits",
                                   location=at, hint="each line must be one JSON object") from None
            if not isinstance(obj, dict):
                raise DeclareError(f"expected a JSON object, found {type(obj).__name__}",
                                   location=at, hint="each line must be one JSON object")
            if _SURROGATE_ESCAPE.search(text) is not None:
                _refuse_lone_surrogates(obj, at)
            ctx.counts.read += 1
            raw = next((obj[w] for w in wanted if w in obj), None)
            if raw is None:
                raise DeclareError(f"no {' or '.join(repr(w) for w in wanted)} field",
                                   location=at,
                                   hint=f"add it, or name the field with phone_field: at "
                                        f"{ctx.where}")
            if isinstance(raw, bool) or not isinstance(raw, str | int):
                raise DeclareError(f"the phone number is a JSON {type(raw).__name__}, "
                                   "expected a string", location=at)
            client = _normalize(str(raw), ctx, at, source.on_invalid)
            if client is None:
                continue
            obj["client"] = client
            yield client, obj, f"{label}:{number}", None


def read_inline(source: InlineSource, ctx: SourceContext) -> Iterator[Raw]:
    """The recipients written in the manifest; each is located at its manifest line."""
    for index, item in enumerate(source.inline):
        at = ctx.locate_item(index)
        ctx.counts.read += 1
        if isinstance(item, str):
            raw: Any = item
            fields: dict[str, Any] = {}
        else:
            fields = dict(item)
            raw = fields.get("client", fields.get("phone"))
            if raw is None:
                raise DeclareError("an inline recipient needs a client (its phone number)",
                                   location=at, hint="write client: '+16505551234'")
            if isinstance(raw, bool) or not isinstance(raw, str | int):
                raise DeclareError("client must be a phone number string", location=at,
                                   hint="quote it: client: '+16505551234'")
        client = _normalize(str(raw), ctx, at, source.on_invalid)
        if client is None:
            continue
        fields["client"] = client
        yield client, fields, str(at) or "inline", None


__all__ = [
    "PHONE_COLUMNS",
    "Raw",
    "Recipient",
    "SkipLog",
    "SourceContext",
    "SourceCounts",
    "as_fields",
    "as_recipient",
    "read_csv",
    "read_inline",
    "read_jsonl",
]
