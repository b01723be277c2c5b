"""`connectly-declare render`: a sendout's first entries as JSON lines, for a look at what
would be sent before planning.

Phone numbers are masked (`+1650•••1234`) unless asked, also where a template copied the
number into a variable. Lines are JSON that is safe on a terminal: besides the control
characters JSON escapes, C1 controls, bidi overrides, invisible characters and line
separators from a CSV cell are written as `\\uXXXX` escapes (same data, nothing hidden).
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from connectly_declare import words
from connectly_declare.audience.resolve import AudienceStats
from connectly_declare.commands.plan import workspace_regions
from connectly_declare.entries.stream import WorkspaceLike, iter_entries
from connectly_declare.entry import Entry, mask_phone
from connectly_declare.errors import DeclareError
from connectly_declare.report.escape import json_text
from connectly_declare.report.mask import DEFAULT_REGIONS, mask_numbers, mask_value
from connectly_declare.workspace.load import Workspace
from connectly_declare.workspace.manifests import Sendout


def json_line(item: Mapping[str, Any]) -> str:
    """One JSON object on one line, readable (UTF-8) and inert on a terminal."""
    return json_text(json.dumps(item, ensure_ascii=False))


def entry_sample(entry: Entry, *, show_recipients: bool,
                 regions: tuple[str, ...] = DEFAULT_REGIONS) -> dict[str, Any]:
    """The JSON object `render` prints for one entry: the API item plus where it came from.
    Unless `show_recipients`, every phone number in it is masked, however it is spelled
    (`report.mask`): the client, and numbers in variables, names and the source."""
    item = entry.to_api()
    item["variables"] = dict(entry.variables)
    item.update(sendout=entry.sendout, round=entry.round, fingerprint=entry.fingerprint,
                source=entry.source)
    if show_recipients:
        return item
    masked = mask_phone(entry.client)
    item["variables"] = {k: v.replace(entry.client, masked)
                         for k, v in item["variables"].items()}
    for name in ("campaignName", "campaignVersion", "variables", "scheduledAt", "sendout",
                 "source"):
        if name in item:
            item[name] = mask_value(item[name], regions)
    item["client"] = masked
    return item


@dataclass
class RenderResult:
    """What `render` found: how many lines it gave out, whether the audience was read to its
    end, and the audience counters. `lines` holds the lines only when no `emit` callback
    took them (the CLI streams them, so `render --limit 0` of millions stays flat)."""

    sendout: Sendout
    lines: list[str] = field(default_factory=list)
    shown: int = 0
    complete: bool = False
    stats: AudienceStats = field(default_factory=AudienceStats)
    show_recipients: bool = False
    regions: tuple[str, ...] = DEFAULT_REGIONS


def find_sendout(ws: WorkspaceLike, name: str) -> Sendout:
    sendouts = ws.sendouts
    if name not in sendouts:
        close = difflib.get_close_matches(name, list(sendouts), n=1, cutoff=0.6)
        known = ", ".join(sorted(sendouts)) or "none are declared"
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise DeclareError(f"no sendout named {name!r}", hint=f"{hint}known sendouts: {known}")
    return sendouts[name]


def render(ws: WorkspaceLike, name: str, *, limit: int = 10, show_recipients: bool = False,
           environ: Mapping[str, str] = os.environ,
           emit: Callable[[str], object] | None = None) -> RenderResult:
    """`render` as data: the audience counters, whether every entry was rendered (the whole
    audience read) or the limit stopped it first, and the lines. With `emit`, each line is
    handed to it as soon as its entry is made and none is kept (memory flat whatever the
    audience size; a data error then stops the stream after the lines already given);
    without, they are collected in `result.lines`."""
    sendout = find_sendout(ws, name)
    result = RenderResult(sendout, show_recipients=show_recipients,
                          regions=workspace_regions(ws) if isinstance(ws, Workspace)
                          else DEFAULT_REGIONS)
    out: Callable[[str], object] = result.lines.append if emit is None else emit
    entries = iter_entries(ws, sendout, environ=environ, stats=result.stats)
    for entry in entries:
        if limit and result.shown >= limit:
            return result
        out(json_line(entry_sample(entry, show_recipients=show_recipients,
                                   regions=result.regions)))
        result.shown += 1
    result.complete = True
    return result


def summary(result: RenderResult) -> str:
    """A few lines for stderr: what was rendered, what the audience held, what was skipped
    (each skip located at its file and row)."""
    s = result.stats
    shown = result.shown
    if result.complete:
        text = (f"{words.count(shown, 'entry', 'entries')}: {s.read:,} read, "
                f"{s.duplicates_dropped:,} duplicates dropped, {s.excluded:,} excluded, "
                f"{s.filtered_out:,} filtered out, {s.invalid_skipped:,} invalid skipped")
        if s.exclusion_invalid_skipped:
            text += f" (and {s.exclusion_invalid_skipped} in exclusion lists)"
    else:
        text = (f"{words.count(shown, 'entry', 'entries')} shown (--limit); the audience "
                "was not read to its end, so counts are partial: use --limit 0 for all")
    if not result.sendout.enabled:
        text += "\nnote: the sendout is disabled (enabled: false); plan and apply skip it"
    for problem in s.skipped_samples:
        said = str(problem)
        if not result.show_recipients:
            said = mask_numbers(said, result.regions)
        text += f"\n  skipped {said}"
    if s.skips.count > len(s.skipped_samples):
        text += f"\n  ... and {s.skips.count - len(s.skipped_samples)} more skipped"
    return text


__all__ = ["RenderResult", "entry_sample", "find_sendout", "json_line", "render", "summary"]
