"""The fold's one-pass path (an intent directly followed by its outcome) gives exactly the
states of the general path, for any sequence of records (hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from connectly_declare.ledger.base import Header, Record, Resolution
from connectly_declare.ledger.fold import fold

from .conftest import AT, intent, outcome

CLIENTS = ["+16505550001", "+16505550002", "+16505550003"]
HEADER = Header(lineage="L", created_at=AT)
BARRIER = Resolution(campaign="none", client="+10000000000", scope="", resolved_as="unsent",
                     by="x", at=AT)


@st.composite
def histories(draw: st.DrawFn) -> list[Record]:
    records: list[Record] = [HEADER]
    open_batches: list[str] = []
    for n in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(["intent", "outcome", "resolution"]))
        if kind == "intent" or (not open_batches and kind == "outcome"):
            batch = f"b{n}"
            clients = draw(st.lists(st.sampled_from(CLIENTS), min_size=1, max_size=4))
            records.append(intent(batch, clients, fp=draw(st.sampled_from(["x", "y"])),
                                  scope=draw(st.sampled_from(["", "promo"]))))
            open_batches.append(batch)
            if draw(st.booleans()):  # the usual case: its outcome right after it
                kind = "outcome"
        if kind == "outcome" and open_batches:
            batch = open_batches.pop(draw(st.integers(0, len(open_batches) - 1)))
            records.append(outcome(batch, draw(st.sampled_from(
                ["accepted", "rejected", "partial", "unknown"]))))
        elif kind == "resolution":
            records.append(Resolution(
                campaign="Welcome", client=draw(st.sampled_from(CLIENTS)),
                scope=draw(st.sampled_from(["", "promo"])), by="ana", at=AT,
                resolved_as=draw(st.sampled_from(["accepted", "rejected", "unknown", "unsent"]))))
    return records


@settings(max_examples=100, deadline=None)
@given(histories())
def test_one_pass_fold_equals_general_fold(records: list[Record]) -> None:
    general: list[Record] = []
    for record in records:
        general.append(record)
        general.append(BARRIER)  # never lets an intent meet its outcome directly
    fast, slow = fold(records), fold(general)
    assert {k: (s.status, s.fingerprint, s.accepted_fingerprint, s.batch_id, s.last_at,
                s.error, s.resolved_as) for k, s in fast.keys.items()} == \
        {k: (s.status, s.fingerprint, s.accepted_fingerprint, s.batch_id, s.last_at, s.error,
             s.resolved_as) for k, s in slow.keys.items()}
