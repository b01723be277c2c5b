"""Folding: one status per key from intents, outcomes and resolutions (README.md, "The ledger")."""

from __future__ import annotations

from connectly_declare.entry import make_key
from connectly_declare.ledger.base import Header, Record, Resolution
from connectly_declare.ledger.fold import fold

from .conftest import AT, intent, outcome

HEADER = Header(lineage="L", created_at=AT, business_id="biz1")
A, B = "+16505550001", "+16505550002"
KA, KB = make_key("Welcome", A), make_key("Welcome", B)


def resolution(client: str, as_: str, scope: str = "") -> Resolution:
    return Resolution(campaign="Welcome", client=client, scope=scope,
                      resolved_as=as_, by="ana@laptop", at=AT)  # type: ignore[arg-type]


def statuses(records: list[Record]) -> dict[str, str]:
    return {k: s.status for k, s in fold([HEADER, *records]).keys.items()}


def test_intent_without_outcome_is_unknown() -> None:
    assert statuses([intent("b1", [A, B])]) == {KA: "unknown", KB: "unknown"}


def test_outcome_statuses_apply_to_every_key_of_the_batch() -> None:
    for status in ("accepted", "rejected", "partial", "unknown"):
        assert statuses([intent("b1", [A, B]), outcome("b1", status)]) == {KA: status, KB: status}


def test_state_keeps_times_fingerprint_sendout_id_and_error() -> None:
    state = fold([HEADER, intent("b1", [A], fp="x"),
                  outcome("b1", "rejected", http_status=200,
                          error={"code": "ERROR_CODE_CAMPAIGN_ENTRY_INVALID", "message": "m"}),
                  intent("b2", [A], fp="y"), outcome("b2", "accepted", sendout_id="s-9")])
    ks = state.keys[KA]
    assert (ks.status, ks.fingerprint, ks.batch_id, ks.sendout_id, ks.error) == (
        "accepted", "y", "b2", "s-9", None)
    assert ks.accepted_fingerprint == "y"
    assert state.lineage == "L" and state.serial == 5 and state.business_id == "biz1"


def test_rejection_error_is_summarised_code_first() -> None:
    state = fold([HEADER, intent("b1", [A]), outcome(
        "b1", "rejected", error={"code": "ERROR_CODE_CAMPAIGN_ENTRY_INVALID", "message": "no"})])
    assert state.keys[KA].error == "ERROR_CODE_CAMPAIGN_ENTRY_INVALID: no"


def test_allow_one_key_once_accepted_stays_accepted() -> None:
    # the server delivers a campaign to a client at most once under allow_one, so a later
    # attempt ending unknown or rejected cannot undo the first delivery
    for later in ("unknown", "rejected"):
        state = fold([HEADER, intent("b1", [A], fp="x"), outcome("b1", "accepted"),
                      intent("b2", [A], fp="y"), outcome("b2", later)])
        assert state.keys[KA].status == "accepted"
        assert state.keys[KA].fingerprint == "x"


def test_allow_multiple_resend_ending_unknown_is_unknown_but_remembers_delivery() -> None:
    key = make_key("Welcome", A, "promo")
    state = fold([HEADER, intent("b1", [A], fp="x", scope="promo"), outcome("b1", "accepted"),
                  intent("b2", [A], fp="y", scope="promo")])
    ks = state.keys[key]
    assert (ks.status, ks.fingerprint, ks.accepted_fingerprint) == ("unknown", "y", "x")


def test_resolution_accepted_marks_latest_attempt_delivered() -> None:
    state = fold([HEADER, intent("b1", [A], fp="x"), resolution(A, "accepted")])
    ks = state.keys[KA]
    assert (ks.status, ks.accepted_fingerprint, ks.resolved_by) == ("accepted", "x", "ana@laptop")


def test_resolution_unsent_removes_a_never_delivered_key() -> None:
    assert statuses([intent("b1", [A, B]), outcome("b1", "partial"), resolution(A, "unsent")]) \
        == {KB: "partial"}


