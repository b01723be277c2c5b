"""Progress lines for CI logs, the summary's wording, and the simulator catalog a saved
plan implies (`apply --sim FILE` reads no manifests)."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from connectly_declare.apply.client import Secret
from connectly_declare.apply.progress import Progress
from connectly_declare.apply.results import ApplyResult, SendoutSummary
from connectly_declare.apply.summary import exit_code, summary_lines
from connectly_declare.commands.apply_source import sim_catalog_from_plan
from connectly_declare.ledger.base import LedgerState
from connectly_declare.plan.make import make_plan
from connectly_declare.plan.model import DesiredSendout, PlanOptions, SendoutSpec
from tests.apply.helpers import CAMPAIGN, make_entry


def test_without_a_terminal_progress_is_a_line_every_few_seconds() -> None:
    now = [0.0]
    stream = io.StringIO()
    progress = Progress(1000, stream, tty=False, every=5.0, clock=lambda: now[0])
    for _ in range(10):
        now[0] += 1.0
        progress.advance(50)
    progress.close()
    lines = stream.getvalue().splitlines()
    assert lines[0] == "sending: 250/1000 entries (25%), 50 entries/s, ETA 15 s"
    assert lines[1] == "sending: 500/1000 entries (50%), 50 entries/s, ETA 10 s"
    assert "\r" not in stream.getvalue()  # no bar redraws in CI logs


def test_while_the_plan_is_still_made_progress_counts_without_a_total() -> None:
    now = [0.0]
    stream = io.StringIO()
    progress = Progress(None, stream, tty=False, every=5.0, clock=lambda: now[0])
    for _ in range(6):
        now[0] += 1.0
        progress.advance(50)
    progress.close()
    assert stream.getvalue().splitlines() == ["sending: 250 entries, 50 entries/s",
                                              "sending: 300 entries, 50 entries/s"]
    bar = io.StringIO()
    with_bar = Progress(None, bar, tty=True)
    with_bar.advance(40)
    with_bar.close()
    assert "40" in bar.getvalue() and "%" not in bar.getvalue()


def test_on_a_terminal_progress_is_a_bar() -> None:
    stream = io.StringIO()
    progress = Progress(100, stream, tty=True)
    progress.advance(40)
    progress.close()
    assert "40%|" in stream.getvalue() and "entry/s" in stream.getvalue()


def summary(**counts: int) -> SendoutSummary:
    base = {"planned": 10, "sent": 10, "accepted": 0, "rejected": 0, "partial": 0,
            "unknown": 0, "not_sent": 0}
    base.update(counts)
    return SendoutSummary("promo", CAMPAIGN, rejected_codes=(("ERROR_CODE_X", 2),),
                          sendout_ids=("s-1",), partial_counts=(3, 1), **base)


def test_summary_names_every_outcome_and_the_exit_code_follows() -> None:
    mixed = ApplyResult((summary(accepted=4, rejected=2, partial=4),), requests=3, throttled=1)
    text = "\n".join(summary_lines(mixed))
    assert "Apply finished with problems: 4 accepted of 10 planned in 3 requests" in text
    assert "rejected 2 (2 × ERROR_CODE_X)" in text and "partial 4 (3 accepted, 1 rejected" in text
    assert "sendoutIds: s-1" in text
    assert "planned again by the next" in text
    assert exit_code(mixed) == 1
    good = ApplyResult((summary(accepted=10),), requests=1, throttled=0)
    assert summary_lines(good)[0].startswith("Apply complete") and exit_code(good) == 0
    stopped = ApplyResult((summary(accepted=5, not_sent=5),), 1, 0, interrupted=True)
    assert summary_lines(stopped)[0].startswith("Apply interrupted")
    assert exit_code(stopped) == 130


def test_summary_tells_failed_inferred_and_not_sent_apart() -> None:
    s = SendoutSummary(
        "promo", CAMPAIGN, planned=10, sent=6, accepted=4, rejected=2, partial=0, unknown=0,
        not_sent=4, rejected_codes=(("ERROR_CODE_CAMPAIGN_NOT_FOUND: Campaign not found", 2),),
        inferred=1, failed=2,
        failed_codes=(("ERROR_CODE_CAMPAIGN_NOT_FOUND: Campaign not found", 2),),
        not_sent_reasons=(("CLIENT_NOT_SENT: could not reach api.example.com", 4),))
    text = "\n".join(summary_lines(ApplyResult((s,), requests=3, throttled=0)))
    assert "failed 2 (2 × ERROR_CODE_CAMPAIGN_NOT_FOUND: Campaign not found)" in text
    assert "accepted 4 (1 inferred: already received" in text
    assert "not sent 4 (4 × CLIENT_NOT_SENT: could not reach api.example.com)" in text
    assert "rejected 2" not in text  # the failed ones are not also called merely rejected
    assert "--retry-failed" in text
    nothing = SendoutSummary("promo", CAMPAIGN, planned=5, sent=0, accepted=0, rejected=0,
                             partial=0, unknown=0, not_sent=5)
    lines = summary_lines(ApplyResult((nothing,), requests=0, throttled=0))
    assert lines[0].startswith("Apply failed: no request reached the server")


def test_a_saved_plan_implies_its_simulator_catalog() -> None:
    entries = [make_entry(i, sendout="promo") for i in range(3)]
    unversioned = [make_entry(i, sendout="later", version=None) for i in range(3, 5)]
    plan = make_plan(
        [DesiredSendout(SendoutSpec("promo", CAMPAIGN, "v1"), entries),
         DesiredSendout(SendoutSpec("later", CAMPAIGN, None), unversioned)],
        LedgerState(None, 0), PlanOptions(), now=datetime(2026, 1, 1, tzinfo=UTC))
    catalog = sim_catalog_from_plan(plan, "biz", Secret("k"))
    (business,) = catalog.businesses
    assert business.id == "biz" and business.api_keys == ["k"]
    (campaign,) = business.campaigns
    assert campaign.name == CAMPAIGN
    assert [(v.label, v.variables) for v in campaign.versions] == [("v1", ["name"])]
    assert campaign.variables == ["name"]
