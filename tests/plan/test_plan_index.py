"""A plan against the compact folded ledger (ledger.keyindex, what a large ledger folds
into) equals the plan against the plain dict of KeyState, for random ledgers (hypothesis):
the bulk lookups (ledger.keyview.classify) decide exactly like reading each key."""

from __future__ import annotations

from dataclasses import astuple

from hypothesis import given, settings
from hypothesis import strategies as st

from connectly_declare.entry import Entry
from connectly_declare.ledger.base import Header, Intent, IntentEntry, Outcome, Record, Resolution
from connectly_declare.ledger.bulkfold import BulkFolder
from connectly_declare.ledger.fold import fold
from connectly_declare.ledger.keyindex import KeyIndex
from connectly_declare.plan.make import make_plan
from connectly_declare.plan.model import Plan, PlanOptions

from .conftest import AT, NOW, desired, entry, spec

CLIENTS = [f"+1650555{n:04d}" for n in range(6)] + ["16505550099"]
ERRORS = [None, {"code": "TEMPLATE_NOT_FOUND"}, {"message": "inferred: already received"}]


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[Record], list[Entry], bool]:
    multiple = draw(st.booleans())
    names = draw(st.lists(st.sampled_from(["Ana", "Bo"]), min_size=7, max_size=7))
    wanted = [entry(c, name=n, allow_multiple=multiple)
              for c, n in zip(CLIENTS, names, strict=True) if draw(st.booleans())]
    records: list[Record] = [Header(lineage="L", created_at=AT)]
    for n in range(draw(st.integers(0, 10))):
        if draw(st.integers(0, 5)) == 0:
            records.append(Resolution(
                "Welcome", draw(st.sampled_from(CLIENTS)), "welcome" if multiple else "",
                draw(st.sampled_from(["accepted", "rejected", "unknown", "unsent"])), "ana", AT))
            continue
        clients = draw(st.lists(st.sampled_from(CLIENTS), min_size=1, max_size=3, unique=True))
        sendout = draw(st.sampled_from(["welcome", "welcome", "old"]))
        fps = [entry(c, name=draw(st.sampled_from(["Ana", "Bo"])),
                     allow_multiple=multiple).fingerprint for c in clients]
        records.append(Intent(f"h{n}", AT, sendout, "Welcome", "v1",
                              "welcome" if multiple else "", {},
                              tuple(IntentEntry(c, f) for c, f in zip(clients, fps, strict=True))))
        status = draw(st.sampled_from(["accepted", "rejected", "partial", "unknown", "none"]))
        if status != "none":
            records.append(Outcome(f"h{n}", AT, status,  # type: ignore[arg-type]
                                   error=draw(st.sampled_from(ERRORS))))
    return records, wanted, multiple


def summary(plan: Plan) -> object:
    return ([(s.name, s.counts, s.notes, [(p.action, p.entry.client, p.reason)
                                          for p in s.samples]) for s in plan.sendouts],
            [(name, p.action, p.entry.client, p.reason) for name, p in
             ((s.name, p) for s, p in plan.iter_sends())],
            [astuple(o) for o in plan.orphans])


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_plan_against_the_index_equals_plan_against_the_dict(
        scenario: tuple[list[Record], list[Entry], bool]) -> None:
    records, wanted, multiple = scenario
    folder = BulkFolder(threshold=0)
    for record in records:
        folder.add(record)
    compact = folder.state()
    assert isinstance(compact.keys, KeyIndex)
    plans = [make_plan([desired(spec(allow_multiple=multiple), wanted)], state,
                       PlanOptions(samples=100), now=NOW)
             for state in (fold(records), compact)]
    assert summary(plans[0]) == summary(plans[1])
