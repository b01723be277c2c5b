"""Audiences: sources -> recipients, normalised to E.164, deduplicated, suppressed, filtered.

Order and rules (each one decides who gets a message, so they are fixed and documented):

1. Sources are read in manifest order, each file top to bottom; another Audience named as
   a source contributes its own final recipients (after its exclusions and filter).
2. Deduplication by E.164: the first occurrence wins and its fields are used; later ones
   are counted in `duplicates_dropped`.
3. Exclusions (same source kinds) are read in full first and compared after
   normalisation, so `+1 650 555 1234` in an opt-out file removes `+16505551234`.
4. The `where` filter (a Jinja expression over `recipient`) keeps those for which it is
   true; it sees the first occurrence's fields.

:func:`resolve_audience` is lazy: it holds only the E.164 numbers seen (a compact
`seen.SeenSet`: past 100,000 numbers it reads up to 16,384 rows ahead to decide them at
once, yielding them in order) and the exclusion set, never the recipients.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path, PureWindowsPath
from typing import Any, Protocol

from connectly_declare.audience.paths import resolve_data_path
from connectly_declare.audience.sources import (
    Raw,
    Recipient,
    SkipLog,
    SourceContext,
    SourceCounts,
    as_fields,
    as_recipient,
    read_csv,
    read_inline,
    read_jsonl,
)
from connectly_declare.errors import DeclareError, Location, Problem
from connectly_declare.seen import SeenSet
from connectly_declare.templates.compiled import TemplateContext, compile_where, make_environment
from connectly_declare.workspace.config import WorkspaceConfig
from connectly_declare.workspace.manifests import (
    Audience,
    AudienceRef,
    AudienceSpec,
    CsvSource,
    InlineSource,
    JsonlSource,
    Sendout,
)

Locate = Callable[..., Location]
Node = tuple[Any, ...]
Source = CsvSource | JsonlSource | InlineSource | AudienceRef
_CLIENT: Callable[[Raw], str] = itemgetter(0)


@dataclass
class AudienceStats:
    """Counters filled while an audience's recipients are consumed.

    `read` counts rows/items read from every source (a nested audience counts its final
    recipients); `yielded` = read - invalid_skipped - duplicates_dropped - excluded -
    filtered_out. `per_source` holds each source's own read / invalid_skipped, keyed by
    its label (`data/vip.csv`, `inline`, `audience:vip`); `skips` the located skips."""

    read: int = 0
    invalid_skipped: int = 0
    duplicates_dropped: int = 0
    excluded: int = 0
    filtered_out: int = 0
    yielded: int = 0
    exclusion_numbers: int = 0
    exclusion_invalid_skipped: int = 0
    per_source: dict[str, SourceCounts] = field(default_factory=dict)
    skips: SkipLog = field(default_factory=SkipLog)

    @property
    def skipped_samples(self) -> list[Problem]:
        return list(self.skips.samples)


@dataclass(frozen=True)
class AudienceInputs:
    """What resolving an audience needs from the workspace."""

    root: Path
    default_region: str | None
    audiences: Mapping[str, Audience]
    locate: Locate  # workspace-style: locate(kind, name, *path) -> Location

    def at(self, *path: Any) -> Location:
        """The manifest location of a node; the nearest known ancestor if the locator does
        not know it (a model built in Python has no file)."""
        for end in range(len(path), 0, -1):
            try:
                return self.locate(*path[:end])
            except (KeyError, IndexError, ValueError, TypeError):
                continue
        return Location()


def source_label(source: Source) -> str:
    if isinstance(source, CsvSource):
        return PureWindowsPath(source.csv).as_posix()
    if isinstance(source, JsonlSource):
        return PureWindowsPath(source.jsonl).as_posix()
    if isinstance(source, InlineSource):
        return "inline"
    return f"audience:{source.audience}"


def _open_source(inputs: AudienceInputs, source: Source, node: Node, stats: AudienceStats,
                 stack: Sequence[str]) -> tuple[Iterator[Raw], SourceCounts]:
    """One source's recipients (not yet deduplicated) and the counts its reader fills.

    Returns the reader itself rather than wrapping it in another generator: at a million
    rows every layer of `yield from` shows. Call :func:`_close_source` once it is
    exhausted."""
    counts = SourceCounts()
    if isinstance(source, AudienceRef):
        return _read_nested(inputs, source, node, stats, counts, stack), counts
    kind = "csv" if isinstance(source, CsvSource) else (
        "jsonl" if isinstance(source, JsonlSource) else "inline")
    where = inputs.at(*node, kind)
    path = None
    if isinstance(source, CsvSource | JsonlSource):
        name = source.csv if isinstance(source, CsvSource) else source.jsonl
        path = resolve_data_path(inputs.root, name, where)
    ctx = SourceContext(
        label=source_label(source), path=path, where=where,
        region=source.region or inputs.default_region,
        counts=counts, skips=stats.skips,
        locate_item=lambda i: inputs.at(*node, "inline", i),
    )
    if isinstance(source, CsvSource):
        return read_csv(source, ctx), counts
    if isinstance(source, JsonlSource):
        return read_jsonl(source, ctx), counts
    return read_inline(source, ctx), counts


def _close_source(source: Source, counts: SourceCounts, stats: AudienceStats) -> None:
    """Add an exhausted source's counts: rows skipped as invalid were read too."""
    total = stats.per_source.setdefault(source_label(source), SourceCounts())
    total.read += counts.read
    total.invalid_skipped += counts.invalid_skipped
    stats.read += counts.invalid_skipped
    stats.invalid_skipped += counts.invalid_skipped


