"""Each action of README.md's table ("Plan and the ledger"), and the guards a plan enforces."""

from __future__ import annotations

from dataclasses import replace

import pytest

from connectly_declare.entry import Entry, make_key
from connectly_declare.errors import Location, PlanError, StalePlan
from connectly_declare.ledger.base import (
    ALREADY_RECEIVED,
    Header,
    Intent,
    IntentEntry,
    LedgerState,
    Outcome,
)
from connectly_declare.ledger.fold import fold
from connectly_declare.plan.make import make_plan
from connectly_declare.plan.model import Plan, PlanOptions, check_fresh

from .conftest import AT, NOW, desired, entry, history, spec

A, B, C, D = "+16505550001", "+16505550002", "+16505550003", "+16505550004"


def plan_of(*items: object, state: LedgerState | None = None, **options: object) -> Plan:
    return make_plan(items, state or LedgerState(None, 0),  # type: ignore[arg-type]
                     PlanOptions(**options), now=NOW)  # type: ignore[arg-type]


def actions(plan: Plan) -> dict[str, str]:
    out = {}
    for s in plan.sendouts:
        for p in s.samples:
            out[p.entry.client] = p.action
    return out


def test_send_when_the_key_is_not_in_the_ledger() -> None:
    plan = plan_of(desired(spec(), [entry(A), entry(B)]))
    assert plan.total("send") == 2 and plan.has_changes
    assert [p.entry.client for _, p in plan.iter_sends()] == [A, B]
    assert plan.sendouts[0].audience_stats == {"recipients": 2}
    assert (plan.lineage, plan.serial) == (None, 0)


def test_noop_when_accepted_with_the_same_fingerprint() -> None:
    state = history(([entry(A)], "accepted"))
    plan = plan_of(desired(spec(), [entry(A), entry(B)]), state=state)
    assert plan.sendouts[0].counts["noop"] == 1 and plan.total("send") == 1
    assert actions(plan) == {A: "noop", B: "send"}
    assert [p.entry.client for _, p in plan.iter_sends()] == [B]


def test_drift_under_allow_one_sends_nothing_and_warns() -> None:
    state = history(([entry(A)], "accepted"))
    plan = plan_of(desired(spec(), [entry(A, name="Anna")]), state=state)
    assert actions(plan) == {A: "drift"} and not plan.has_changes
    assert any(n.startswith("drift: 1 client received 'Welcome'") for n in
               plan.sendouts[0].notes)


def test_resend_under_allow_multiple_when_the_fingerprint_changed() -> None:
    old = entry(A, allow_multiple=True, round_=1)
    state = history(([old], "accepted"))
    s = spec(allow_multiple=True)
    plan = plan_of(desired(s, [entry(A, allow_multiple=True, round_=2)]), state=state)
    assert actions(plan) == {A: "resend"} and plan.total("resend") == 1
    same = plan_of(desired(s, [old]), state=state)
    assert actions(same) == {A: "noop"}


@pytest.mark.parametrize("status", ["rejected", "unknown", "partial", "none"])
def test_retry_after_rejection_or_unknown_under_allow_one(status: str) -> None:
    state = history(([entry(A)], status))
    plan = plan_of(desired(spec(), [entry(A)]), state=state)
    assert actions(plan) == {A: "retry"} and plan.total("retry") == 1
    assert plan.sendouts[0].to_send[0].reason.startswith(
        "rejected before" if status == "rejected" else "outcome")


def test_retry_after_rejection_under_allow_multiple() -> None:
    e = entry(A, allow_multiple=True)
    plan = plan_of(desired(spec(allow_multiple=True), [e]), state=history(([e], "rejected")))
    assert actions(plan) == {A: "retry"}


@pytest.mark.parametrize("status", ["unknown", "partial", "none"])
def test_blocked_when_unknown_under_allow_multiple(status: str) -> None:
    e = entry(A, allow_multiple=True)
    plan = plan_of(desired(spec(allow_multiple=True), [e, entry(B, allow_multiple=True)]),
                   state=history(([e], status)))
    assert actions(plan) == {A: "blocked", B: "send"}
    assert [p.entry.client for _, p in plan.iter_sends()] == [B]
    assert any("state resolve" in n for n in plan.sendouts[0].notes)


def test_resend_ending_unknown_blocks_even_though_earlier_delivery_is_known() -> None:
    first, second = entry(A, allow_multiple=True), entry(A, allow_multiple=True, round_=2)
    state = history(([first], "accepted"), ([second], "unknown"))
    plan = plan_of(desired(spec(allow_multiple=True), [second]), state=state)
    assert actions(plan) == {A: "blocked"}


