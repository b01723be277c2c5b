"""Cutting sends into one-group requests, and mapping answers to ledger outcomes."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from connectly_declare.apply.batching import Batch, make_batches
from connectly_declare.apply.client import GroupResult, SendResult
from connectly_declare.apply.outcomes import ALREADY_RECEIVED, NOT_SENT, map_result
from tests.apply.helpers import PlannedStub, SendoutStub, make_entry, sends


def test_batches_hold_one_group_of_at_most_batch_size_in_plan_order() -> None:
    counter = itertools.count()
    plan = sends(250) + sends(30, sendout="other", allow_multiple=True)
    batches = list(make_batches(plan, batch_size=100, new_id=lambda: f"b{next(counter)}"))
    assert [len(b.entries) for b in batches] == [100, 100, 50, 30]
    assert [b.sendout for b in batches] == ["promo"] * 3 + ["other"]
    assert [e.client for b in batches[:3] for e in b.entries] == [
        p.entry.client for _, p in plan[:250]]
    assert batches[3].scope == "other" and batches[3].allow_multiple
    assert batches[0].options == {"if_duplicate_check_unspecified": "allow_one"}
    assert len({b.batch_id for b in batches}) == 4


def test_non_sending_actions_are_skipped() -> None:
    plan = sends(3, action="noop") + sends(2, start=3) + sends(1, start=5, action="blocked")
    (batch,) = make_batches(plan)
    assert [e.client for e in batch.entries] == [p.entry.client for _, p in plan[3:5]]


def test_versions_options_and_doubt_never_share_a_request() -> None:
    so_a = SendoutStub("s", {"if_duplicate_check_unspecified": "allow_one"})
    so_b = SendoutStub("s", {"if_duplicate_check_unspecified": "allow_one",
                             "if_version_unspecified": "reuse_last_active"})
    plan = [(so_a, PlannedStub("send", make_entry(0, sendout="s"))),
            (so_a, PlannedStub("send", make_entry(1, sendout="s", version="v2"))),
            (so_b, PlannedStub("send", make_entry(2, sendout="s"))),
            (so_a, PlannedStub("retry", make_entry(3, sendout="s"))),
            (so_a, PlannedStub("send", make_entry(4, sendout="s")))]
    doubt = {plan[3][1].entry.key}
    batches = list(make_batches(plan, in_doubt=doubt))
    shapes = sorted((b.version or "", tuple(sorted(b.options)), b.in_doubt,
                     tuple(e.client[-1] for e in b.entries)) for b in batches)
    assert shapes == [
        ("v1", ("if_duplicate_check_unspecified",), False, ("0", "4")),
        ("v1", ("if_duplicate_check_unspecified",), True, ("3",)),
        ("v1", ("if_duplicate_check_unspecified", "if_version_unspecified"), False, ("2",)),
        ("v2", ("if_duplicate_check_unspecified",), False, ("1",)),
    ]


def test_a_client_twice_starts_a_new_request() -> None:
    plan = sends(2) + sends(1)  # client 0 again
    assert [len(b.entries) for b in make_batches(plan)] == [2, 1]


def test_intent_records_clients_and_fingerprints() -> None:
    (batch,) = make_batches(sends(2), new_id=lambda: "b1")
    intent = batch.intent("2026-01-01T00:00:00Z")
    assert intent.batch_id == "b1" and intent.campaign == batch.campaign
    assert [(e.client, e.fingerprint) for e in intent.entries] == [
        (e.client, e.fingerprint) for e in batch.entries]


def batch(n: int = 4, *, in_doubt: bool = False, allow_multiple: bool = False) -> Batch:
    (b,) = make_batches(sends(n, allow_multiple=allow_multiple), new_id=lambda: "b1")
    # (apply sends in-doubt entries one per request; several are kept here to show what
    # an answer about a group of them can and cannot say)
    return replace(b, batch_id="b2", in_doubt=True, attempt=2) if in_doubt else b


def test_an_unknown_batch_is_sent_again_one_entry_per_request() -> None:
    ids = iter(["x", "y", "z"])
    again = batch(3).again(lambda: next(ids))
    assert [(b.batch_id, len(b.entries), b.in_doubt, b.attempt) for b in again] == [
        ("x", 1, True, 2), ("y", 1, True, 2), ("z", 1, True, 2)]
    assert [b.entries[0] for b in again] == list(batch(3).entries)


def test_in_doubt_entries_go_one_per_request() -> None:
    plan = sends(5)
    doubt = {p.entry.key for _, p in plan[1:4]}
    batches = list(make_batches(plan, in_doubt=doubt))
    assert sorted((b.in_doubt, len(b.entries)) for b in batches) == [
        (False, 2), (True, 1), (True, 1), (True, 1)]


def answered(a: int, r: int, error: dict[str, str] | None = None,
             groups: int = 1) -> SendResult:
    group = GroupResult("created" if a else "error", a, r, "s1" if a else None, "c", "v1",
                        error)
    return SendResult("answered", 200, (group,) * groups)


INVALID = {"code": "ERROR_CODE_CAMPAIGN_ENTRY_INVALID", "message": "invalid"}
NOT_FOUND = {"code": "ERROR_CODE_CAMPAIGN_NOT_FOUND", "message": "nf"}


@pytest.mark.parametrize(("result", "n", "in_doubt", "status", "verdict", "code"), [
    (answered(4, 0), 4, False, "accepted", "accepted", None),
    (answered(0, 4, NOT_FOUND), 4, False, "rejected", "failed", "ERROR_CODE_CAMPAIGN_NOT_FOUND"),
    (answered(0, 4, INVALID), 4, False, "rejected", "failed",
     "ERROR_CODE_CAMPAIGN_ENTRY_INVALID"),
    (answered(3, 1, INVALID), 4, False, "partial", "partial",
     "ERROR_CODE_CAMPAIGN_ENTRY_INVALID"),
    (answered(3, 1), 4, False, "partial", "partial", None),
    # Fresh batch, all "already received": this ledger never sent them; not claimed.
    (answered(0, 4), 4, False, "rejected", "failed", ALREADY_RECEIVED),
    # Re-send of an unknown attempt: error-free rejections are that attempt's deliveries.
    (answered(0, 4), 4, True, "accepted", "inferred", None),
    (answered(1, 3), 4, True, "accepted", "inferred", None),
    # One in-doubt, locally valid entry rejected as invalid: the page's way of reporting
    # a repeat, and nothing else is left for it to mean (the plan checked the entry).
    (answered(0, 1, INVALID), 1, True, "accepted", "inferred", None),
    # ...but in a group of several, rejections with an error may be invalid entries.
    (answered(1, 3, INVALID), 4, True, "partial", "partial", "ERROR_CODE_CAMPAIGN_ENTRY_INVALID"),
    (answered(0, 4, INVALID), 4, True, "rejected", "failed", "ERROR_CODE_CAMPAIGN_ENTRY_INVALID"),
    # A rejection about the campaign is not a repeat, in doubt or not.
    (answered(0, 1, NOT_FOUND), 1, True, "rejected", "failed", "ERROR_CODE_CAMPAIGN_NOT_FOUND"),
    # Never guess: counts that do not add up, or a result count other than one.
    (answered(2, 1), 4, False, "unknown", "unknown", "CLIENT_COUNTS_MISMATCH"),
    (answered(4, 0, groups=2), 4, False, "unknown", "unknown", "CLIENT_UNEXPECTED_GROUPS"),
    (SendResult("answered", 200, ()), 4, False, "unknown", "unknown",
     "CLIENT_UNEXPECTED_GROUPS"),
    (SendResult("unknown", 500, (), {"code": "ERROR_CODE_INTERNAL", "message": "boom"}), 4, True,
     "unknown", "unknown", "ERROR_CODE_INTERNAL"),
    (SendResult("not_sent", None, (), {"message": "refused"}), 4, False, "rejected", "not_sent",
     NOT_SENT),
    # An attempt that never left, or a refused key, says nothing about the earlier attempt:
    # the key stays in doubt.
    (SendResult("not_sent", None, (), {"message": "refused"}), 1, True, "unknown", "not_sent",
     NOT_SENT),
    (SendResult("unauthorized", 401, (), {"code": "ERROR_CODE_INVALID_CREDENTIALS"}), 1, True,
     "unknown", "unknown", "ERROR_CODE_INVALID_CREDENTIALS"),
    (SendResult("refused", 400, (), {"code": "ERROR_CODE_MALFORMED_REQUEST"}), 4, False,
     "rejected", "failed", "ERROR_CODE_MALFORMED_REQUEST"),
    (SendResult("refused", 404, (), NOT_FOUND), 4, False, "rejected", "failed",
     "ERROR_CODE_CAMPAIGN_NOT_FOUND"),
    (SendResult("unauthorized", 401, (), {"code": "ERROR_CODE_INVALID_CREDENTIALS"}), 4, False,
     "rejected", "rejected", "ERROR_CODE_INVALID_CREDENTIALS"),
])
def test_mapping(result: SendResult, n: int, in_doubt: bool, status: str, verdict: str,
                 code: str | None) -> None:
    mapped = map_result(batch(n, in_doubt=in_doubt), result, "t")
    assert (mapped.outcome.status, mapped.verdict) == (status, verdict)
    assert mapped.error_code == code
    assert mapped.outcome.batch_id == ("b2" if in_doubt else "b1")
    if verdict == "inferred":
        assert mapped.outcome.error is not None
        assert mapped.outcome.error["message"].startswith("inferred: already received")


def test_allow_multiple_never_infers_delivery_from_rejections() -> None:
    mapped = map_result(batch(in_doubt=True, allow_multiple=True), answered(0, 4), "t")
    assert mapped.outcome.status == "rejected"