def _read_nested(inputs: AudienceInputs, ref: AudienceRef, node: Node, stats: AudienceStats,
                 counts: SourceCounts, stack: Sequence[str]) -> Iterator[Raw]:
    where = inputs.at(*node, "audience")
    audience = inputs.audiences.get(ref.audience)
    if audience is None:
        known = ", ".join(sorted(inputs.audiences)) or "none"
        raise DeclareError(f"unknown audience {ref.audience!r}", location=where,
                           hint=f"known audiences: {known}")
    if ref.audience in stack:
        cycle = " -> ".join([*stack, ref.audience])
        raise DeclareError(f"audiences include each other: {cycle}", location=where,
                           hint="remove one of the references")
    # The nested audience's own duplicates, exclusions and filter are its business; what
    # it yields and the people it skipped as invalid count here.
    inner = AudienceStats(skips=stats.skips)
    for raw in _resolve(inputs, audience, ("Audience", audience.name), inner,
                        [*stack, ref.audience]):
        counts.read += 1
        yield raw
    counts.invalid_skipped += inner.invalid_skipped


def _exclusions(inputs: AudienceInputs, spec: AudienceSpec, node: Node, stats: AudienceStats,
                stack: Sequence[str]) -> set[str]:
    excluded: set[str] = set()
    scratch = AudienceStats(skips=stats.skips)
    for index, source in enumerate(spec.exclude):
        try:
            reader, counts = _open_source(inputs, source, (*node, "exclude", index), scratch,
                                          stack)
            excluded.update(raw[0] for raw in reader)
        except DeclareError as err:
            _record_or_raise(err, stats)
            continue
        _close_source(source, counts, scratch)
    stats.exclusion_numbers = len(excluded)
    stats.exclusion_invalid_skipped = scratch.invalid_skipped
    return excluded


def _resolve(inputs: AudienceInputs, spec: AudienceSpec, node: Node, stats: AudienceStats,
             stack: Sequence[str]) -> Iterator[Raw]:
    excluded = _exclusions(inputs, spec, node, stats, stack)
    keep = None
    if spec.where is not None:
        empty = TemplateContext.build(vars={}, sendout={}, template_env=(), environ={})
        keep = compile_where(make_environment(), spec.where, inputs.at(*node, "where"), empty)
    # Past 100,000 numbers `seen` decides a chunk of rows at a time, yielded in order; a
    # row failing in its reader still comes after every row before it. (A `where` error
    # in a data check abandons the source mid-chunk: the rows after it count as seen, and
    # a check plans nothing.)
    seen = SeenSet()

    def dropped(raw: Raw) -> None:
        stats.read += 1
        stats.duplicates_dropped += 1

    for index, source in enumerate(spec.sources):
        try:
            reader, counts = _open_source(inputs, source, (*node, "sources", index), stats,
                                          stack)
            for raw in seen.first_occurrences(reader, _CLIENT, dropped):
                stats.read += 1
                client = raw[0]
                if client in excluded:
                    stats.excluded += 1
                    continue
                if keep is not None and not keep(as_fields(raw), raw[2]):
                    stats.filtered_out += 1
                    continue
                stats.yielded += 1
                yield raw
        except DeclareError as err:
            _record_or_raise(err, stats)
            continue
        _close_source(source, counts, stats)


def _record_or_raise(err: DeclareError, stats: AudienceStats) -> None:
    """A data check (`errors` set, entries.check) notes a source's problem and goes on
    with the next source; a plan stops at it."""
    if stats.skips.errors is None:
        raise err
    for problem in err.problems:
        stats.skips.errors(problem)


