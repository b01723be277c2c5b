"""One plan, three forms: text for terminals, Markdown for pull-request comments, JSON for
bots. Reporters are chosen by name from :data:`FORMATS` (one interface, several outputs)
and yield the output in chunks, so a million-entry `--details` listing streams.

Every piece of text that came from manifests or data (campaign names, variables, notes
quoting them) is shown through a :class:`_View`: every phone number in it, however spelled,
is masked (``+1650•••1234``, :mod:`connectly_declare.report.mask`) unless
``show_recipients``; in text and Markdown each value is capped (:data:`NAME_CAP`,
:data:`VALUE_CAP`, :data:`VARIABLES_CAP`, :data:`NOTE_CAP`: an ellipsis and its length),
so one oversized value cannot crowd out the rest; then it goes through
:mod:`connectly_declare.report.escape` at the last moment. JSON keeps values whole.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from itertools import chain
from typing import Any

from connectly_declare import words
from connectly_declare.entry import mask_phone
from connectly_declare.plan.model import (
    ACTIONS,
    SENDING_ACTIONS,
    Action,
    Plan,
    PlannedEntry,
    SendoutPlan,
)
from connectly_declare.report import escape, timing
from connectly_declare.report.mask import DEFAULT_REGIONS, mask_numbers, mask_value
from connectly_declare.report.where import destination_text, sentence

JSON_FORMAT_VERSION = 1
MARKDOWN_LIMIT = 60_000  # GitHub refuses comments over 65,536 characters
_MARKDOWN_RESERVE = 600  # room kept for the "left out" note and closing lines
# Display caps, in characters of data before escaping (text and Markdown; JSON is whole).
NAME_CAP = 100  # a sendout, campaign, version or environment name, a variable's name
VALUE_CAP = 200  # a variable's value, a schedule, a reason
VARIABLES_CAP = 1_000  # all variables of one entry together
NOTE_CAP = 500  # a note or warning
_WHEN_PRESENT = ("held", "capped")
_COLORS = {"send": "32", "resend": "33", "retry": "33", "recover": "33", "drift": "35",
           "blocked": "31", "orphan": "2", "noop": "2", "waiting": "36", "held": "36",
           "capped": "36"}


@dataclass(frozen=True)
class FormatOptions:
    show_recipients: bool = False
    details: bool = False  # text: list every entry to send
    color: bool = False  # text: ANSI colours (the CLI decides: TTY and NO_COLOR unset)
    markdown_limit: int = MARKDOWN_LIMIT
    # regions whose national numbers (`(650) 555-0102`) are masked too: the workspace's
    regions: tuple[str, ...] = DEFAULT_REGIONS


def cap(text: str, limit: int) -> str:
    """`text`, or its first `limit` characters, an ellipsis and its whole length."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text):,} characters)"


class _View:
    """What one output shows of a value from data: numbers masked (unless the options show
    recipients), capped when `capped`. Escaping is the caller's, at the last moment."""

    def __init__(self, options: FormatOptions, *, capped: bool) -> None:
        self.mask = not options.show_recipients
        self.regions = options.regions
        self.capped = capped

    def __call__(self, text: str, limit: int = VALUE_CAP) -> str:
        if self.mask:
            text = mask_numbers(text, self.regions)
        return cap(text, limit) if self.capped else text

    def client(self, planned: PlannedEntry) -> str:
        client = planned.entry.client
        return mask_phone(client) if self.mask else client

    def variables(self, planned: PlannedEntry) -> dict[str, str]:
        """Sorted by name for people (text, Markdown), in template order for JSON."""
        e = planned.entry
        items = sorted(e.variables.items()) if self.capped else e.variables.items()
        if not self.mask and not self.capped:
            return dict(items)
        client = e.client
        shown = {}
        for key, value in items:
            if self.mask and client in value:  # the recipient's own number, without a search
                value = value.replace(client, mask_phone(client))
            shown[self(key, NAME_CAP)] = self(value)
        return shown

    def variables_text(self, planned: PlannedEntry) -> str:
        text = json.dumps(self.variables(planned), ensure_ascii=False)
        return cap(text, VARIABLES_CAP) if self.capped else text

    def data(self, value: Any) -> Any:
        """JSON-like `value` with numbers masked in every string (JSON output)."""
        return mask_value(value, self.regions) if self.mask else value