def test_resolution_unsent_falls_back_to_the_earlier_delivery() -> None:
    key = make_key("Welcome", A, "promo")
    state = fold([HEADER, intent("b1", [A], fp="x", scope="promo"), outcome("b1", "accepted"),
                  intent("b2", [A], fp="y", scope="promo"),
                  resolution(A, "unsent", scope="promo")])
    assert (state.keys[key].status, state.keys[key].fingerprint) == ("accepted", "x")


def test_superseded_outcome_does_not_overwrite_a_later_attempt() -> None:
    state = fold([HEADER, intent("b1", [A], fp="x", scope="s"),
                  intent("b2", [A], fp="y", scope="s"), outcome("b1", "rejected")])
    assert state.keys[make_key("Welcome", A, "s")].status == "unknown"


def test_outcome_without_intent_is_a_warning() -> None:
    state = fold([HEADER, outcome("nope", "accepted")])
    assert state.keys == {} and "batch nope" in state.warnings[0]


def test_scopes_are_separate_histories() -> None:
    state = fold([HEADER, intent("b1", [A], scope=""), outcome("b1", "accepted"),
                  intent("b2", [A], scope="promo")])
    assert state.keys[KA].status == "accepted"
    assert state.keys[make_key("Welcome", A, "promo")].status == "unknown"


def test_unsent_while_in_flight_then_accepted_brings_the_key_back() -> None:
    # the person said "not delivered", then the server's late answer says it was: trust it
    state = fold([HEADER, intent("b1", [A, B]), resolution(A, "unsent"),
                  outcome("b1", "accepted", sendout_id="s-1")])
    assert state.keys[KA].status == "accepted" and state.keys[KA].accepted_fingerprint == "f1"
    assert state.keys[KB].status == "accepted"
    rejected = fold([HEADER, intent("b1", [A]), resolution(A, "unsent"),
                     outcome("b1", "rejected")])
    assert KA not in rejected.keys


def test_resolution_rejected_and_unknown_overrule_any_status_and_keep_the_reason() -> None:
    settled = Resolution(campaign="Welcome", client=A, scope="", resolved_as="rejected",
                         by="ana@laptop", at=AT, reason="bounced")
    state = fold([HEADER, intent("b1", [A, B]), outcome("b1", "accepted"), settled,
                  Resolution(campaign="Welcome", client=B, scope="", resolved_as="unknown",
                             by="ana@laptop", at=AT, reason="not sure")])
    a, b = state.keys[KA], state.keys[KB]
    assert (a.status, a.resolved_as, a.resolution_reason, a.resolved_by) == (
        "rejected", "rejected", "bounced", "ana@laptop")
    assert (b.status, b.resolved_as, b.resolution_reason) == ("unknown", "unknown", "not sure")


def test_bulk_resolution_is_one_record_for_many_keys_and_round_trips() -> None:
    from connectly_declare.ledger import codec

    bulk = Resolution(campaign="Welcome", client=A, scope="", resolved_as="accepted",
                      by="ana@laptop", at=AT, reason="inbox", more=(("Welcome", B, ""),
                                                                    ("Welcome", "+1999", "")))
    line = codec.encode(bulk)
    assert '"type":"resolutions"' in line and codec.decode(line) == bulk
    state = fold([HEADER, intent("b1", [A, B]), outcome("b1", "partial"), bulk])
    assert {k: s.status for k, s in state.keys.items()} == {KA: "accepted", KB: "accepted"}
    assert state.keys[KB].resolution_reason == "inbox"
    assert state.warnings == ["resolution of 'Welcome' for a client not in the ledger; ignored"]
    # a single-key verdict keeps the format older versions read
    single = Resolution(campaign="Welcome", client=A, scope="", resolved_as="unsent",
                        by="u@h", at=AT)
    assert '"type":"resolution"' in codec.encode(single)


def test_a_later_send_clears_the_verdict_it_supersedes() -> None:
    state = fold([HEADER, intent("b1", [A], scope="s"), outcome("b1", "unknown"),
                  resolution(A, "accepted", scope="s"), intent("b2", [A], fp="f2", scope="s")])
    known = state.keys[make_key("Welcome", A, "s")]
    assert known.status == "unknown" and known.resolved_as is None and known.resolved_by is None
