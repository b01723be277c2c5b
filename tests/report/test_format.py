"""The three renderers: Markdown stays under its cap and inert, JSON is versioned and
masked, text colours only when asked."""

from __future__ import annotations

import json
import re

from connectly_declare.ledger.base import LedgerState
from connectly_declare.plan.make import Plan, PlanOptions, make_plan
from connectly_declare.report.format import FORMATS, FormatOptions, format_markdown, format_text
from tests.plan.conftest import NOW, desired, entry, history, spec

HOSTILE = "x | </details> @acme/everyone **bold** [link](http://evil.example) \x1b[2J"


def big_plan(sendouts: int, per_sendout: int) -> Plan:
    items = []
    for s in range(sendouts):
        name = f"sendout-{s:04d}"
        entries = [entry(f"+1650{s:03d}{n:04d}", sendout=name, campaign=f"C{s}",
                         name="N" * 200) for n in range(per_sendout)]
        items.append(desired(spec(name, campaign=f"C{s}"), entries))
    return make_plan(items, LedgerState(None, 0), PlanOptions(), now=NOW)


def test_markdown_never_passes_the_cap_and_says_what_it_left_out() -> None:
    plan = big_plan(600, 20)
    text = format_markdown(plan)
    assert len(text) <= 60_000
    assert "Left out to stay under 60,000 characters" in text
    assert "sendouts' samples" in text
    small = format_markdown(big_plan(2, 2))
    assert "Left out" not in small and small.count("<details>") == 2


def test_markdown_escapes_data_so_it_cannot_break_the_comment() -> None:
    plan = make_plan([desired(spec(), [entry("+16505550001", name=HOSTILE)])],
                     LedgerState(None, 0), PlanOptions(), now=NOW)
    text = format_markdown(plan)
    # outside code spans (where GitHub parses nothing) no HTML, mention or escape survives
    outside = re.sub(r"(`+) .*? \1", "", text)
    assert outside.count("</details>") == 1  # the renderer's own
    assert "@acme" not in outside and "\x1b" not in text
    row = next(line for line in text.splitlines() if line.startswith("| send |"))
    assert row.replace("\\|", "").count(" | ") == 4  # the data's `|` did not add a cell
    assert "+1650•••0001" in text and "+16505550001" not in text


def test_markdown_warns_about_drift_blocked_and_orphans() -> None:
    a = entry("+16505550001")
    b = entry("+16505550002", allow_multiple=True, sendout="multi")
    state = history(([a], "accepted"), ([b], "unknown"),
                    ([entry("+16505550003", sendout="gone")], "accepted"))
    plan = make_plan([desired(spec(), [entry("+16505550001", name="changed")]),
                      desired(spec("multi", allow_multiple=True), [b])],
                     state, PlanOptions(), now=NOW)
    text = format_markdown(plan)
    assert "drift&#58; 1 client received" in text
    assert "blocked&#58; 1 client" in text or "blocked&#58; 1 clients" in text
    assert "no longer declared" in text


def test_json_is_versioned_masked_and_lists_entries_with_actions() -> None:
    state = history(([entry("+16505550001")], "accepted"))
    plan = make_plan([desired(spec(), [entry("+16505550001"), entry("+16505550002")])],
                     state, PlanOptions(), now=NOW)
    doc = json.loads("".join(FORMATS["json"](plan, FormatOptions())))
    assert doc["format_version"] == 1 and doc["serial"] == 3
    s = doc["sendouts"][0]
    assert s["counts"]["send"] == 1 and s["counts"]["noop"] == 1
    assert [(e["action"], e["client"]) for e in s["entries"]] == [
        ("send", "+1650•••0002"), ("noop", "+1650•••0001")]
    shown = json.loads("".join(FORMATS["json"](plan, FormatOptions(show_recipients=True))))
    assert shown["sendouts"][0]["entries"][0]["client"] == "+16505550002"


def test_text_colours_only_when_asked_and_escapes_controls() -> None:
    plan = make_plan([desired(spec(), [entry("+16505550001", name=HOSTILE)])],
                     LedgerState(None, 0), PlanOptions(), now=NOW)
    plain = format_text(plan, details=True)
    assert "\x1b" not in plain and "\\u001b[2J" in plain
    assert "\x1b[32m" in format_text(plan, color=True)