def _version(s: SendoutPlan, view: _View) -> str:
    version = f"{view(s.campaign, NAME_CAP)}"
    return f"{version} {view(s.version, NAME_CAP)}" if s.version else version


def _counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{counts[a]:,} {a}" for a in ACTIONS if counts[a]) or "nothing"


# --- text -------------------------------------------------------------------------------


def _paint(text: str, action: str, options: FormatOptions) -> str:
    code = _COLORS.get(action)
    return f"\x1b[{code}m{text}\x1b[0m" if options.color and code else text


def _text_entry(planned: PlannedEntry, options: FormatOptions, view: _View) -> str:
    e = planned.entry
    parts = [_paint(f"{planned.action:<7}", planned.action, options), view.client(planned),
             escape.terminal(view.variables_text(planned))]
    if e.scheduled_at:
        parts.append(f"at {escape.terminal(view(e.scheduled_at))}")
    if planned.reason:
        parts.append(f"({escape.terminal(view(planned.reason, NOTE_CAP))})")
    return "    " + "  ".join(parts) + "\n"


def text_chunks(plan: Plan, options: FormatOptions) -> Iterator[str]:
    view = _View(options, capped=True)
    ledger = (f"ledger {plan.lineage} at serial {plan.serial}" if plan.lineage
              else "no ledger yet")
    yield (f"Plan for environment {escape.terminal(view(plan.environment or 'default'))}, "
           f"business {escape.terminal(plan.business_id or '(not set)')} ({ledger})\n")
    yield f"  {escape.terminal(sentence(destination_text(plan)))}\n"
    for s in plan.sendouts:
        mode = "allow_multiple" if s.allow_multiple else "allow_one"
        state = "" if s.enabled else " [disabled: nothing planned]"
        counts = ", ".join(_paint(f"{s.counts[a]:,} {a}", a, options)
                           for a in ACTIONS if s.counts[a]) or "nothing"
        yield (f"  {escape.terminal(view(s.name, NAME_CAP))} "
               f"({escape.terminal(_version(s, view))}, {mode}){state}: {counts}\n")
        for wave in s.waves:
            yield f"    {escape.terminal(view(wave.describe(), NOTE_CAP))}\n"
        yield from timing.text_lines(s.timing)
        for note in s.notes:
            yield f"    note: {escape.terminal(view(note, NOTE_CAP))}\n"
        if options.details:
            for planned in s.to_send:
                yield _text_entry(planned, options, view)
            for planned in s.samples:
                if planned.action not in SENDING_ACTIONS:
                    yield _text_entry(planned, options, view)
            kept = sum(1 for p in s.samples if p.action not in SENDING_ACTIONS)
            hidden = sum(s.counts[a] for a in ACTIONS if a not in SENDING_ACTIONS) - kept
            if hidden > 0:
                yield (f"    ... and {words.count(hidden, 'more entry', 'more entries')} that send "
                       "nothing (not kept)\n")
    for warning in plan.warnings:
        yield f"warning: {escape.terminal(view(warning, NOTE_CAP))}\n"
    # `recover` exists only with --recover-in-doubt: named when it has entries
    sending = ", ".join(f"{plan.total(a):,} {a}" for a in SENDING_ACTIONS
                        if a != "recover" or plan.total(a))
    # held and capped (quiet hours, frequency caps) only when they occur:
    # a plan without them reads as it always did
    rest = ", ".join(f"{plan.total(a):,} {a}" for a in ACTIONS if a not in SENDING_ACTIONS
                     and (plan.total(a) or a not in _WHEN_PRESENT))
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
    """Room left in the comment, and what was left out for lack of it."""

    def __init__(self, limit: int) -> None:
        self.room = limit - _MARKDOWN_RESERVE
        self.parts: list[str] = []
        self.left_out: dict[tuple[str, str], int] = {}  # (word, plural) -> count

    def fits(self, size: int) -> bool:
        return size <= self.room

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.room -= len(text)

    def offer(self, text: str, word: str, many: str | None = None, *,
              within: int | None = None) -> bool:
        """Add `text` if it fits (in `within` too, when given), else count it left out."""
        if len(text) <= min(self.room, self.room if within is None else within):
            self.add(text)
            return True
        self.leave_out(1, word, many)
        return False

    def leave_out(self, count: int, word: str, many: str | None = None) -> None:
        if count > 0:
            key = (word, many or word + "s")
            self.left_out[key] = self.left_out.get(key, 0) + count

    def note(self) -> str:
        return ", ".join(f"{n:,} {word if n == 1 else many}"
                         for (word, many), n in self.left_out.items())


