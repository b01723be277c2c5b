"""A plan to show only (`make_plan(keep=False)`, what `connectly-declare plan` makes when it
neither saves the plan nor lists its entries) counts its entries to send instead of
keeping them (plan.counted), and shows exactly what the kept plan shows: the same counts,
samples, notes, timing, problems and output. Reading its entries raises; a sendout whose
entries a post-pass reads (frequency caps, --recover-in-doubt, local schedules and quiet
hours) keeps them anyway."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectly_declare.commands.plan import PlanRequest, ShowRequest, keeps_entries
from connectly_declare.entry import Entry
from connectly_declare.ledger.base import Header, Intent, IntentEntry, Outcome, Record
from connectly_declare.ledger.fold import fold
from connectly_declare.plan.counted import CountedSends, EntriesNotKept
from connectly_declare.plan.make import keeps, make_plan
from connectly_declare.plan.model import Plan, PlannedEntry, PlanOptions, PlanRefused
from connectly_declare.plan.spool import MEMORY_ENV
from connectly_declare.report.format import format_markdown, format_text

from .conftest import AT, NOW, desired, entry, spec

CLIENTS = [f"+1650555{n:04d}" for n in range(10_000)]


def planned(n: int) -> PlannedEntry:
    return PlannedEntry("send", entry(CLIENTS[n]))


def test_counted_sends_count_and_refuse_every_read() -> None:
    sends = CountedSends([planned(0)])
    sends.append(planned(1))
    sends.extend([planned(2), planned(3)])
    sends.extend(planned(n) for n in range(4, 7))  # any iterable, counted as it goes
    sends.add(5)
    assert len(sends) == 12 and sends and sends.on_disk == 0
    assert not CountedSends()
    reads: list[Any] = [
        lambda: iter(sends), lambda: list(sends), sends.rows, sends.client_chunks,
        lambda: sends.field_chunks("client"), lambda: sends.rows_at([0]),
        lambda: sends.without(bytes(12)), lambda: sends[0], lambda: sends == [],
    ]
    for read in reads:
        with pytest.raises(EntriesNotKept, match="12 entries to send without keeping"):
            read()
    assert "not kept" in repr(sends)


def plans(desired_: list[Any], state: Any, options: PlanOptions) -> tuple[Plan, Plan]:
    return (make_plan(desired_, state, options, now=NOW),
            make_plan(desired_, state, options, now=NOW, keep=False))


def assert_shown_alike(kept: Plan, counted: Plan) -> None:
    """Everything but the entries to send is equal, and so is every output that does not
    list them."""
    assert kept.orphans == counted.orphans and kept.warnings == counted.warnings
    for a, b in zip(kept.sendouts, counted.sendouts, strict=True):
        assert len(a.to_send) == len(b.to_send) == a.sends
        assert dataclasses.replace(a, to_send=()) == dataclasses.replace(b, to_send=())
    for show in (False, True):
        assert format_text(kept, show_recipients=show) == format_text(counted,
                                                                      show_recipients=show)
    assert format_markdown(kept) == format_markdown(counted)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[Record], list[Entry], bool, int]:
    """Up to 9,000 recipients (chunks of 4,096 go through plan.bulkdiff once an action's
    samples are full), a ledger of accepted (same or other content), rejected, partial,
    in-doubt and unanswered sends of some of them."""
    multiple = draw(st.booleans())
    count = draw(st.sampled_from([0, 5, 4_100, 9_000]))
    wanted = [entry(c, allow_multiple=multiple) for c in CLIENTS[:count]]
    records: list[Record] = [Header(lineage="L", created_at=AT)]
    statuses = ["accepted", "accepted-other", "rejected", "partial", "unknown", "none"]
    for n, status in enumerate(draw(st.lists(st.sampled_from(statuses), max_size=6))):
        start = draw(st.integers(0, max(count - 1, 0)))
        batch = wanted[start:start + draw(st.integers(1, 3_000))] or [entry(CLIENTS[0])]
        other = status == "accepted-other"
        records.append(Intent(f"h{n}", AT, "welcome", "Welcome", "v1", batch[0].scope, {},
                              tuple(IntentEntry(e.client, "0" * 32 if other else e.fingerprint)
                                    for e in batch)))
        if status != "none":
            records.append(Outcome(f"h{n}", AT, "accepted" if other else status,  # type: ignore[arg-type]
                                   sendout_id="sid"))
    return records, wanted, multiple, draw(st.sampled_from([1, 3, 100]))


@settings(max_examples=40, deadline=None)
@given(scenarios())
def test_a_counted_plan_shows_what_the_kept_plan_shows(
        scenario: tuple[list[Record], list[Entry], bool, int]) -> None:
    records, wanted, multiple, samples = scenario
    kept, counted = plans([desired(spec(allow_multiple=multiple), wanted)], fold(records),
                          PlanOptions(samples=samples))
    assert_shown_alike(kept, counted)
    (k,), (c,) = kept.sendouts, counted.sendouts
    assert isinstance(c.to_send, CountedSends) and not isinstance(k.to_send, CountedSends)
    if c.sends:
        with pytest.raises(EntriesNotKept):
            list(counted.iter_sends())


def test_post_passes_that_read_the_entries_keep_them() -> None:
    """Frequency caps and --recover-in-doubt keep every sendout's entries; a local
    schedule or quiet hours keep that sendout's only. Each is an equal plan."""
    people = [entry(c) for c in CLIENTS[:50]]
    others = [entry(c, sendout="other", campaign="Other") for c in CLIENTS[:50]]
    state = fold([Header(lineage="L", created_at=AT)])
    timed = spec("other", campaign="Other", timed=True)
    kept, counted = plans([desired(spec(), people), desired(timed, others)], state,
                          PlanOptions())
    assert {s.name: isinstance(s.to_send, CountedSends) for s in counted.sendouts} == \
        {"welcome": True, "other": False}
    timed_kept, timed_counted = (next(s for s in p.sendouts if s.name == "other")
                                 for p in (kept, counted))
    assert len(timed_kept.to_send) == 50
    assert list(timed_counted.to_send) == list(timed_kept.to_send)
    assert_shown_alike(kept, counted)
    for options in (PlanOptions(frequency_caps=((1, 86_400, "1 per 1d"),)),
                    PlanOptions(recover_in_doubt=True)):
        assert all(keeps(s, options) for s in (spec(), timed))
        kept, counted = plans([desired(spec(), people), desired(timed, others)], state,
                              options)
        assert not any(isinstance(s.to_send, CountedSends) for s in counted.sendouts)
        assert counted == kept
    assert not keeps(spec(), PlanOptions()) and keeps(timed, PlanOptions())


