"""Staged rollouts end to end: the real CLI as a subprocess against the real simulator on
loopback, with the clock moved between applies (DECLARE_TEST_NOW). Who got the message in
which wave is read back from the simulator's deliveries."""

from __future__ import annotations

import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from connectly_declare.plan.rollout import bucket
from tests.apply.test_e2e_apply import kill_when
from tests.support.e2e import (
    CAMPAIGN,
    SimProcess,
    catalog,
    edit_sendout,
    new_api_key,
    run_cli,
    sim_process,
    start_cli,
    write_workspace,
)

SENDOUT = "spring-promo"
T0 = datetime(2027, 12, 20, 10, 0, tzinfo=UTC)
WAVES = [{"percent": 10}, {"percent": 30, "after": "2h"},
         {"percent": 100, "after": "1d", "approve": True}]


def at(when: datetime) -> dict[str, str]:
    return {"DECLARE_TEST_NOW": when.isoformat()}


def set_rollout(ws: Path, waves: list[dict[str, Any]],
                promote: list[dict[str, Any]] | None = None) -> None:
    """Edit the workspace's Sendout as a person would: rollout and promote records."""
    edit_sendout(ws, rollout=waves, promote=promote or None)


def in_percent(clients: list[str], low: float, high: float) -> set[str]:
    return {c for c in clients if low * 100 <= bucket(SENDOUT, c) < high * 100}


def delivered(sim: SimProcess) -> list[str]:
    return [d["client"] for d in sim.deliveries(campaign=CAMPAIGN)]