def _md_counts(counts: Mapping[Action, int]) -> str:
    return " | ".join(f"**{counts[a]:,}**" if a in SENDING_ACTIONS and counts[a]
                      else f"{counts[a]:,}" for a in ACTIONS)


def _md_table(plan: Plan, view: _View, budget: _Budget) -> None:
    """The table of sendouts and its totals row: the totals are always shown, every
    sendout's row while room is left (each name is capped, so one long version label
    cannot take the room of the others)."""
    head = ("| sendout | campaign | " + " | ".join(ACTIONS) + " |\n"
            "| --- | --- | " + " | ".join("---:" for _ in ACTIONS) + " |\n")
    totals = f"| **total** | | {_md_counts({a: plan.total(a) for a in ACTIONS})} |\n"
    budget.add(head)
    budget.room -= len(totals)
    for s in plan.sendouts:
        name = escape.markdown_text(view(s.name, NAME_CAP)) + ("" if s.enabled
                                                               else " (disabled)")
        budget.offer(f"| {name} | {escape.markdown_text(_version(s, view))} | "
                     f"{_md_counts(s.counts)} |\n", "sendout row")
    budget.room += len(totals)
    budget.add(totals)


def _md_list(title: str, lines: list[str], budget: _Budget, share: int, word: str) -> None:
    if not lines:
        return
    header = f"\n**{title}**\n\n"
    if not budget.fits(len(header) + len(lines[0])):
        budget.leave_out(len(lines), word)
        return
    budget.add(header)
    used = len(header)
    for line in lines:
        if budget.offer(line, word, within=max(share - used, len(lines[0]))):
            used += len(line)


def _md_samples(s: SendoutPlan, view: _View, budget: _Budget, share: int) -> None:
    """One sendout's sample entries in a <details> block, within `share` characters."""
    summary = escape.markdown_text(view(s.name, NAME_CAP), in_html=True)
    head = (f"<details><summary>{summary}: sample entries</summary>\n\n"
            "| action | client | variables | scheduled | reason |\n"
            "| --- | --- | --- | --- | --- |\n")
    tail = "\n</details>\n\n"
    dropped_note = 60  # "_… N sample rows left out_" inside the block
    rows = []
    for planned in s.samples:
        rows.append(" | ".join([
            f"| {planned.action}", escape.markdown_code_span(view.client(planned)),
            escape.markdown_code_span(view.variables_text(planned)),
            escape.markdown_code_span(view(planned.entry.scheduled_at or "-")),
            escape.markdown_text(view(planned.reason, NOTE_CAP))]) + " |\n")
    room = min(share, budget.room) - len(head) - len(tail) - dropped_note
    if room < (len(rows[0]) if rows else 0):
        budget.leave_out(len(rows), "sample row")
        return
    kept = []
    for row in rows:
        if len(row) > room:
            break
        kept.append(row)
        room -= len(row)
    dropped = len(rows) - len(kept)
    note = f"\n_{words.count(dropped, 'sample row')} left out._\n" if dropped else ""
    budget.add(head + "".join(kept) + note + tail)
    budget.leave_out(dropped, "sample row")


