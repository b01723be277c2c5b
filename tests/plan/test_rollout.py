"""Staged rollouts in the plan: wave membership, gates, the stop rule, and how waves compose
with the other actions and guards."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectly_declare.entry import Entry
from connectly_declare.ledger.base import Header, Intent, IntentEntry, LedgerState, Outcome, Record
from connectly_declare.ledger.fold import fold
from connectly_declare.plan.make import make_plan
from connectly_declare.plan.model import DesiredSendout, Plan, PlanOptions, PlanRefused
from connectly_declare.plan.rollout import (
    WaveSpec,
    bucket,
    member_hash,
    parse_duration,
    short_time,
    stage,
)

from .conftest import desired, entry, spec

SENDOUT = "spring-promo"
CLIENTS = [f"+1415{2_000_000 + i:07d}" for i in range(40)]
# sha256("spring-promo\0" + client)[:8] * 10000 >> 64 for CLIENTS[i]; fixed so that a change
# of the hash (or of how it is computed on another machine) fails here
EXPECTED_BUCKETS = [8116, 8444, 6549, 8211, 6097, 3889, 9794, 6625, 342, 6030, 76, 7750, 9214,
                    2790, 4466, 1127, 5557, 7229, 4862, 645, 8580, 5776, 8950, 7589, 3560,
                    4708, 3708, 8754, 5620, 8614, 8723, 1972, 8751, 4623, 7984, 4738, 8851,
                    6018, 2463, 2512]
T1 = datetime(2027, 12, 20, 10, 13, 30, tzinfo=UTC)  # wave 1's last accepted outcome


def entries(clients: list[str] = CLIENTS, *, name: str = "Ana") -> list[Entry]:
    return [entry(c, sendout=SENDOUT, name=name) for c in clients]


def rollout_spec(*waves: WaveSpec, **kw: object) -> object:
    return spec(SENDOUT, rollout=tuple(waves), **kw)


def ledger(*batches: tuple[list[Entry], str, datetime]) -> LedgerState:
    """Each (entries, status, time) was one intent and its outcome at that time."""
    records: list[Record] = [Header(lineage="L1", created_at="2027-12-01T00:00:00+00:00")]
    for n, (batch, status, at) in enumerate(batches):
        first = batch[0]
        records.append(Intent(batch_id=f"b{n}", at=at.isoformat(), sendout=first.sendout,
                              campaign=first.campaign, version=first.version,
                              scope=first.scope, options={},
                              entries=tuple(IntentEntry(e.client, e.fingerprint)
                                            for e in batch)))
        if status != "none":
            records.append(Outcome(batch_id=f"b{n}", at=at.isoformat(),
                                   status=status))  # type: ignore[arg-type]
    return fold(records)


def plan(waves: tuple[WaveSpec, ...], state: LedgerState, now: datetime,
         batch: list[Entry] | None = None, **kw: object) -> Plan:
    s = spec(SENDOUT, rollout=waves, **kw)
    return make_plan([desired(s, batch if batch is not None else entries())], state,
                     PlanOptions(), now=now)


def sent(p: Plan) -> set[str]:
    return {planned.entry.client for _, planned in p.iter_sends()}


def members(percent: float, clients: list[str] = CLIENTS) -> set[str]:
    return {c for c in clients if bucket(SENDOUT, c) < round(percent * 100)}


EMPTY = fold([Header(lineage="L1", created_at="2027-12-01T00:00:00+00:00")])
THREE = (WaveSpec(percent=10), WaveSpec(percent=30, after="2h"),
         WaveSpec(percent=100, after="1d", approve=True))


# --- membership -------------------------------------------------------------------------


def test_membership_is_a_fixed_function_of_sendout_and_client() -> None:
    assert [bucket(SENDOUT, c) for c in CLIENTS] == EXPECTED_BUCKETS
    # the 10% and the 30% of these 40, by number (00..39)
    assert sorted(c[-2:] for c in members(10)) == ["08", "10", "19"]
    assert sorted(c[-2:] for c in members(30)) == ["08", "10", "13", "15", "19", "31", "38",
                                                     "39"]
    # the documented formula, computed independently
    digest = hashlib.sha256(f"{SENDOUT}\0{CLIENTS[0]}".encode()).digest()
    assert int.from_bytes(digest[:8], "big") * 10_000 >> 64 == EXPECTED_BUCKETS[0]
    # another sendout orders the same people differently
    assert [bucket("other", c) for c in CLIENTS] != EXPECTED_BUCKETS


def test_membership_is_the_same_in_another_process_with_another_hash_seed() -> None:
    code = ("from connectly_declare.plan.rollout import bucket; import sys; "
            "print(','.join(str(bucket(sys.argv[1], c)) for c in sys.argv[2:]))")
    for seed in ("0", "12345"):
        done = subprocess.run([sys.executable, "-c", code, SENDOUT, *CLIENTS],
                              capture_output=True, text=True, check=True, timeout=60,
                              env={**os.environ, "PYTHONHASHSEED": seed})
        assert [int(b) for b in done.stdout.strip().split(",")] == EXPECTED_BUCKETS


def test_each_wave_sends_exactly_its_members() -> None:
    first = plan(THREE, EMPTY, T1)
    assert sent(first) == members(10)
    assert first.sendouts[0].counts["waiting"] == len(CLIENTS) - len(members(10))


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 9_999), st.integers(1, 9_999),
       st.lists(st.integers(0, 7_999_999), min_size=1, max_size=60, unique=True))
def test_widening_a_wave_only_adds_people(a: int, b: int, numbers: list[int]) -> None:
    clients = [f"+1650{2_000_000 + n:07d}" for n in numbers]
    low, high = sorted((a / 100, b / 100))
    batch = entries(clients)

    def first_wave(wave: WaveSpec) -> set[str]:
        closed = WaveSpec(percent=100, approve=True)  # never opens here
        staged = stage(SENDOUT, (wave, closed), batch, {}, T1)
        return {e.client for e in staged.to_diff}

    assert first_wave(WaveSpec(percent=low)) <= first_wave(WaveSpec(percent=high))
    small, large = sorted((a % len(clients) + 1, b % len(clients) + 1))
    by_count = [first_wave(WaveSpec(count=n)) for n in (small, large)]
    assert by_count[0] <= by_count[1]
    assert [len(s) for s in by_count] == [small, large]


def test_a_count_wave_is_the_n_smallest_hashes() -> None:
    staged = stage(SENDOUT, (WaveSpec(count=5), WaveSpec(percent=100)), entries(), {}, T1)
    expected = sorted(CLIENTS, key=lambda c: member_hash(SENDOUT, c))[:5]
    assert {e.client for e in staged.to_diff} == set(expected)
    assert [w.entries for w in staged.waves] == [5, 35]


# --- gates ------------------------------------------------------------------------------


def accepted_wave_one(at: datetime = T1) -> LedgerState:
    wave_one = [e for e in entries() if e.client in members(10)]
    return ledger((wave_one, "accepted", at))


def test_the_after_gate_opens_from_the_previous_waves_last_accepted_outcome() -> None:
    state = accepted_wave_one()
    early = plan(THREE, state, T1 + timedelta(hours=1))
    assert sent(early) == set()
    assert early.sendouts[0].counts["noop"] == 3
    wave2 = early.sendouts[0].waves[1]
    assert (wave2.state, wave2.current, wave2.opens_at) == ("waiting", True, "2027-12-20T12:14Z")
    assert wave2.describe() == ("wave 2 of 3 (30%): 5 entries, opens 2027-12-20T12:14Z "
                                "(2h after wave 1 finished) [current]")
    assert early.sendouts[0].waves[0].describe() == (
        "wave 1 of 3 (10%): 3 entries, done, finished 2027-12-20T10:14Z")
    assert not early.has_changes
    on_time = plan(THREE, state, T1 + timedelta(hours=2))
    assert sent(on_time) == members(30) - members(10)
    assert on_time.sendouts[0].waves[1].state == "open"
    assert on_time.sendouts[0].waves[2].gate == (
        "waits for wave 2 to finish (5 not sent or in doubt), then 1d and an approval "
        "(promote)")


def test_an_approval_gate_opens_only_with_a_promote_record() -> None:
    wave_two = [e for e in entries() if e.client in members(30)]
    state = ledger((wave_two, "accepted", T1))
    later = T1 + timedelta(days=2)
    waiting = plan(THREE, state, later)
    assert sent(waiting) == set()
    gate = waiting.sendouts[0].waves[2].gate
    assert "needs approval" in gate and "promote: [{wave: 3, by: NAME}]" in gate
    approved = (*THREE[:2], WaveSpec(percent=100, after="1d", approve=True,
                                     approved_by="maria"))
    assert sent(plan(approved, state, later)) == set(CLIENTS) - members(30)
    # approval does not skip the timer
    assert sent(plan(approved, state, T1 + timedelta(hours=23))) == set()


def test_the_stop_rule_halts_on_the_previous_waves_rejection_rate() -> None:
    waves = (WaveSpec(percent=30), WaveSpec(percent=100, max_rejected_percent=20))
    wave_one = [e for e in entries() if e.client in members(30)]  # 8 people
    two_rejected = ledger((wave_one[:6], "accepted", T1), (wave_one[6:], "rejected", T1))
    halted = plan(waves, two_rejected, T1)
    status = halted.sendouts[0].waves[1]
    assert status.state == "halted"
    assert "25.0% of wave 1 was rejected (2 of 8)" in status.gate
    assert any("rollout halted before wave 2" in n for n in halted.sendouts[0].notes)
    # the rejected are retried (they are wave 1's), nobody of wave 2 is sent
    assert sent(halted) == {e.client for e in wave_one[6:]}
    one_rejected = ledger((wave_one[:7], "accepted", T1), (wave_one[7:], "rejected", T1))
    assert sent(plan(waves, one_rejected, T1)) >= set(CLIENTS) - members(30)


@pytest.mark.parametrize("status", ["none", "unknown", "partial"])
def test_a_wave_in_doubt_or_unsent_keeps_the_next_gate_closed(status: str) -> None:
    wave_one = [e for e in entries() if e.client in members(10)]
    state = ledger((wave_one[:2], "accepted", T1), (wave_one[2:], status, T1))
    result = plan((WaveSpec(percent=10), WaveSpec(percent=100)), state,
                  T1 + timedelta(days=9))
    assert sent(result) <= {wave_one[2].client}  # at most the in-doubt retry (allow_one)
    assert result.sendouts[0].waves[1].gate.startswith("waits for wave 1 to finish (1 ")


def test_a_gate_without_conditions_opens_when_the_previous_wave_finished() -> None:
    waves = (WaveSpec(percent=10), WaveSpec(percent=100))
    assert sent(plan(waves, EMPTY, T1)) == members(10)
    assert sent(plan(waves, accepted_wave_one(), T1)) == set(CLIENTS) - members(10)


# --- composition ------------------------------------------------------------------------


def test_people_already_sent_are_diffed_as_usual_in_a_closed_wave() -> None:
    state = accepted_wave_one()
    changed = entries(name="Bea")  # new content before wave 2 opens
    drift = plan(THREE, state, T1, changed)
    assert drift.sendouts[0].counts["drift"] == 3
    assert drift.sendouts[0].counts["waiting"] == 37
    wave_one = [e for e in entries() if e.client in members(10)]
    multi = [entry(c, sendout=SENDOUT, name=n, allow_multiple=True)
             for n in ("Ana", "Bea") for c in CLIENTS]
    state = ledger(([e for e in multi[:40] if e.client in members(10)], "accepted", T1))
    resend = plan(THREE, state, T1, multi[40:], allow_multiple=True)
    assert sent(resend) == {e.client for e in wave_one}
    assert resend.sendouts[0].counts["resend"] == 3


def test_max_recipients_counts_only_what_is_sent_now() -> None:
    assert plan(THREE, EMPTY, T1, max_recipients=3).sends == 3
    with pytest.raises(PlanRefused, match="max_recipients 2"):
        plan(THREE, EMPTY, T1, max_recipients=2)


def test_a_disabled_sendout_stops_its_remaining_waves() -> None:
    result = plan(THREE, accepted_wave_one(), T1 + timedelta(days=9), enabled=False)
    assert result.sends == 0 and not result.sendouts[0].enabled


def test_recipients_beyond_the_last_wave_wait_and_are_named() -> None:
    result = plan((WaveSpec(percent=10),), accepted_wave_one(), T1 + timedelta(days=1))
    s = result.sendouts[0]
    assert s.counts["waiting"] == 37 and result.sends == 0
    assert any("beyond the last wave (10%)" in note for note in s.notes)
    assert {p.reason for p in s.samples if p.action == "waiting"} == {
        "in no wave yet: the last wave covers 10%"}


def test_durations_and_times() -> None:
    assert parse_duration("1d2h3m4s") == timedelta(days=1, hours=2, minutes=3, seconds=4)
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("2 hours")
    assert short_time(datetime(2027, 1, 1, 10, 0, tzinfo=UTC)) == "2027-01-01T10:00Z"
    assert short_time(datetime(2027, 1, 1, 10, 0, 1, tzinfo=UTC)) == "2027-01-01T10:01Z"


# --- outputs ----------------------------------------------------------------------------


def test_waiting_and_the_waves_show_in_every_output_and_survive_a_saved_plan() -> None:
    import html
    import json

    from connectly_declare.plan.planfile import plan_bytes, plan_from_json
    from connectly_declare.report.format import format_json, format_markdown, format_text

    result = plan(THREE, accepted_wave_one(), T1 + timedelta(hours=1))
    text = format_text(result)
    assert "3 noop, 37 waiting" in text
    assert ("    wave 2 of 3 (30%): 5 entries, opens 2027-12-20T12:14Z (2h after wave 1 "
            "finished) [current]\n") in text
    assert "Plan: nothing to send; " in text and "37 waiting" in text.splitlines()[-1]
    # data and notes are escaped: entities, and a backslash before a dash
    markdown = html.unescape(format_markdown(result)).replace("\\-", "-")
    table = markdown.splitlines()[4:7]
    # noop, drift, failed, blocked, waiting, orphan
    assert "| waiting | orphan |" in table[0] and "| 3 | 0 | 0 | 0 | 37 | 0 |" in table[2]
    assert ("- **spring-promo: wave 2 of 3 (30%): 5 entries, opens 2027-12-20T12:14Z (2h "
            "after wave 1 finished) [current]**") in markdown
    doc = json.loads(format_json(result))
    assert doc["totals"]["waiting"] == 37 and doc["has_changes"] is False
    waves = doc["sendouts"][0]["waves"]
    assert [(w["wave"], w["state"], w["entries"]) for w in waves] == [
        (1, "done", 3), (2, "waiting", 5), (3, "waiting", 32)]
    assert waves[1]["opens_at"] == "2027-12-20T12:14Z"
    samples = [e for e in doc["sendouts"][0]["entries"] if e["action"] == "waiting"]
    assert samples and all("•" in e["client"] for e in samples)  # masked
    body = json.loads(plan_bytes(result).splitlines()[0])["plan"]  # the header line
    again = plan_from_json(body, to_send=[[] for _ in body["sendouts"]])
    assert again.sendouts[0].waves == result.sendouts[0].waves
    assert again.sendouts[0].counts["waiting"] == 37
    assert format_text(again) == text


def test_a_bad_fixed_clock_is_a_clear_error(tmp_path: object) -> None:
    from pathlib import Path

    ws = Path(str(tmp_path))
    (ws / "declare.yaml").write_text("version: 1\nbusiness_id: b\n", encoding="utf-8")
    env = {**os.environ, "DECLARE_TEST_NOW": "tomorrow"}
    done = subprocess.run([sys.executable, "-m", "connectly_declare", "-C", str(ws), "plan"],
                          capture_output=True, text=True, env=env, timeout=60, check=False)
    assert done.returncode == 1
    assert "DECLARE_TEST_NOW is not an ISO 8601 time" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_fixed_schedule_delays_wave_one_and_later_waves_count_from_it() -> None:
    schedule = (T1 + timedelta(hours=5)).isoformat()
    batch = [entry(c, sendout=SENDOUT, scheduled_at=schedule) for c in CLIENTS]
    waves = (WaveSpec(percent=10), WaveSpec(percent=100, after="2h"))
    first = plan(waves, EMPTY, T1, batch)
    assert sent(first) == members(10)
    # accepted at T1, ahead of the schedule: the 2h count from the delivery at T1 + 5h
    state = ledger(([e for e in batch if e.client in members(10)], "accepted", T1))
    held = plan(waves, state, T1 + timedelta(hours=6), batch)
    assert sent(held) == set()
    assert held.sendouts[0].waves[1].opens_at == "2027-12-20T17:14Z"
    # the schedule has passed by then: wave 2 is timed as "now" (plan.rollout.retimer),
    # without the workspace's policy here: no scheduledAt, same content (fingerprint)
    later = T1 + timedelta(hours=8)
    opened = make_plan([DesiredSendout(spec(SENDOUT, rollout=waves), batch,
                                       retime=lambda e: replace(e, scheduled_at=None))],
                       state, PlanOptions(), now=later)
    assert sent(opened) == set(CLIENTS) - members(10)
    assert {p.entry.scheduled_at for _, p in opened.iter_sends()} == {None}
    assert {p.entry.fingerprint for _, p in opened.iter_sends()} == {batch[0].fingerprint}
    # without re-timing, a past schedule is refused as always
    with pytest.raises(PlanRefused, match="in the past"):
        plan(waves, state, later, batch)
    # but a first wave sent after its own schedule passed is refused as always
    with pytest.raises(PlanRefused, match="in the past"):
        plan(waves, EMPTY, T1 + timedelta(hours=8), batch)


def test_a_client_twice_is_refused_even_while_their_wave_waits() -> None:
    later = [e for e in entries() if e.client not in members(10)]
    with pytest.raises(PlanRefused, match="more than once"):
        plan(THREE, EMPTY, T1, [*entries(), later[0]])
