"""Quiet hours, in each recipient's zone: shifted to their end (the default) or held back,
spanning midnight or not, for scheduled sendouts and for "send now" with the plan's clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from connectly_declare.entries.stream import iter_sendout_entries
from connectly_declare.entry import Entry, fingerprint
from connectly_declare.ledger.fold import fold
from connectly_declare.plan.make import make_plan
from connectly_declare.plan.model import DesiredSendout, PlanOptions, SendoutSpec
from connectly_declare.policy.timing import HELD, SHIFTED, ZONE_FROM_NUMBER, QuietMode
from connectly_declare.workspace.config import WorkspaceConfig
from connectly_declare.workspace.manifests import Sendout
from tests.audience.conftest import audience, locate, sendout

Write = Callable[[str, str | bytes], Path]
BERLIN, SAO_PAULO, JAKARTA = "+4915112345678", "+5511987654321", "+6281234567890"
QUIET = {"start": "21:00", "end": "08:00"}


def entries(root: Path, s: Sendout, *, now: datetime, mode: QuietMode = "shift",
            **config: Any) -> dict[str, Entry]:
    aud = audience(sources=[{"inline": [BERLIN, SAO_PAULO, JAKARTA]}])
    got = iter_sendout_entries(root, WorkspaceConfig(**config), {aud.name: aud}, s, locate,
                               environ={}, now=now, quiet_mode=mode)
    return {e.client: e for e in got}


def test_send_now_across_midnight_is_shifted_to_the_end_of_each_zones_quiet_hours(
        root: Path) -> None:
    now = datetime(2027, 1, 10, 23, 30, tzinfo=UTC)  # Berlin 00:30, São Paulo 20:30, Jakarta 06:30
    got = entries(root, sendout(), now=now, quiet_hours=QUIET)
    assert got[BERLIN].scheduled_at == "2027-01-11T08:00:00+01:00"  # same day: after midnight
    assert got[JAKARTA].scheduled_at == "2027-01-11T08:00:00+07:00"
    assert got[SAO_PAULO].scheduled_at is None  # 20:30 is outside: sent now
    assert got[BERLIN].timing == ZONE_FROM_NUMBER | SHIFTED
    assert got[SAO_PAULO].timing == ZONE_FROM_NUMBER
    # a shift of "now" is sent but not hashed: a later plan of the accepted entry is a noop
    for e in got.values():
        assert e.fingerprint == fingerprint(e.version, e.variables, None, e.round)


def test_before_midnight_shifts_to_the_next_morning(root: Path) -> None:
    now = datetime(2027, 1, 10, 21, 15, tzinfo=UTC)  # Berlin 22:15
    got = entries(root, sendout(), now=now, quiet_hours=QUIET)
    assert got[BERLIN].scheduled_at == "2027-01-11T08:00:00+01:00"
    assert got[SAO_PAULO].scheduled_at is None  # 18:15


def test_a_local_schedule_in_quiet_hours_is_shifted_and_hashed(root: Path) -> None:
    s = sendout(schedule={"local": "2027-12-20T22:00"}, quiet_hours=QUIET)
    got = entries(root, s, now=datetime(2027, 1, 1, tzinfo=UTC))
    assert got[SAO_PAULO].scheduled_at == "2027-12-21T08:00:00-03:00"
    e = got[SAO_PAULO]
    assert e.fingerprint == fingerprint(e.version, e.variables, e.scheduled_at, e.round)


def test_an_instant_schedule_is_checked_in_each_recipients_zone(root: Path) -> None:
    s = sendout(schedule="2027-06-01T12:00:00+00:00")  # Berlin 14:00, São Paulo 09:00,
    got = entries(root, s, now=datetime(2027, 1, 1, tzinfo=UTC),  # Jakarta 19:00
                  quiet_hours={"start": "18:00", "end": "21:30"})  # not across midnight
    assert got[BERLIN].scheduled_at == "2027-06-01T12:00:00+00:00"  # unchanged
    assert got[SAO_PAULO].scheduled_at == "2027-06-01T12:00:00+00:00"
    assert got[JAKARTA].scheduled_at == "2027-06-01T21:30:00+07:00"


def test_a_sendout_may_turn_quiet_hours_off_or_use_its_own(root: Path) -> None:
    now = datetime(2027, 1, 10, 23, 30, tzinfo=UTC)
    off = entries(root, sendout(quiet_hours="none"), now=now, quiet_hours=QUIET)
    assert {e.scheduled_at for e in off.values()} == {None}
    assert {e.timing for e in off.values()} == {0}
    own = entries(root, sendout(quiet_hours={"start": "00:00", "end": "01:00"}), now=now,
                  quiet_hours=QUIET)
    assert own[BERLIN].scheduled_at == "2027-01-11T01:00:00+01:00"
    assert own[JAKARTA].scheduled_at is None


def test_hold_holds_entries_back_and_a_later_plan_sends_them(root: Path) -> None:
    s = sendout()
    spec = SendoutSpec.of(s, timed=True)
    options = PlanOptions(quiet_hours="hold")
    night = datetime(2027, 1, 10, 23, 30, tzinfo=UTC)
    got = entries(root, s, now=night, mode="hold", quiet_hours=QUIET)
    assert got[BERLIN].timing & HELD and not got[SAO_PAULO].timing & HELD
    plan = make_plan([DesiredSendout(spec, list(got.values()))], fold([]), options, now=night)
    sendout_plan = plan.sendouts[0]
    assert sendout_plan.counts["held"] == 2 and sendout_plan.counts["send"] == 1
    assert [p.entry.client for p in sendout_plan.to_send] == [SAO_PAULO]
    assert sendout_plan.timing["held"] == 2
    held = [p for p in sendout_plan.samples if p.action == "held"]
    assert "quiet hours in Europe/Berlin" in held[0].reason
    assert plan.has_changes  # São Paulo is sendable
    morning = datetime(2027, 1, 11, 9, 0, tzinfo=UTC)  # Berlin 10:00, Jakarta 16:00
    later = entries(root, s, now=morning, mode="hold", quiet_hours=QUIET)
    again = make_plan([DesiredSendout(spec, list(later.values()))], fold([]), options,
                      now=morning)
    assert again.sendouts[0].counts["held"] == 1  # São Paulo is at 06:00 now
    assert {p.entry.client for p in again.sendouts[0].to_send} == {BERLIN, JAKARTA}
