"""`recover`: in-doubt allow_multiple keys re-sent once under allow_one, only where the ledger
holds no other possible delivery of the campaign to the client (plan/recovery.py)."""

from __future__ import annotations

from connectly_declare.apply.batching import make_batches
from connectly_declare.entry import Entry
from connectly_declare.ledger.base import (
    ALREADY_RECEIVED,
    Header,
    Intent,
    IntentEntry,
    LedgerState,
    Outcome,
    Record,
)
from connectly_declare.ledger.fold import fold
from connectly_declare.plan.make import make_plan
from connectly_declare.plan.model import Plan, PlanOptions

from .conftest import AT, NOW, desired, entry, history, spec

A, B, C = "+16505550001", "+16505550002", "+16505550003"


def plan_of(*items: object, state: LedgerState, recover: bool = True) -> Plan:
    return make_plan(items, state, PlanOptions(recover_in_doubt=recover),  # type: ignore[arg-type]
                     now=NOW)


def actions(plan: Plan) -> dict[tuple[str, str], str]:
    return {(s.name, p.entry.client): p.action for s in plan.sendouts for p in s.samples}


def multi(client: str, sendout: str = "promo", round_: int = 1) -> Entry:
    return entry(client, sendout=sendout, allow_multiple=True, round_=round_)


def test_an_in_doubt_key_with_no_other_delivery_is_recovered_under_allow_one() -> None:
    a, b = multi(A), multi(B)
    plan = plan_of(desired(spec("promo", allow_multiple=True), [a, b]),
                   state=history(([a], "unknown"), ([b], "partial")))
    assert actions(plan) == {("promo", A): "recover", ("promo", B): "recover"}
    assert plan.total("recover") == 2 and plan.has_changes
    assert plan.options["recover_in_doubt"] is True
    assert "allow_one" in plan.sendouts[0].to_send[0].reason
    # each goes alone, under allow_one, still as the sendout's key and in doubt
    batches = list(make_batches(plan.iter_sends(), batch_size=100))
    assert [len(b.entries) for b in batches] == [1, 1]
    assert all(b.options["if_duplicate_check_unspecified"] == "allow_one" and b.in_doubt
               and not b.allow_multiple and b.scope == "promo" for b in batches)


def test_without_the_option_they_stay_blocked_and_the_plan_counts_them() -> None:
    a, b = multi(A), multi(B, round_=2)
    state = history(([multi(B)], "accepted"), ([a], "unknown"), ([b], "unknown"))
    plan = plan_of(desired(spec("promo", allow_multiple=True), [a, b]),
                   state=state, recover=False)
    assert actions(plan) == {("promo", A): "blocked", ("promo", B): "blocked"}
    assert not plan.has_changes and plan.total("recover") == 0
    notes = plan.sendouts[0].notes
    assert any(n.startswith("recoverable: 1 of the blocked client has no other delivery")
               and "apply --recover-in-doubt" in n for n in notes), notes
    reasons = {p.entry.client: p.reason for p in plan.sendouts[0].samples}
    assert "recoverable" in reasons[A] and "recoverable" not in reasons[B]


def test_any_other_possible_delivery_keeps_it_blocked() -> None:
    # B: round 1 delivered, round 2 in doubt; C: in doubt here and accepted via an
    # allow_one sendout of the same campaign; A: in doubt in two sendouts at once.
    b2 = multi(B, round_=2)
    a_promo, a_other, c = multi(A), multi(A, sendout="other"), multi(C)
    c_one = entry(C, sendout="welcome")
    state = history(([multi(B)], "accepted"), ([b2], "unknown"),
                    ([c], "unknown"), ([c_one], "accepted"),
                    ([a_promo], "unknown"), ([a_other], "unknown"))
    plan = plan_of(desired(spec("promo", allow_multiple=True), [a_promo, b2, c]),
                   desired(spec("other", allow_multiple=True), [a_other]),
                   state=state)
    assert set(actions(plan).values()) == {"blocked"} and plan.total("recover") == 0


def test_a_rejection_saying_already_received_elsewhere_keeps_it_blocked() -> None:
    a = multi(A)
    records: list[Record] = [
        Header(lineage="L", created_at=AT),
        Intent(batch_id="b1", at=AT, sendout="welcome", campaign="Welcome", version="v1",
               scope="", options={}, entries=(IntentEntry(A, "f"),)),
        Outcome(batch_id="b1", at=AT, status="rejected",
                error={"code": ALREADY_RECEIVED, "message": "outside this ledger"}),
        Intent(batch_id="b2", at=AT, sendout="promo", campaign="Welcome", version="v1",
               scope="promo", options={}, entries=(IntentEntry(A, a.fingerprint),)),
    ]
    plan = plan_of(desired(spec("promo", allow_multiple=True), [a]), state=fold(records))
    assert actions(plan) == {("promo", A): "blocked"}


def test_another_sendout_sending_the_client_in_the_same_plan_holds_the_recovery_back() -> None:
    a = multi(A)
    fresh = multi(A, sendout="later")
    plan = plan_of(desired(spec("promo", allow_multiple=True), [a, multi(B)]),
                   desired(spec("later", allow_multiple=True), [fresh]),
                   state=history(([a], "unknown"), ([multi(B)], "unknown")))
    promo = plan.sendouts[1]
    assert promo.name == "promo" and promo.counts["recover"] == 1 and promo.counts["blocked"] == 1
    assert [(p.action, p.entry.client) for p in promo.to_send] == [("recover", B)]
    assert any("another sendout of this plan" in n for n in promo.notes)


def test_a_refused_recovery_leaves_the_key_in_doubt() -> None:
    a = multi(A)
    records: list[Record] = [
        Header(lineage="L", created_at=AT),
        Intent(batch_id="b0", at=AT, sendout="promo", campaign="Welcome", version="v1",
               scope="promo", options={}, entries=(IntentEntry(A, a.fingerprint),)),
        Intent(batch_id="r1", at=AT, sendout="promo", campaign="Welcome", version="v1",
               scope="promo", options={"if_duplicate_check_unspecified": "allow_one"},
               entries=(IntentEntry(A, a.fingerprint),)),
        Outcome(batch_id="r1", at=AT, status="rejected", http_status=404,
                error={"code": "ERROR_CODE_CAMPAIGN_NOT_FOUND", "message": "gone"}),
    ]
    state = fold(records)
    known = next(iter(state.keys.values()))
    assert known.status == "unknown" and "ERROR_CODE_CAMPAIGN_NOT_FOUND" in (known.error or "")