def markdown_chunks(plan: Plan, options: FormatOptions) -> Iterator[str]:
    view = _View(options, capped=True)
    budget = _Budget(options.markdown_limit)
    verdict = f"**{plan.sends:,} to send**" if plan.has_changes else "**nothing to send**"
    ledger = f"ledger serial {plan.serial}" if plan.lineage else "no ledger yet"
    environment = escape.markdown_text(view(plan.environment or "default", NAME_CAP))
    budget.add(f"### connectly-declare plan: {environment}\n\n{verdict} across "
               f"{words.count(len(plan.sendouts), 'sendout')} ({ledger}). "
               f"{escape.markdown_text(sentence(destination_text(plan)))}.\n\n")
    _md_table(plan, view, budget)
    # Warnings and rollouts may take half of what is left each; the samples share the
    # rest fairly, sendout by sendout.
    warnings = [f"- {escape.markdown_text(view(f'{s.name}: {note}', NOTE_CAP))}\n"
                for s in plan.sendouts for note in s.notes]
    warnings += [f"- {escape.markdown_text(view(w, NOTE_CAP))}\n" for w in plan.warnings]
    _md_list("Warnings", warnings, budget, budget.room // 2, "warning")
    waves = []
    for s in plan.sendouts:
        for wave in s.waves:
            line = escape.markdown_text(view(f"{s.name}: {wave.describe()}", NOTE_CAP))
            waves.append(f"- {'**' + line + '**' if wave.current else line}\n")
    _md_list("Rollouts", waves, budget, budget.room // 2, "rollout line")
    budget.add("\n")
    timed = [s for s in plan.sendouts if s.timing]
    for i, s in enumerate(timed):  # when they are sent: hours, quiet hours, caps, zones
        budget.offer(timing.markdown_block(view(s.name, NAME_CAP), s.timing), "timing table",
                     within=budget.room // (2 * (len(timed) - i)))
    with_samples = [s for s in plan.sendouts if s.samples]
    for i, s in enumerate(with_samples):
        _md_samples(s, view, budget, budget.room // (len(with_samples) - i))
    yield from budget.parts
    if budget.left_out:
        yield (f"\n_Left out to stay under {options.markdown_limit:,} characters: "
               f"{budget.note()}. Run `connectly-declare plan --details` for everything._\n")
    if not options.show_recipients:
        yield "\n<sub>Phone numbers are masked.</sub>\n"


def format_markdown(plan: Plan, *, show_recipients: bool = False,
                    limit: int = MARKDOWN_LIMIT) -> str:
    """The plan as a pull-request comment, never longer than `limit` characters."""
    options = FormatOptions(show_recipients=show_recipients, markdown_limit=limit)
    return "".join(markdown_chunks(plan, options))


# --- JSON -------------------------------------------------------------------------------


def _json_entry(planned: PlannedEntry, view: _View) -> dict[str, Any]:
    e = planned.entry
    at = e.scheduled_at
    return {"action": planned.action, "client": view.client(planned),
            "variables": view.variables(planned), "scheduled_at": at if at is None else view(at),
            "round": e.round, "fingerprint": e.fingerprint, "reason": view(planned.reason),
            "source": view(e.source)}


def _dumps(obj: Any) -> str:
    return escape.json_text(json.dumps(obj, ensure_ascii=False, sort_keys=False))


def json_chunks(plan: Plan, options: FormatOptions) -> Iterator[str]:
    view = _View(options, capped=False)
    data = view.data
    head = {
        "format_version": JSON_FORMAT_VERSION, "created_by": plan.created_by,
        "environment": data(plan.environment), "business_id": plan.business_id,
        "sim": plan.sim, "endpoint": data(plan.endpoint), "ledger": data(plan.ledger),
        "lineage": plan.lineage, "serial": plan.serial,
        "workspace_digest": plan.workspace_digest, "options": data(plan.options),
        "has_changes": plan.has_changes, "totals": {a: plan.total(a) for a in ACTIONS},
        "orphans": [{"sendout": data(o.sendout), "campaign": data(o.campaign),
                     "count": o.count} for o in plan.orphans],
        "warnings": data(list(plan.warnings)),
    }
    yield _dumps(head)[:-1] + ', "sendouts": ['
    for i, s in enumerate(plan.sendouts):
        info = {"name": data(s.name), "campaign": data(s.campaign),
                "version": data(s.version), "options": data(s.options),
                "allow_multiple": s.allow_multiple,
                "enabled": s.enabled, "counts": {a: s.counts[a] for a in ACTIONS},
                "audience_stats": s.audience_stats, "notes": data(list(s.notes)),
                "waves": [data(w.as_dict()) for w in s.waves],
                "timing": data(s.timing)}
        yield ("" if i == 0 else ", ") + _dumps(info)[:-1] + ', "entries": ['
        # every entry to send, then the kept samples of the others (noop entries are
        # counted, not kept: a million unchanged recipients would be noise)
        listed = chain(s.to_send, (p for p in s.samples if p.action not in SENDING_ACTIONS))
        for j, planned in enumerate(listed):
            yield ("" if j == 0 else ", ") + _dumps(_json_entry(planned, view))
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


__all__ = ["FORMATS", "JSON_FORMAT_VERSION", "MARKDOWN_LIMIT", "NAME_CAP", "NOTE_CAP",
           "VALUE_CAP", "VARIABLES_CAP", "FormatOptions", "cap", "format_json",
           "format_markdown", "format_plan", "format_text", "json_chunks", "markdown_chunks",
           "text_chunks"]