def test_orphan_when_no_longer_declared() -> None:
    state = history(([entry(A), entry(B)], "accepted"),
                    ([entry(C, sendout="gone", campaign="Old")], "accepted"))
    plan = plan_of(desired(spec(), [entry(A)]), state=state)
    assert plan.sendouts[0].counts["orphan"] == 1
    assert [(o.sendout, o.campaign, o.count) for o in plan.orphans] == [
        ("gone", "Old", 1), ("welcome", "Welcome", 1)]
    assert any("via sendout gone, which is no longer declared" in w for w in plan.warnings)
    assert not plan.has_changes


def test_disabled_sendout_plans_nothing_and_its_keys_are_not_orphans() -> None:
    state = history(([entry(A)], "accepted"))
    plan = plan_of(desired(spec(enabled=False), [entry(A), entry(B)]), state=state)
    assert plan.orphans == () and not plan.has_changes
    assert plan.sendouts[0].enabled is False


def test_client_who_received_the_campaign_via_another_sendout_is_a_noop_naming_it() -> None:
    state = history(([entry(A, sendout="launch")], "accepted"))
    plan = plan_of(desired(spec(), [entry(A)]), state=state)
    s = plan.sendouts[0]
    assert s.counts["noop"] == 1
    assert s.samples[0].reason == "already received via sendout launch"
    assert any("already received 'Welcome' via sendout launch" in n for n in s.notes)


def test_two_allow_one_sendouts_sending_to_the_same_clients_is_a_plan_error() -> None:
    one = desired(spec("a-promo"), [entry(A, sendout="a-promo"), entry(B, sendout="a-promo")])
    two = desired(spec("b-promo", location=Location("sendouts.yaml", 12)),
                  [entry(B, sendout="b-promo"), entry(A, sendout="b-promo"),
                   entry(C, sendout="b-promo")])
    with pytest.raises(PlanError) as err:
        plan_of(one, two)
    assert str(err.value).startswith(
        "sendouts.yaml:12: sendouts a-promo and b-promo would both send campaign 'Welcome' "
        "to the same 2 clients under allow_one")


def test_a_client_twice_in_one_sendout_is_refused() -> None:
    with pytest.raises(PlanError, match="holds 1 client more than once"):
        plan_of(desired(spec(), [entry(A), entry(A)]))


def test_targets_limit_the_plan_and_its_orphans() -> None:
    state = history(([entry(C, sendout="gone")], "accepted"))
    plan = plan_of(desired(spec("a"), [entry(A, sendout="a")]),
                   desired(spec("b"), [entry(B, sendout="b")]), state=state, targets=("b",))
    assert [s.name for s in plan.sendouts] == ["b"] and plan.orphans == ()
    with pytest.raises(PlanError, match="--target names no sendout: nope"):
        plan_of(desired(spec("a"), []), targets=("nope",))


def test_max_recipients_of_the_run_and_of_the_sendout() -> None:
    entries = [entry(x) for x in (A, B, C)]
    assert plan_of(desired(spec(), entries), max_recipients=3).total("send") == 3
    with pytest.raises(PlanError, match="would send 3 entries, more than --max-recipients 2"):
        plan_of(desired(spec(), entries), max_recipients=2)
    with pytest.raises(PlanError, match="would send 3 entries, more than its max_recipients 1"):
        plan_of(desired(spec(max_recipients=1), entries))
    # already-sent entries do not count against the guard
    state = history(([entry(A), entry(B)], "accepted"))
    assert plan_of(desired(spec(max_recipients=1), entries), state=state).total("send") == 1


def test_past_schedule_is_an_error_unless_allowed() -> None:
    past = [entry(A, scheduled_at="2026-11-01T09:00:00+01:00")]
    with pytest.raises(PlanError, match=r"schedule 2026-11-01T09:00:00\+01:00 is in the past"):
        plan_of(desired(spec(), past))
    assert plan_of(desired(spec(), past), allow_past_schedule=True).total("send") == 1
    future = [entry(A, scheduled_at="2026-12-01T09:00:00+00:00")]
    assert plan_of(desired(spec(), future)).total("send") == 1
    # once sent, a passed schedule is no error: nothing would be sent
    assert plan_of(desired(spec(), past), state=history((past, "accepted"))).total("noop") == 1


