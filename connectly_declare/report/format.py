"""One plan, three forms: text for terminals, Markdown for pull-request comments, JSON for
bots. Reporters are chosen by name from :data:`FORMATS` (one interface, several outputs)
and yield the output in chunks, so a million-entry `--details` listing streams.

Every piece of text that came from manifests or data (campaign names, variables, notes
quoting them) goes through :mod:`connectly_declare.report.escape` at the last moment; phone
numbers are masked (``+1650•••1234``) unless ``show_recipients``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from connectly_declare import words
from connectly_declare.entry import mask_phone
from connectly_declare.plan.make import ACTIONS, SENDING_ACTIONS, Plan, PlannedEntry, SendoutPlan
from connectly_declare.report import escape

JSON_FORMAT_VERSION = 1
MARKDOWN_LIMIT = 60_000  # GitHub refuses comments over 65,536 characters
_MARKDOWN_RESERVE = 600  # room kept for the "left out" note and closing lines
_COLORS = {"send": "32", "resend": "33", "retry": "33", "recover": "33", "drift": "35",
           "blocked": "31", "orphan": "2", "noop": "2", "waiting": "36"}


@dataclass(frozen=True)
class FormatOptions:
    show_recipients: bool = False
    details: bool = False  # text: list every entry to send
    color: bool = False  # text: ANSI colours (the CLI decides: TTY and NO_COLOR unset)
    markdown_limit: int = MARKDOWN_LIMIT


def _client(planned: PlannedEntry, options: FormatOptions) -> str:
    client = planned.entry.client
    return client if options.show_recipients else mask_phone(client)


def _version(s: SendoutPlan) -> str:
    return f"{s.campaign} {s.version}" if s.version else s.campaign


def _counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{counts[a]:,} {a}" for a in ACTIONS if counts[a]) or "nothing"


def _variables(planned: PlannedEntry) -> str:
    return json.dumps(dict(planned.entry.variables), ensure_ascii=False, sort_keys=True)


# --- text -------------------------------------------------------------------------------


def _paint(text: str, action: str, options: FormatOptions) -> str:
    code = _COLORS.get(action)
    return f"\x1b[{code}m{text}\x1b[0m" if options.color and code else text


def _text_entry(planned: PlannedEntry, options: FormatOptions) -> str:
    e = planned.entry
    parts = [_paint(f"{planned.action:<7}", planned.action, options), _client(planned, options),
             escape.terminal(_variables(planned))]
    if e.scheduled_at:
        parts.append(f"at {escape.terminal(e.scheduled_at)}")
    if planned.reason:
        parts.append(f"({escape.terminal(planned.reason)})")
    return "    " + "  ".join(parts) + "\n"


def text_chunks(plan: Plan, options: FormatOptions) -> Iterator[str]:
    ledger = (f"ledger {plan.lineage} at serial {plan.serial}" if plan.lineage
              else "no ledger yet")
    yield (f"Plan for environment {escape.terminal(plan.environment or 'default')}, business "
           f"{escape.terminal(plan.business_id or '(not set)')} ({ledger})\n")
    for s in plan.sendouts:
        mode = "allow_multiple" if s.allow_multiple else "allow_one"
        state = "" if s.enabled else " [disabled: nothing planned]"
        counts = ", ".join(_paint(f"{s.counts[a]:,} {a}", a, options)
                           for a in ACTIONS if s.counts[a]) or "nothing"
        yield (f"  {escape.terminal(s.name)} ({escape.terminal(_version(s))}, {mode})"
               f"{state}: {counts}\n")
        for wave in s.waves:
            yield f"    {escape.terminal(wave.describe())}\n"
        for note in s.notes:
            yield f"    note: {escape.terminal(note)}\n"
        if options.details:
            for planned in s.to_send:
                yield _text_entry(planned, options)
            for planned in s.samples:
                if planned.action not in SENDING_ACTIONS:
                    yield _text_entry(planned, options)
            kept = sum(1 for p in s.samples if p.action not in SENDING_ACTIONS)
            hidden = sum(s.counts[a] for a in ACTIONS if a not in SENDING_ACTIONS) - kept
            if hidden > 0:
                yield (f"    ... and {words.count(hidden, 'more entry', 'more entries')} that send "
                       "nothing (not kept)\n")
    for warning in plan.warnings:
        yield f"warning: {escape.terminal(warning)}\n"
    # `recover` exists only with --recover-in-doubt: named when it has entries
    sending = ", ".join(f"{plan.total(a):,} {a}" for a in SENDING_ACTIONS
                        if a != "recover" or plan.total(a))
    rest = ", ".join(f"{plan.total(a):,} {a}" for a in ACTIONS if a not in SENDING_ACTIONS)
    verdict = (f"{plan.sends:,} to send ({sending})" if plan.has_changes
               else "nothing to send")
    yield f"Plan: {verdict}; {rest}.\n"


def format_text(plan: Plan, *, show_recipients: bool = False, details: bool = False,
                color: bool = False) -> str:
    """The plan for a terminal (what `connectly-declare plan` prints)."""
    options = FormatOptions(show_recipients=show_recipients, details=details, color=color)
    return "".join(text_chunks(plan, options))


# --- Markdown ---------------------------------------------------------------------------


class _Budget:
    """Collects Markdown blocks until the next would pass the limit; counts what is left out."""

    def __init__(self, limit: int) -> None:
        self.limit = limit - _MARKDOWN_RESERVE
        self.parts: list[str] = []
        self.size = 0
        self.left_out: dict[str, int] = {}

    def add(self, text: str, what: str) -> bool:
        if self.left_out or self.size + len(text) > self.limit:
            self.left_out[what] = self.left_out.get(what, 0) + 1
            return False
        self.parts.append(text)
        self.size += len(text)
        return True


def _md_table(plan: Plan, budget: _Budget) -> None:
    budget.add("| sendout | campaign | " + " | ".join(ACTIONS) + " |\n"
               "| --- | --- | " + " | ".join("---:" for _ in ACTIONS) + " |\n", "table")
    for s in plan.sendouts:
        name = escape.markdown_text(s.name) + ("" if s.enabled else " (disabled)")
        cells = " | ".join(f"**{s.counts[a]:,}**" if a in SENDING_ACTIONS and s.counts[a]
                           else f"{s.counts[a]:,}" for a in ACTIONS)
        budget.add(f"| {name} | {escape.markdown_text(_version(s))} | {cells} |\n",
                   "table rows")


def _md_samples(s: SendoutPlan, options: FormatOptions) -> str:
    rows = ["| action | client | variables | scheduled | reason |",
            "| --- | --- | --- | --- | --- |"]
    for planned in s.samples:
        rows.append(" | ".join([
            f"| {planned.action}", escape.markdown_code_span(_client(planned, options)),
            escape.markdown_code_span(_variables(planned)),
            escape.markdown_code_span(planned.entry.scheduled_at or "-"),
            escape.markdown_text(planned.reason)]) + " |")
    summary = escape.markdown_text(s.name, in_html=True)
    return (f"<details><summary>{summary}: sample entries</summary>\n\n"
            + "\n".join(rows) + "\n\n</details>\n\n")


def markdown_chunks(plan: Plan, options: FormatOptions) -> Iterator[str]:
    budget = _Budget(options.markdown_limit)
    verdict = f"**{plan.sends:,} to send**" if plan.has_changes else "**nothing to send**"
    ledger = f"ledger serial {plan.serial}" if plan.lineage else "no ledger yet"
    budget.add(f"### connectly-declare plan: {escape.markdown_text(plan.environment or 'default')}"
               f"\n\n{verdict} across {words.count(len(plan.sendouts), 'sendout')} ({ledger}).\n\n",
               "header")
    _md_table(plan, budget)
    warnings = [f"{s.name}: {note}" for s in plan.sendouts for note in s.notes]
    warnings.extend(plan.warnings)
    if warnings:
        budget.add("\n**Warnings**\n\n", "warnings")
        for warning in warnings:
            budget.add(f"- {escape.markdown_text(warning)}\n", "warnings")
    rollouts = [s for s in plan.sendouts if s.waves]
    if rollouts:
        budget.add("\n**Rollouts**\n\n", "rollouts")
        for s in rollouts:
            for wave in s.waves:
                line = escape.markdown_text(f"{s.name}: {wave.describe()}")
                budget.add(f"- {'**' + line + '**' if wave.current else line}\n", "rollouts")
    budget.add("\n", "samples")
    for s in plan.sendouts:
        if s.samples:
            budget.add(_md_samples(s, options), "sendouts' samples")
    yield from budget.parts
    if budget.left_out:
        what = ", ".join(f"{n:,} {w}" for w, n in budget.left_out.items())
        yield (f"\n_Left out to stay under {options.markdown_limit:,} characters: {what}. "
               "Run `connectly-declare plan --details` for everything._\n")
    if not options.show_recipients:
        yield "\n<sub>Phone numbers are masked.</sub>\n"


def format_markdown(plan: Plan, *, show_recipients: bool = False,
                    limit: int = MARKDOWN_LIMIT) -> str:
    """The plan as a pull-request comment, never longer than `limit` characters."""
    options = FormatOptions(show_recipients=show_recipients, markdown_limit=limit)
    return "".join(markdown_chunks(plan, options))


# --- JSON -------------------------------------------------------------------------------


def _json_entry(planned: PlannedEntry, options: FormatOptions) -> dict[str, Any]:
    e = planned.entry
    return {"action": planned.action, "client": _client(planned, options),
            "variables": dict(e.variables), "scheduled_at": e.scheduled_at, "round": e.round,
            "fingerprint": e.fingerprint, "reason": planned.reason, "source": e.source}


def _dumps(obj: Any) -> str:
    return escape.json_text(json.dumps(obj, ensure_ascii=False, sort_keys=False))


def json_chunks(plan: Plan, options: FormatOptions) -> Iterator[str]:
    head = {
        "format_version": JSON_FORMAT_VERSION, "created_by": plan.created_by,
        "environment": plan.environment, "business_id": plan.business_id,
        "lineage": plan.lineage, "serial": plan.serial,
        "workspace_digest": plan.workspace_digest, "options": plan.options,
        "has_changes": plan.has_changes, "totals": {a: plan.total(a) for a in ACTIONS},
        "orphans": [{"sendout": o.sendout, "campaign": o.campaign, "count": o.count}
                    for o in plan.orphans],
        "warnings": list(plan.warnings),
    }
    yield _dumps(head)[:-1] + ', "sendouts": ['
    for i, s in enumerate(plan.sendouts):
        info = {"name": s.name, "campaign": s.campaign, "version": s.version,
                "options": s.options, "allow_multiple": s.allow_multiple,
                "enabled": s.enabled, "counts": {a: s.counts[a] for a in ACTIONS},
                "audience_stats": s.audience_stats, "notes": list(s.notes),
                "waves": [w.as_dict() for w in s.waves]}
        yield ("" if i == 0 else ", ") + _dumps(info)[:-1] + ', "entries": ['
        # every entry to send, then the kept samples of the others (noop entries are
        # counted, not kept: a million unchanged recipients would be noise)
        listed = [*s.to_send, *(p for p in s.samples if p.action not in SENDING_ACTIONS)]
        for j, planned in enumerate(listed):
            yield ("" if j == 0 else ", ") + _dumps(_json_entry(planned, options))
        yield "]}"
    yield "]}\n"


def format_json(plan: Plan, *, show_recipients: bool = False) -> str:
    return "".join(json_chunks(plan, FormatOptions(show_recipients=show_recipients)))


FORMATS: dict[str, Callable[[Plan, FormatOptions], Iterator[str]]] = {
    "text": text_chunks,
    "markdown": markdown_chunks,
    "json": json_chunks,
}


def format_plan(plan: Plan, fmt: str, options: FormatOptions) -> Iterator[str]:
    """The plan in format `fmt` (a key of FORMATS), in chunks."""
    return FORMATS[fmt](plan, options)


__all__ = ["FORMATS", "JSON_FORMAT_VERSION", "MARKDOWN_LIMIT", "FormatOptions", "format_json",
           "format_markdown", "format_plan", "format_text", "json_chunks", "markdown_chunks",
           "text_chunks"]