def apply(ws: Path, key: str, when: datetime, *extra: str) -> Any:
    done = run_cli(ws, "apply", "--auto-approve", *extra, api_key=key, env=at(when),
                   timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "DECLARE_TEST_NOW is set" in done.stderr  # a fixed clock never goes unnoticed
    return done


@pytest.mark.slow  # five CLI runs
def test_three_waves_go_out_as_the_clock_and_an_approval_open_their_gates(
        tmp_path: Path) -> None:
    key = new_api_key()
    with sim_process(catalog(key)) as sim:
        ws = tmp_path / "ws"
        clients = write_workspace(ws, base_url=sim.url, recipients=40, sendout=SENDOUT)
        set_rollout(ws, WAVES)
        waves = [in_percent(clients, 0, 10), in_percent(clients, 10, 30),
                 in_percent(clients, 30, 100)]
        assert all(waves)  # 40 recipients put somebody in every wave

        apply(ws, key, T0)
        assert sorted(delivered(sim)) == sorted(waves[0])

        early = apply(ws, key, T0 + timedelta(hours=1))
        assert "opens 2027-12-20T12:00Z (2h after wave 1 finished)" in early.stdout
        assert "entries wait for a rollout gate" in early.stdout
        assert sorted(delivered(sim)) == sorted(waves[0])  # nothing more

        apply(ws, key, T0 + timedelta(hours=2))
        assert sorted(delivered(sim)) == sorted(waves[0] | waves[1])

        later = T0 + timedelta(days=3)
        waiting = run_cli(ws, "plan", "--detailed-exitcode", api_key=key, env=at(later))
        assert waiting.returncode == 0, waiting.stderr  # nothing sendable now: not 2
        assert "needs approval" in waiting.stdout
        assert f"{len(waves[2]):,} waiting" in waiting.stdout

        set_rollout(ws, WAVES, promote=[{"wave": 3, "by": "maria"}])
        assert run_cli(ws, "plan", "--detailed-exitcode", api_key=key,
                       env=at(later)).returncode == 2
        apply(ws, key, later)
        rows = delivered(sim)
        assert sorted(rows) == sorted(clients)  # everyone, each exactly once
        # in which request (so which apply) each person got it: the waves' order
        order = {d["client"]: d["request"] for d in sim.deliveries(campaign=CAMPAIGN)}
        assert max(order[c] for c in waves[0]) < min(order[c] for c in waves[1])
        assert max(order[c] for c in waves[1]) < min(order[c] for c in waves[2])


@pytest.mark.slow  # a killed apply and two more CLI runs
def test_a_crash_in_the_middle_of_a_wave_then_reapply_sends_the_wave_exactly_once(
        tmp_path: Path) -> None:
    key = new_api_key()
    with sim_process(catalog(key), args=["--latency-ms", "20"]) as sim:
        ws = tmp_path / "ws"
        clients = write_workspace(ws, base_url=sim.url, recipients=80, sendout=SENDOUT,
                                  settings={"batch_size": 1, "concurrency": 1})
        set_rollout(ws, [{"percent": 50}, {"percent": 100, "after": "2h"}])
        first = in_percent(clients, 0, 50)
        assert len(first) > 20

        process = start_cli(ws, "apply", "--auto-approve", api_key=key, env=at(T0))
        kill_when(sim, process, 8)
        assert process.returncode == -signal.SIGKILL
        partly = delivered(sim)
        assert 0 < len(partly) < len(first) and set(partly) <= first

        # the clock is past the 2h gate, but wave 1 is unfinished: only wave 1 goes out
        later = T0 + timedelta(hours=3)
        apply(ws, key, later)
        counts = sim.counts(CAMPAIGN)
        assert counts == dict.fromkeys(first, 1)  # wave 1 complete, exactly once each

        # wave 1 finished at `later`: wave 2 waits 2h from then, not from T0
        held = apply(ws, key, later + timedelta(hours=1))
        assert "opens 2027-12-20T15:00Z (2h after wave 1 finished)" in held.stdout
        assert sim.counts(CAMPAIGN) == counts


@pytest.mark.slow  # two simulators, four CLI runs
def test_the_stop_rule_halts_on_the_simulators_rejections_and_resumes_once_fixed(
        tmp_path: Path) -> None:
    key = new_api_key()
    waves = [{"percent": 25}, {"percent": 100, "max_rejected_percent": 10}]
    # a simulator whose campaign needs a variable the workspace does not send: every
    # entry of wave 1 is rejected (ERROR_CODE_CAMPAIGN_ENTRY_INVALID)
    strict = catalog(key, campaigns=((CAMPAIGN, (("v1", ("name", "coupon")),)),))
    ws = tmp_path / "ws"
    with sim_process(strict) as sim:
        clients = write_workspace(ws, base_url=sim.url, recipients=24, sendout=SENDOUT)
        set_rollout(ws, waves)
        first = in_percent(clients, 0, 25)
        done = run_cli(ws, "apply", "--auto-approve", api_key=key, env=at(T0), timeout=180)
        assert done.returncode == 1  # rejections
        assert delivered(sim) == []
        halted = run_cli(ws, "plan", "--detailed-exitcode", api_key=key, env=at(T0))
        assert halted.returncode == 0  # refused for good (failed) and halted: nothing to send
        assert (f"halted: 100.0% of wave 1 was rejected ({len(first)} of {len(first)}), "
                "more than max_rejected_percent 10") in halted.stdout
        assert f"{len(first):,} failed" in halted.stdout
        assert f"{len(clients) - len(first):,} waiting" in halted.stdout
    # the cause fixed (here: the campaign as the workspace declares it)
    with sim_process(catalog(key)) as sim:
        config = ws / "declare.yaml"
        settings = yaml.safe_load(config.read_text(encoding="utf-8"))
        config.write_text(yaml.safe_dump({**settings, "base_url": sim.url}), encoding="utf-8")
        apply(ws, key, T0 + timedelta(minutes=5), "--retry-failed")  # wave 1 only
        assert sorted(delivered(sim)) == sorted(first)
        apply(ws, key, T0 + timedelta(minutes=10))  # no rejections left: wave 2 opens
        assert sorted(delivered(sim)) == sorted(clients)