def test_guards_of_the_whole_plan_refuse_a_counted_plan_alike() -> None:
    """A client twice in a sendout, two allow_one sendouts of one campaign claiming one
    person, --max-recipients: the same refusal, kept or counted."""
    twice = [entry(c) for c in CLIENTS[:5_000]] + [entry(CLIENTS[7])]
    shared = [entry(c, sendout="second") for c in CLIENTS[4_000:4_100]]
    state = fold([Header(lineage="L", created_at=AT)])
    cases = [
        ([desired(spec(), twice)], PlanOptions()),
        ([desired(spec(), twice[:5_000]), desired(spec("second"), shared)], PlanOptions()),
        ([desired(spec(), twice[:5_000])], PlanOptions(max_recipients=4_999)),
    ]
    for wanted, options in cases:
        refusals = []
        for keep in (True, False):
            with pytest.raises(PlanRefused) as refused:
                make_plan(wanted, state, options, now=NOW, keep=keep)
            refusals.append(refused.value.problems)
        assert refusals[0] == refusals[1]


def test_the_plan_command_keeps_the_entries_only_when_it_reads_them(tmp_path: Path) -> None:
    def request(**show: Any) -> PlanRequest:
        return PlanRequest(start=tmp_path, show=ShowRequest(**show))

    assert not keeps_entries(request())
    assert not keeps_entries(request(fmt="markdown", detailed_exitcode=True))
    assert keeps_entries(request(fmt="json"))
    assert keeps_entries(request(details=True))
    assert keeps_entries(dataclasses.replace(request(), out_file=tmp_path / "p.plan"))


# -- through the real CLI -----------------------------------------------------------------

CONFIG = "version: 1\nbusiness_id: biz-1\n"
MANIFESTS = """\
kind: Campaign
name: promo
versions: [{version: v1, variables: [name]}]
---
kind: Audience
name: people
sources: [{csv: people.csv}]
---
kind: Sendout
name: spring
campaign: promo
version: v1
audience: people
schedule: 2030-01-02T12:00:00+00:00
options: {if_duplicate_check_unspecified: allow_multiple}
variables: {name: "{{ recipient.name }}"}
"""


def cli(ws: Path, *args: str, env: dict[str, str] | None = None,
        ok: bool = True) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DECLARE_")}
    environ.update(env or {}, NO_COLOR="1", DECLARE_TEST_NOW="2029-12-31T12:00:00+00:00")
    result = subprocess.run([sys.executable, "-m", "connectly_declare", "-C", str(ws), *args],
                            capture_output=True, text=True, env=environ, timeout=120)
    if ok:
        assert result.returncode in (0, 2), result.stderr
    return result


def outputs(ws: Path, *extra: str, env: dict[str, str]) -> Iterator[object]:
    for fmt in ("text", "markdown"):
        got = cli(ws, "plan", "--format", fmt, "--detailed-exitcode", "--out-comment",
                  str(ws / f"comment-{fmt}.md"), *extra, env=env)
        yield got.returncode, got.stdout, (ws / f"comment-{fmt}.md").read_text("utf-8")


@pytest.mark.slow  # CLI subprocesses
def test_the_cli_shows_the_same_plan_without_keeping_its_entries(tmp_path: Path) -> None:
    """`plan` shows what `plan --out` shows; with every entry to send spilled at once
    (DECLARE_TEST_SPOOL_MEMORY=0) and no temporary folder to spill to, `plan --out` (and
    `--details`) fail to keep them, and `plan` succeeds: it never kept one."""
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "declare.yaml").write_text(CONFIG, encoding="utf-8")
    (ws / "manifests.yaml").write_text(textwrap.dedent(MANIFESTS), encoding="utf-8")
    (ws / "people.csv").write_text("phone,name\n" + "".join(
        f"{c},P{n}\n" for n, c in enumerate(CLIENTS[:300])), encoding="utf-8")
    saved = tmp_path / "saved.plan.gz"
    spill = {MEMORY_ENV: "0"}
    kept = list(outputs(ws, "--out", str(saved), env=spill))
    assert list(outputs(ws, env=spill)) == kept
    assert kept[0][0] == 2 and "300 send" in str(kept[0][1])
    nowhere = {**spill, "TMPDIR": str(tmp_path / "missing")}
    assert list(outputs(ws, env=nowhere)) == kept
    for args in (("--out", str(tmp_path / "again.plan.gz")), ("--details",)):
        failed = cli(ws, "plan", *args, env=nowhere, ok=False)
        assert failed.returncode == 1
        assert "cannot keep the entries to send on disk" in failed.stderr
