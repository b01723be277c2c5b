"""The three renderers: Markdown stays under its cap and inert, JSON is versioned and
masked, text colours only when asked."""

from __future__ import annotations

import json
import re

from connectly_declare.ledger.base import LedgerState
from connectly_declare.plan.make import make_plan
from connectly_declare.plan.model import ACTIONS, Plan, PlanOptions
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
    assert re.search(r"[\d,]+ sample rows", text)
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


# --- fair budgets (issue 13) ---------------------------------------------------------------


def _plan_with(version_of_first: str = "v1", field_of_first: str = "Ana",
               sendouts: int = 5, per_sendout: int = 3) -> Plan:
    from dataclasses import replace

    items = []
    for s in range(sendouts):
        name = f"sendout-{s}"
        version = version_of_first if s == 0 else "v1"
        entries = [entry(f"+1650555{s:02d}{n:02d}", sendout=name, campaign=f"C{s}",
                         version=version, name=field_of_first if s == 0 else f"N{n}")
                   for n in range(per_sendout)]
        items.append(desired(replace(spec(name, campaign=f"C{s}"), version=version), entries))
    return make_plan(items, LedgerState(None, 0), PlanOptions(), now=NOW)


def _rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("| sendout\\-")]


def test_a_huge_version_label_is_capped_and_every_sendout_keeps_its_row() -> None:
    text = format_markdown(_plan_with(version_of_first="v" * 60_000))
    assert len(text) <= 60_000
    assert len(_rows(text)) == 5
    assert "… &#40;60,000 characters&#41;" in text
    assert "| **total** | |" in text and "Left out" not in text
    assert text.count("<details>") == 5  # and everyone's samples still fit


def test_a_huge_field_is_capped_and_does_not_hide_the_other_samples() -> None:
    text = format_markdown(_plan_with(field_of_first="F" * 100_000))
    assert len(text) <= 60_000
    assert text.count("<details>") == 5 and "Left out" not in text
    assert "… (100,000 characters)" in text
    assert max(len(line) for line in text.splitlines()) < 2_000


def test_totals_stay_when_rows_are_left_out_and_the_note_counts_in_good_english() -> None:
    plan = big_plan(600, 20)
    text = format_markdown(plan)
    assert len(text) <= 60_000
    total = [line for line in text.splitlines() if line.startswith("| **total** |")]
    rest = " | ".join("0" for a in ACTIONS if a != "send")
    assert total == [f"| **total** | | **{plan.total('send'):,}** | {rest} |"]
    singular_seen = False
    for limit in range(700, 3_000, 23):
        note = format_markdown(_plan_with(sendouts=3, per_sendout=4), limit=limit)
        assert len(note) <= limit
        assert not re.search(r"(?<![\d,])1 [a-z' ]*?s\b(?! left)", note.split("Left out")[-1]
                             if "Left out" in note else ""), note
        singular_seen |= bool(re.search(r"(?<![\d,])1 sample row\b", note))
    assert singular_seen


def test_caps_apply_to_text_too_but_json_keeps_values_whole() -> None:
    plan = _plan_with(version_of_first="v" * 5_000, field_of_first="F" * 5_000)
    text = format_text(plan, details=True)
    assert text.count("… (5,000 characters)") >= 2
    doc = json.loads("".join(FORMATS["json"](plan, FormatOptions())))
    assert doc["sendouts"][0]["version"] == "v" * 5_000
    assert doc["sendouts"][0]["entries"][0]["variables"]["name"] == "F" * 5_000