# Nested audiences are read afresh at every reference, so audiences that each name the next
# one twice (a0 -> a1, a1; a1 -> a2, a2; ...) make 2**depth reads from a few lines of YAML
# (SECURITY.md, "Audience data"). No real audience graph comes near this many nested
# reads per resolution.
MAX_NESTED_READS = 100


def _nested_reads(inputs: AudienceInputs, spec: AudienceSpec, memo: dict[str, int],
                  visiting: set[str]) -> int:
    """How many nested audience reads resolving `spec` makes (cycles are reported when
    they are reached; here they count once)."""
    total = 0
    for source in (*spec.sources, *spec.exclude):
        if not isinstance(source, AudienceRef):
            continue
        name = source.audience
        if name not in memo:
            nested = inputs.audiences.get(name)
            if nested is None or name in visiting:
                memo[name] = 1
            else:
                visiting.add(name)
                memo[name] = 1 + _nested_reads(inputs, nested, memo, visiting)
                visiting.discard(name)
        total += memo[name]
        if total > MAX_NESTED_READS:
            break  # enough to refuse; the exact count can be astronomical
    return total


def _check_nesting(inputs: AudienceInputs, spec: AudienceSpec, where: Location) -> None:
    reads = _nested_reads(inputs, spec, {}, set())
    if reads > MAX_NESTED_READS:
        raise DeclareError(
            f"this audience reads nested audiences more than {MAX_NESTED_READS} times "
            "(audiences that name the same audience several times multiply)",
            location=where, hint="name each nested audience once, or list the sources directly")


def resolve_raw(inputs: AudienceInputs, spec: AudienceSpec | str, *,
                node: Node | None = None, stats: AudienceStats | None = None) -> Iterator[Raw]:
    """:func:`resolve_audience` as the internal (client, data, source, header) stream."""
    stats = stats if stats is not None else AudienceStats()
    if isinstance(spec, str):
        audience = inputs.audiences.get(spec)
        if audience is None:
            where = inputs.at(*node) if node else Location()
            known = ", ".join(sorted(inputs.audiences)) or "none"
            raise DeclareError(f"unknown audience {spec!r}", location=where,
                               hint=f"known audiences: {known}")
        _check_nesting(inputs, audience, inputs.at("Audience", spec))
        return _resolve(inputs, audience, ("Audience", spec), stats, [spec])
    if node is None:
        node = ("Audience", spec.name) if isinstance(spec, Audience) else ()
    _check_nesting(inputs, spec, inputs.at(*node))
    stack = [spec.name] if isinstance(spec, Audience) else []
    return _resolve(inputs, spec, node, stats, stack)


def resolve_audience(inputs: AudienceInputs, spec: AudienceSpec | str, *,
                     node: Node | None = None,
                     stats: AudienceStats | None = None) -> Iterator[Recipient]:
    """Lazily the recipients of `spec`: an Audience name, an Audience, or a Sendout's
    inline audience located at `node` (e.g. ("Sendout", "spring", "audience")).

    Raises :class:`DeclareError` on the first problem, located at the data row (CSV row /
    JSON line / manifest line of an inline recipient) and naming the manifest line that
    refers to the file; `stats` is filled as the iterator is consumed."""
    return map(as_recipient, resolve_raw(inputs, spec, node=node, stats=stats))


class WorkspaceLike(Protocol):
    """The parts of `connectly_declare.workspace.load.Workspace` audiences and entries need."""

    @property
    def root(self) -> Path: ...
    @property
    def config(self) -> WorkspaceConfig: ...
    @property
    def audiences(self) -> Mapping[str, Audience]: ...
    @property
    def sendouts(self) -> Mapping[str, Sendout]: ...
    def location(self, kind: str, name: str, *path: Any) -> Location: ...


def workspace_inputs(ws: WorkspaceLike) -> AudienceInputs:
    """The inputs of a loaded `connectly_declare.workspace.load.Workspace`."""
    return AudienceInputs(ws.root, ws.config.default_region, ws.audiences, ws.location)


def audience_recipients(ws: WorkspaceLike, name: str, *,
                        stats: AudienceStats | None = None) -> Iterator[Recipient]:
    """Lazily the recipients of the workspace's Audience `name` (see resolve_audience)."""
    return resolve_audience(workspace_inputs(ws), name, stats=stats)


__all__ = [
    "AudienceInputs",
    "AudienceStats",
    "Recipient",
    "WorkspaceLike",
    "audience_recipients",
    "resolve_audience",
    "resolve_raw",
    "source_label",
    "workspace_inputs",
]