def test_all_guard_failures_are_reported_at_once() -> None:
    entries = [entry(A, scheduled_at="2026-11-01T09:00:00+00:00"), entry(B)]
    with pytest.raises(PlanError) as err:
        plan_of(desired(spec(max_recipients=1), entries), max_recipients=1)
    assert len(err.value.problems) == 3


def test_check_fresh_refuses_a_plan_when_the_ledger_moved_on() -> None:
    state = history(([entry(A)], "accepted"))
    plan = plan_of(desired(spec(), [entry(B)]), state=state)
    assert (plan.lineage, plan.serial) == ("L1", 3)
    check_fresh(plan, state)
    with pytest.raises(StalePlan, match="at serial 3, but the ledger is now L1 at serial 4"):
        check_fresh(plan, replace(state, serial=4))
    with pytest.raises(StalePlan):
        check_fresh(plan, replace(state, lineage="L2"))


def test_key_is_campaign_and_client_under_allow_one() -> None:
    # a sendout renamed under allow_one keeps its history (noop), under allow_multiple not
    state = history(([entry(A, sendout="old")], "accepted"))
    assert state.keys[make_key("Welcome", A)].sendout == "old"
    assert plan_of(desired(spec(), [entry(A)]), state=state).total("noop") == 1


def test_orphans_are_exact_when_two_allow_one_sendouts_share_a_campaign() -> None:
    state = history(([entry(A, sendout="a"), entry(C, sendout="a")], "accepted"),
                    ([entry(B, sendout="b")], "accepted"))
    plan = plan_of(desired(spec("a"), [entry(A, sendout="a")]),
                   desired(spec("b"), [entry(B, sendout="b"), entry(A, sendout="b")]),
                   state=state)
    assert [(o.sendout, o.count) for o in plan.orphans] == [("a", 1)]
    assert plan.sendouts[1].counts["noop"] == 2  # A already received via sendout a
    assert not plan.has_changes


def test_orphans_of_a_sendout_whose_campaign_changed_name_the_old_campaign() -> None:
    state = history(([entry(A), entry(B)], "accepted"))
    plan = plan_of(desired(spec(campaign="Welcome 2"), [entry(A, campaign="Welcome 2")]),
                   state=state)
    assert [(o.sendout, o.campaign, o.count) for o in plan.orphans] == [
        ("welcome", "Welcome", 2)]
    assert plan.total("send") == 1


def test_desired_may_be_plain_spec_and_entries_pairs() -> None:
    plan = make_plan([(spec(), iter([entry(A)]))], LedgerState(None, 0), PlanOptions(), now=NOW)
    assert plan.total("send") == 1


def rejected_state(error: dict[str, str] | None, *, http_status: int | None = 200,
                   entries: list[Entry] | None = None) -> LedgerState:
    """A ledger where A and B were sent in one batch and rejected with `error`."""
    entries = entries or [entry(A), entry(B)]
    first = entries[0]
    return fold([
        Header(lineage="L1", created_at=AT, business_id="biz"),
        Intent(batch_id="b0", at=AT, sendout=first.sendout, campaign=first.campaign,
               version=first.version, scope=first.scope, options={},
               entries=tuple(IntentEntry(e.client, e.fingerprint) for e in entries)),
        Outcome(batch_id="b0", at=AT, status="rejected", rejected_count=len(entries),
                http_status=http_status, error=error),
    ])


NOT_FOUND = {"code": "ERROR_CODE_CAMPAIGN_NOT_FOUND", "message": "Campaign not found"}


@pytest.mark.parametrize(("error", "http_status"), [
    # received outside this ledger: a retry would be rejected the same way on every run
    ({"code": ALREADY_RECEIVED, "message": "already received"}, 200),
    (NOT_FOUND, 404),
    ({"code": "ERROR_CODE_CAMPAIGN_NOT_FINALIZED", "message": "Campaign is not finalized"}, 409),
    ({"code": "ERROR_CODE_MALFORMED_REQUEST", "message": "entries: bad"}, 400),
    # an invalid entry that was never in doubt
    ({"code": "ERROR_CODE_CAMPAIGN_ENTRY_INVALID", "message": "Campaign entry is invalid"}, 200),
], ids=["already-received", "404", "409", "400", "entry-invalid"])
def test_a_permanent_rejection_is_failed_not_an_endless_retry(
        error: dict[str, str], http_status: int) -> None:
    plan = plan_of(desired(spec(), [entry(A), entry(B)]),
                   state=rejected_state(error, http_status=http_status))
    s = plan.sendouts[0]
    assert s.counts["failed"] == 2 and not plan.has_changes
    # the server's own words, and what would send it again, in the reason and the notes
    assert error["code"] in s.samples[0].reason and error["message"] in s.samples[0].reason
    assert "--retry-failed welcome" in s.samples[0].reason
    [note] = [n for n in s.notes if n.startswith("failed: 2 clients")]
    assert f"2 × {error['code']}" in note


