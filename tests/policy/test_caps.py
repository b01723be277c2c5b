"""Frequency caps across sendouts, against a ledger history: the order (priority, then
name), the window's boundary, exemptions, and capped entries becoming sends once the
window has moved (an injected clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from connectly_declare.entry import Entry, fingerprint
from connectly_declare.ledger.base import Header, Intent, IntentEntry, LedgerState, Outcome, Record
from connectly_declare.ledger.fold import fold
from connectly_declare.plan.make import make_plan
from connectly_declare.plan.model import DesiredSendout, Plan, PlanOptions, SendoutSpec
from connectly_declare.plan.planfile import plan_bytes
from connectly_declare.report.format import format_json, format_markdown, format_text

NOW = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
ANA, BO, CY = "+4915112345678", "+5511987654321", "+6281234567890"
WEEKLY = (2, 7 * 86400, "2 per 7d")
DAILY = (1, 86400, "1 per 1d")


def entry(sendout: str, client: str, scheduled_at: str | None = None) -> Entry:
    return Entry(sendout=sendout, campaign=sendout, version=None, client=client,
                 variables={}, scheduled_at=scheduled_at, round=1, allow_multiple=False,
                 fingerprint=fingerprint(None, {}, scheduled_at, 1), source="inline:1")


def delivered(*sends: tuple[str, str, datetime]) -> LedgerState:
    """A ledger where each (sendout, client, time) was accepted at that time."""
    records: list[Record] = [Header(lineage="L1", created_at="2027-01-01T00:00:00+00:00")]
    for n, (name, client, at) in enumerate(sends):
        when = at.isoformat()
        e = entry(name, client)
        records.append(Intent(batch_id=f"b{n}", at=when, sendout=name, campaign=name,
                              version=None, scope="", options={},
                              entries=(IntentEntry(client, e.fingerprint),)))
        records.append(Outcome(batch_id=f"b{n}", at=when, status="accepted"))
    return fold(records)


def three(clients: tuple[str, ...] = (ANA,), *, priority_b: int = 5, exempt_c: bool = False,
          at: str | None = None) -> list[DesiredSendout]:
    specs = [SendoutSpec("a-news", "a-news"),
             SendoutSpec("b-offer", "b-offer", priority=priority_b),
             SendoutSpec("c-survey", "c-survey", exempt=exempt_c)]
    return [DesiredSendout(s, [entry(s.name, c, at) for c in clients]) for s in specs]


def plan_at(now: datetime, state: LedgerState, *caps: tuple[int, int, str],
            **kw: object) -> Plan:
    return make_plan(three(**kw), state, PlanOptions(frequency_caps=caps), now=now)  # type: ignore[arg-type]


def actions(plan: Plan) -> dict[str, str]:
    return {s.name: next(a for a in ("send", "capped", "noop") if s.counts[a])
            for s in plan.sendouts}


def test_three_sendouts_against_the_history_in_priority_then_name_order() -> None:
    state = delivered(("old-promo", ANA, NOW - timedelta(days=3)))
    plan = plan_at(NOW, state, WEEKLY)
    # b-offer first (priority 5), then a-news, c-survey by name: one fits beside the history
    assert actions(plan) == {"a-news": "capped", "b-offer": "send", "c-survey": "capped"}
    capped = next(p for p in plan.sendouts[0].samples if p.action == "capped")
    assert capped.reason == ("frequency cap 2 per 7d: 2 other messages within the window; "
                             "would fit from 2027-03-05T12:00:00+00:00")
    assert plan.total("capped") == 2 and plan.sends == 1
    assert "capped: 1 client would pass a frequency cap" in plan.sendouts[0].notes[0]
    assert plan.sendouts[0].timing["capped"] == 1


def test_the_window_boundary() -> None:
    # exactly 7 days before: outside the window (half open), so two more fit
    at_edge = delivered(("old-promo", ANA, NOW - timedelta(days=7)))
    assert actions(plan_at(NOW, at_edge, WEEKLY)) == {
        "a-news": "send", "b-offer": "send", "c-survey": "capped"}
    # one second later: inside, so only one fits
    inside = delivered(("old-promo", ANA, NOW - timedelta(days=7) + timedelta(seconds=1)))
    assert actions(plan_at(NOW, inside, WEEKLY)) == {
        "a-news": "capped", "b-offer": "send", "c-survey": "capped"}


def test_capped_entries_are_sent_once_the_window_has_moved() -> None:
    state = delivered(("old-promo", ANA, NOW - timedelta(days=3)),
                      ("b-offer", ANA, NOW))  # b-offer was applied at NOW
    first = plan_at(NOW, state, WEEKLY)
    assert first.total("capped") == 2 and not first.has_changes
    reason = next(p for p in first.sendouts[0].samples if p.action == "capped").reason
    fits = datetime.fromisoformat(reason.rsplit("from ", 1)[1])
    assert fits == NOW + timedelta(days=4)  # the old promo leaves the window then
    before = plan_at(fits - timedelta(seconds=1), state, WEEKLY)
    assert before.total("capped") == 2
    after = plan_at(fits, state, WEEKLY)
    assert actions(after)["a-news"] == "send" and actions(after)["c-survey"] == "capped"
    assert after.sendouts[1].counts["noop"] == 1  # b-offer itself: already delivered


def test_exempt_sendouts_are_neither_capped_nor_counted() -> None:
    state = delivered(("c-survey", ANA, NOW - timedelta(days=1)))  # exempt: not counted
    plan = plan_at(NOW, state, WEEKLY, exempt_c=True)
    counts = {s.name: s.counts for s in plan.sendouts}
    assert counts["a-news"]["send"] == counts["b-offer"]["send"] == 1
    assert counts["c-survey"]["noop"] == 1 and counts["c-survey"]["capped"] == 0


def test_several_caps_and_scheduled_entries() -> None:
    # a daily cap besides the weekly one: three sendouts the same day, one each day after
    plan = plan_at(NOW, delivered(), WEEKLY, DAILY, clients=(ANA, BO))
    assert actions(plan) == {"a-news": "capped", "b-offer": "send", "c-survey": "capped"}
    reason = next(p for p in plan.sendouts[0].samples if p.action == "capped").reason
    assert reason.startswith("frequency cap 1 per 1d")
    assert reason.endswith("2027-03-02T12:00:00+00:00")
    # scheduled entries are placed at their own time: 3 days after two deliveries, all
    # three are capped; 30 days after, the history is out of the window and two fit
    state = delivered(("old-promo", ANA, NOW), ("old-promo-2", ANA, NOW))
    soon = (NOW + timedelta(days=3)).isoformat()
    assert plan_at(NOW, state, WEEKLY, at=soon).total("capped") == 3
    later = (NOW + timedelta(days=30)).isoformat()
    assert plan_at(NOW, state, WEEKLY, at=later).total("capped") == 1


def test_a_client_under_every_cap_is_not_checked_and_output_is_deterministic() -> None:
    state = delivered(("old-promo", BO, NOW - timedelta(days=1)))
    first = plan_at(NOW, state, (5, 7 * 86400, "5 per 7d"), clients=(ANA, BO, CY))
    assert first.total("capped") == 0 and first.sends == 9
    capped = plan_at(NOW, state, WEEKLY, clients=(ANA, BO, CY))
    again = plan_at(NOW, state, WEEKLY, clients=(ANA, BO, CY))
    assert plan_bytes(capped) == plan_bytes(again)
    for fmt in (format_text, format_markdown, format_json):
        assert fmt(capped) == fmt(again)
    assert capped.total("capped") == 4  # ANA and CY: 1 capped each; BO: 2 (history)
    assert '"capped": 4' in format_json(capped)
    assert "| capped |" in format_markdown(capped).replace("capped |", "capped |")
    assert "capped" in format_text(capped)
