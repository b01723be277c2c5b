"""Properties of the plan that carry the promise (hypothesis over random histories):

- applying a plan's sends (all accepted) and planning again sends nothing;
- a key whose outcome is in doubt under allow_multiple is never sent (blocked);
- every declared entry gets exactly one action, and only send/resend/retry are kept.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from connectly_declare.entry import Entry
from connectly_declare.ledger.base import (
    Header,
    Intent,
    IntentEntry,
    LedgerState,
    Outcome,
    Record,
)
from connectly_declare.ledger.fold import fold
from connectly_declare.plan.make import make_plan
from connectly_declare.plan.model import SENDING_ACTIONS, Plan, PlanOptions

from .conftest import AT, NOW, desired, entry, spec

CLIENTS = [f"+1650555{n:04d}" for n in range(6)]


def apply_all(records: list[Record], plan: Plan) -> list[Record]:
    """What a fully successful apply appends."""
    out = list(records)
    for n, (s, planned) in enumerate(plan.iter_sends()):
        e = planned.entry
        batch = f"apply-{len(records)}-{n}"
        out.append(Intent(batch, AT, s.name, e.campaign, e.version, e.scope, s.options,
                          (IntentEntry(e.client, e.fingerprint),)))
        out.append(Outcome(batch, AT, "accepted"))
    return out


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[Record], list[Entry], bool]:
    multiple = draw(st.booleans())
    names = draw(st.lists(st.sampled_from(["Ana", "Bo"]), min_size=6, max_size=6))
    wanted = [entry(c, name=n, allow_multiple=multiple)
              for c, n in zip(CLIENTS, names, strict=True) if draw(st.booleans())]
    records: list[Record] = [Header(lineage="L", created_at=AT)]
    for n in range(draw(st.integers(0, 6))):
        client = draw(st.sampled_from(CLIENTS))
        e = entry(client, name=draw(st.sampled_from(["Ana", "Bo"])), allow_multiple=multiple)
        records.append(Intent(f"h{n}", AT, "welcome", "Welcome", "v1", e.scope, {},
                              (IntentEntry(client, e.fingerprint),)))
        status = draw(st.sampled_from(["accepted", "rejected", "partial", "unknown", "none"]))
        if status != "none":
            records.append(Outcome(f"h{n}", AT, status))  # type: ignore[arg-type]
    return records, wanted, multiple


def plan_of(records: list[Record], wanted: list[Entry], multiple: bool) -> Plan:
    return make_plan([desired(spec(allow_multiple=multiple), wanted)], fold(records),
                     PlanOptions(samples=100), now=NOW)


@settings(max_examples=150, deadline=None)
@given(scenarios())
def test_applied_plan_plans_nothing_and_doubtful_keys_are_never_sent(
        scenario: tuple[list[Record], list[Entry], bool]) -> None:
    records, wanted, multiple = scenario
    state: LedgerState = fold(records)
    plan = plan_of(records, wanted, multiple)
    s = plan.sendouts[0]
    assert sum(s.counts[a] for a in s.counts if a != "orphan") == len(wanted)
    assert all(p.action in SENDING_ACTIONS for p in s.to_send)
    assert len(s.to_send) == plan.sends
    sent = {p.entry.key for p in s.to_send}
    if multiple:
        doubtful = {k for k, v in state.keys.items() if v.status in ("unknown", "partial")}
        assert not sent & doubtful
    again = plan_of(apply_all(records, plan), wanted, multiple)
    assert again.sends == 0
