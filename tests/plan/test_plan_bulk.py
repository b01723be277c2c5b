"""The plan diff's bulk path (plan.bulkdiff.bulk_diff: a chunk diffed with map() over C getters)
gives exactly the plan of the per-entry loop: counts, entries to send in order, samples,
notes, and the same refusals, over random ledgers and audiences that mix new, unchanged,
changed, foreign and doubtful keys, invalid entries, repeats and past schedules."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectly_declare.entry import Entry
from connectly_declare.ledger.base import Header, Intent, IntentEntry, Outcome, Record
from connectly_declare.ledger.fold import fold
from connectly_declare.plan import sendout_diff
from connectly_declare.plan.bulkdiff import bulk_diff
from connectly_declare.plan.make import make_plan
from connectly_declare.plan.model import Plan, PlanOptions, PlanRefused
from connectly_declare.plan.sendout_diff import SendoutDiff

from .conftest import AT, NOW, desired, entry, spec

CLIENTS = [f"+1650555{n:04d}" for n in range(12)] + ["+0123", "16505550000"]
SCHEDULES = [None, "2026-12-01T09:00:00+00:00", "2026-11-01T09:00:00+00:00", "tomorrow"]


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[Record], list[Entry], bool, int]:
    multiple = draw(st.booleans())
    wanted = [entry(draw(st.sampled_from(CLIENTS)), name=draw(st.sampled_from(["Ana", "Bo"])),
                    allow_multiple=multiple, scheduled_at=draw(st.sampled_from(SCHEDULES)))
              for _ in range(draw(st.integers(0, 30)))]
    records: list[Record] = [Header(lineage="L", created_at=AT)]
    for n in range(draw(st.integers(0, 10))):
        client = draw(st.sampled_from(CLIENTS[:12]))
        sendout = draw(st.sampled_from(["welcome", "welcome", "other"]))
        e = entry(client, sendout=sendout, name=draw(st.sampled_from(["Ana", "Bo"])),
                  allow_multiple=multiple)
        records.append(Intent(f"h{n}", AT, sendout, "Welcome", "v1", e.scope, {},
                              (IntentEntry(client, e.fingerprint),)))
        status = draw(st.sampled_from(["accepted", "accepted", "rejected", "unknown", "none"]))
        if status != "none":
            records.append(Outcome(f"h{n}", AT, status))  # type: ignore[arg-type]
    return records, wanted, multiple, draw(st.integers(0, 2))


def outcome(records: list[Record], wanted: list[Entry], multiple: bool,
            samples: int) -> Plan | list[str]:
    s = spec(allow_multiple=multiple, variables=("name",))
    try:
        return make_plan([desired(s, wanted)], fold(records),
                         PlanOptions(samples=samples), now=NOW)
    except PlanRefused as refused:
        return [str(p) for p in refused.problems]


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_bulk_path_plans_what_the_loop_plans(
        scenario: tuple[list[Record], list[Entry], bool, int]) -> None:
    records, wanted, multiple, samples = scenario
    taken: list[bool] = []
    real = bulk_diff

    def counted(diff: SendoutDiff, chunk: list[Entry], verdicts: list[int]) -> bool:
        taken.append(real(diff, chunk, verdicts))
        return taken[-1]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sendout_diff, "bulk_diff", counted)
        patch.setattr(sendout_diff, "_CHUNK", 4)  # many chunks, some bulk, some not
        bulk = outcome(records, wanted, multiple, samples)
        patch.setattr(sendout_diff, "bulk_diff", lambda *_: False)
        loop = outcome(records, wanted, multiple, samples)
    assert bulk == loop
    if isinstance(loop, Plan):
        assert [p.entry.source for _, p in bulk.iter_sends()] == \
            [p.entry.source for _, p in loop.iter_sends()]


def test_the_bulk_path_is_taken_for_a_plain_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without this, the equality above could hold because the bulk path never ran."""
    wanted = [entry(c) for c in CLIENTS[:8]]
    records: list[Record] = [Header(lineage="L", created_at=AT)]
    first = wanted[0]
    records += [Intent("h", AT, "welcome", "Welcome", "v1", "", {},
                       (IntentEntry(first.client, first.fingerprint),)),
                Outcome("h", AT, "accepted")]
    taken: list[bool] = []
    real = bulk_diff
    monkeypatch.setattr(sendout_diff, "_CHUNK", 4)
    monkeypatch.setattr(sendout_diff, "bulk_diff", lambda diff, c, v: taken.append(
        real(diff, c, v)) or taken[-1])
    plan = outcome(records, wanted, False, 0)
    assert isinstance(plan, Plan)
    assert taken == [True, True]
    assert plan.total("send") == 7 and plan.total("noop") == 1
    assert [p.entry.client for _, p in plan.iter_sends()] == CLIENTS[1:8]
