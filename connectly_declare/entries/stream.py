"""A Sendout's desired entries: audience x templates -> :class:`Entry` with its fingerprint.

:func:`iter_entries` compiles the sendout's templates at once (so a template error is
raised before any file is read) and returns a lazy iterator in a deterministic order:
audience order, first occurrence wins. It holds the set of numbers seen and the exclusion
set, nothing else; the plan consumes the stream.

`scheduledAt` is the Sendout's `schedule` in ISO 8601 with its own offset, to the second
(`2026-12-01T09:00:00+01:00`), or with microseconds when the manifest gives fractions;
UTC is written `+00:00`. Exactly that string is sent and fingerprinted. A local-time
schedule or quiet hours make it per recipient (connectly_declare.policy.timing): the
recipient's zone is resolved once per entry and the time once per zone.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from operator import itemgetter
from pathlib import Path
from typing import Any

from connectly_declare.audience.resolve import (
    AudienceInputs,
    AudienceStats,
    WorkspaceLike,
    resolve_raw,
)
from connectly_declare.audience.sources import Raw, as_fields
from connectly_declare.entries.maker import EntryMaker, MissingField, build_maker
from connectly_declare.entry import Entry
from connectly_declare.errors import Location
from connectly_declare.policy.timing import QuietMode, SendoutTiming, sendout_timing
from connectly_declare.templates.compiled import (
    CompiledTemplate,
    TemplateContext,
    compile_all,
    make_environment,
)
from connectly_declare.workspace.config import WorkspaceConfig
from connectly_declare.workspace.manifests import Audience, Sendout


def scheduled_at(schedule: datetime | None) -> str | None:
    """The `scheduledAt` string of a schedule (see the module docstring)."""
    if schedule is None:
        return None
    return schedule.isoformat(timespec="seconds" if not schedule.microsecond else "microseconds")


def sendout_context(sendout: Sendout, template_env: list[str],
                    environ: Mapping[str, str]) -> TemplateContext:
    """The template context every recipient of `sendout` shares."""
    return TemplateContext.build(
        vars=sendout.vars,
        sendout={"name": sendout.name, "campaign": sendout.campaign,
                 "version": sendout.version, "round": sendout.round},
        template_env=template_env,
        environ=environ,
    )


def iter_sendout_entries(
    root: Path,
    config: WorkspaceConfig,
    audiences: Mapping[str, Audience],
    sendout: Sendout,
    locate: Callable[..., Location],
    *,
    environ: Mapping[str, str] = os.environ,
    stats: AudienceStats | None = None,
    now: datetime | None = None,
    quiet_mode: QuietMode = "shift",
) -> Iterator[Entry]:
    """The entries of `sendout`, from the workspace's pieces (see :func:`iter_entries`)."""
    inputs = AudienceInputs(root, config.default_region, audiences, locate)
    ctx = sendout_context(sendout, config.template_env, environ)
    templates = compile_all(
        make_environment(), sendout.variables,
        lambda name: inputs.at("Sendout", sendout.name, "variables", name), ctx,
    )
    recipients = resolve_raw(inputs, sendout.audience, stats=stats,
                             node=("Sendout", sendout.name, "audience"))
    timing = sendout_timing(sendout, config.quiet_hours, quiet_mode, now)
    if timing is not None:
        return _timed_entries(sendout, templates, recipients, timing)
    return _entries(sendout, templates, recipients)


def _entries(sendout: Sendout, templates: list[CompiledTemplate],
             recipients: Iterator[Raw]) -> Iterator[Entry]:
    schedule = sendout.schedule
    when = scheduled_at(schedule if isinstance(schedule, datetime) else None)
    # Keyed by the column names themselves (not id(): a finished source's header could be
    # freed and its address reused by the next source's, with other columns).
    makers: dict[tuple[str, ...] | None, EntryMaker] = {}
    layout: tuple[str, ...] | None = ()  # a sentinel no source has
    make: EntryMaker | None = None
    for raw in recipients:
        client, data, row, header = raw
        if header is not layout or make is None:
            # A new source layout (each CSV has its own header): one compiled maker each.
            layout = header
            make = makers.get(header)
            if make is None:
                make = _maker(sendout, templates, when, raw)
                makers[header] = make
        try:
            entry = make(client, data, row)
        except KeyError:  # a dict source without the field: raise it located
            _raise_located(templates, raw)
            raise
        yield entry