@pytest.mark.parametrize(("error", "http_status"), [
    ({"code": "CLIENT_NOT_SENT", "message": "could not reach api.example"}, None),
    ({"code": "ERROR_CODE_INVALID_CREDENTIALS", "message": "bad key"}, 401),
    ({"code": "ERROR_CODE_RATE_LIMITED", "message": "slow down"}, 429),
    (None, None),  # a ledger from before errors were kept: retried, as it expected
], ids=["not-sent", "401", "429", "no-error"])
def test_a_transient_rejection_is_retried(error: dict[str, str] | None,
                                          http_status: int | None) -> None:
    plan = plan_of(desired(spec(), [entry(A), entry(B)]),
                   state=rejected_state(error, http_status=http_status))
    assert plan.sendouts[0].counts["retry"] == 2 and plan.has_changes


def test_failed_is_sent_again_on_request_or_when_its_content_changes() -> None:
    state = rejected_state(NOT_FOUND, http_status=404)
    items = desired(spec(), [entry(A), entry(B)])
    assert plan_of(items, state=state, retry_failed=True).sendouts[0].counts["retry"] == 2
    named = plan_of(items, state=state, retry_failed=True, retry_failed_sendouts=("welcome",))
    assert named.sendouts[0].counts["retry"] == 2
    other = plan_of(items, state=state, retry_failed=True, retry_failed_sendouts=("other",))
    assert other.sendouts[0].counts["failed"] == 2
    changed = plan_of(desired(spec(), [entry(A, name="Anna"), entry(B)]), state=state)
    assert (changed.sendouts[0].counts["retry"], changed.sendouts[0].counts["failed"]) == (1, 1)
    # under allow_multiple the same rule holds
    multi = [entry(A, allow_multiple=True), entry(B, allow_multiple=True)]
    plan = plan_of(desired(spec(allow_multiple=True), multi),
                   state=rejected_state(NOT_FOUND, http_status=404, entries=multi))
    assert plan.sendouts[0].counts["failed"] == 2


def test_an_entry_the_server_would_refuse_as_invalid_is_failed_and_never_sent() -> None:
    bad_client = replace(entry(A), client="+1(650) 555")
    wrong_vars = entry(B)  # {"name": ...} where the version needs name and city
    bad_time = replace(entry(C), variables={"name": "Ana", "city": "Lima"},
                       scheduled_at="tomorrow")
    plan = plan_of(desired(spec(variables=("city", "name")),
                           [bad_client, wrong_vars, bad_time]))
    s = plan.sendouts[0]
    assert s.counts["failed"] == 3 and not plan.has_changes
    reasons = {p.entry.client: p.reason for p in s.samples}
    assert "not an E.164" in reasons["+1(650) 555"]
    assert "missing city" in reasons[B]
    assert "scheduledAt" in reasons[C]
    ok = plan_of(desired(spec(variables=("name",)), [entry(A)]))
    assert ok.total("send") == 1


def test_an_inferred_acceptance_is_a_noop_with_its_reason() -> None:
    first = entry(A)
    state = fold([
        Header(lineage="L1", created_at=AT, business_id="biz"),
        Intent(batch_id="b0", at=AT, sendout="welcome", campaign="Welcome", version="v1",
               scope="", options={}, entries=(IntentEntry(A, first.fingerprint),)),
        Outcome(batch_id="b0", at=AT, status="accepted", rejected_count=1, http_status=200,
                error={"message": "inferred: already received: the earlier attempt's outcome "
                                  "was unknown"}),
    ])
    assert state.keys[first.key].status == "accepted"
    assert state.keys[first.key].error is not None
    assert state.keys[first.key].error.startswith("inferred: already received")
    plan = plan_of(desired(spec(), [first, entry(B)]), state=state)
    s = plan.sendouts[0]
    assert (s.counts["noop"], s.counts["send"]) == (1, 1)
    [noop] = [p for p in s.samples if p.action == "noop"]
    assert noop.reason.startswith("inferred: already received")
    assert any("1 client counted as received by inference" in n for n in s.notes)