def _field_getter(field: str | None, header: tuple[str, ...] | None) -> Callable[[Any], Any]:
    """Reads the zone field of one recipient's data (a CSV row or a dict)."""
    if field is None:
        return lambda data: None
    if header is None:
        return lambda data: data.get(field)
    if field not in header:
        return lambda data: None
    return itemgetter(header.index(field))


def _timed_entries(sendout: Sendout, templates: list[CompiledTemplate],
                   recipients: Iterator[Raw], timing: SendoutTiming) -> Iterator[Entry]:
    """As _entries, with each recipient's own send time (its zone's, cached per zone)."""
    makers: dict[tuple[str, ...] | None, tuple[EntryMaker, Callable[[Any], Any]]] = {}
    layout: tuple[str, ...] | None = ()
    make: EntryMaker | None = None
    given: Callable[[Any], Any] = _field_getter(None, None)
    time_of = timing.timing
    for raw in recipients:
        client, data, row, header = raw
        if header is not layout or make is None:
            layout = header
            found = makers.get(header)
            if found is None:
                found = makers[header] = (_maker(sendout, templates, None, raw, True),
                                          _field_getter(timing.field, header))
            make, given = found
        when = time_of(client, given(data), row)
        try:
            entry = make(client, data, row, *when)
        except KeyError:
            _raise_located(templates, raw)
            raise
        yield entry


def _maker(sendout: Sendout, templates: list[CompiledTemplate], when: str | None,
           raw: Raw, per_entry_time: bool = False) -> EntryMaker:
    header = raw[3]

    def fields(client: str, data: Any) -> dict[str, Any]:
        return as_fields((client, data, "", header))

    try:
        return build_maker(
            templates, sendout=sendout.name, campaign=sendout.campaign,
            version=sendout.version, scheduled_at=when, round_=sendout.round,
            allow_multiple=sendout.options.allow_multiple, header=header, as_fields=fields,
            per_entry_time=per_entry_time)
    except MissingField:
        _raise_located(templates, raw)
        raise


def _raise_located(templates: list[CompiledTemplate], raw: Raw) -> None:
    """Render each template the plain way, which raises the error located at the template
    and naming the recipient's row."""
    fields = as_fields(raw)
    for t in templates:
        t.render(fields, raw[2])


def iter_entries(
    ws: WorkspaceLike,
    sendout: Sendout,
    *,
    environ: Mapping[str, str] = os.environ,
    stats: AudienceStats | None = None,
    now: datetime | None = None,
    quiet_mode: QuietMode = "shift",
) -> Iterator[Entry]:
    """Lazily the entries of `sendout` in `ws`, in audience order (first occurrence wins).

    Template problems raise :class:`~connectly_declare.errors.ManifestErrors` at once;
    data problems raise :class:`~connectly_declare.errors.DeclareError` when reached,
    located at the data row and naming the manifest line. `stats` is filled as the
    iterator is consumed. `now` is the plan's clock (quiet hours of a sendout without
    schedule); `quiet_mode` says what quiet hours do: shift to their end, or hold."""
    return iter_sendout_entries(ws.root, ws.config, ws.audiences, sendout, ws.location,
                                environ=environ, stats=stats, now=now, quiet_mode=quiet_mode)


__all__ = [
    "AudienceStats",
    "WorkspaceLike",
    "iter_entries",
    "iter_sendout_entries",
    "scheduled_at",
    "sendout_context",
]
