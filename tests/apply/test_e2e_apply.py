"""`connectly-declare apply` end to end: the real CLI as a subprocess against the real
simulator in its own process on loopback. Every assertion about who received what comes
from the simulator's inspection routes."""

from __future__ import annotations

import json
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.e2e import (
    API_KEY_ENV,
    CAMPAIGN,
    REPO,
    SimProcess,
    catalog,
    cli_command,
    cli_env,
    files_containing,
    new_api_key,
    run_cli,
    sim_process,
    start_cli,
    write_workspace,
)

# 200 requests a run; kills are triggered by the simulator's request count, so they land
# mid-run whatever the machine's speed.
PACED = {"batch_size": 100, "requests_per_second": 200, "concurrency": 8}


def ledger_statuses(workspace: Path) -> dict[str, str]:
    """client -> folded ledger status, through the real ledger code."""
    from connectly_declare.entry import split_key
    from connectly_declare.ledger.local import LocalLedger

    state = LocalLedger(workspace / ".declare" / "ledger.jsonl").read()
    return {split_key(k)[1]: s.status for k, s in state.keys.items()}


def plan_actions(workspace: Path, key: str) -> dict[str, int]:
    """The next plan's action counts, from the CLI's JSON output."""
    done = run_cli(workspace, "plan", "--format", "json", api_key=key)
    assert done.returncode in (0, 2), done.stderr
    data = json.loads(done.stdout)
    counts: dict[str, int] = {}
    for sendout in data["sendouts"]:
        for action, n in sendout["counts"].items():
            counts[action] = counts.get(action, 0) + n
    return counts


def kill_when(sim: SimProcess, process: subprocess.Popen[str], requests: int,
              deadline: float = 60.0) -> int:
    """SIGKILL `process` once the simulator has seen `requests` more requests."""
    start = sim.stats()["requests"]
    limit = time.monotonic() + deadline
    while time.monotonic() < limit and process.poll() is None:
        if sim.stats()["requests"] - start >= requests:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    process.wait(timeout=30)
    return int(sim.stats()["requests"] - start)


def apply_until_done(workspace: Path, key: str, *,
                     runs: int = 8) -> list[subprocess.CompletedProcess[str]]:
    results = []
    for _ in range(runs):
        done = run_cli(workspace, "apply", "--auto-approve", api_key=key, timeout=180)
        results.append(done)
        assert done.returncode in (0, 1), done.stdout + done.stderr
        if "Nothing to send" in done.stdout:
            return results
    raise AssertionError("apply did not converge:\n" + "\n".join(r.stdout for r in results))


def sweep_for_key(key: str, *texts: str, roots: tuple[Path, ...] = ()) -> None:
    for text in texts:
        assert key not in text
    for root in roots:
        assert files_containing(root, key) == []


@pytest.mark.slow
@pytest.mark.parametrize("allow_multiple", [False, True], ids=["allow_one", "allow_multiple"])
def test_sigkill_at_random_points_then_reapply(tmp_path: Path, allow_multiple: bool) -> None:
    key = new_api_key()
    rng = random.Random(20 + allow_multiple)
    with sim_process(catalog(key), args=["--latency-ms", "5"]) as sim:
        clients = write_workspace(tmp_path / "ws", base_url=sim.url, recipients=20_000,
                                  allow_multiple=allow_multiple, settings=PACED)
        ws = tmp_path / "ws"
        kills = 0
        for _ in range(3):
            process = start_cli(ws, "apply", "--auto-approve", api_key=key)
            # 200 requests in all; the kills land within the first ~90, leaving room for
            # the requests that slip in between the poll and the SIGKILL on a loaded machine
            seen = kill_when(sim, process, rng.randint(5, 30))
            if process.returncode == -signal.SIGKILL:
                kills += 1
            assert seen > 0
        assert kills >= 2  # the kills landed mid-run
        assert 0 < len(sim.counts(CAMPAIGN)) < len(clients)
        apply_until_done(ws, key)
        counts = sim.counts(CAMPAIGN)
        statuses = ledger_statuses(ws)
        if not allow_multiple:
            assert counts == dict.fromkeys(clients, 1)  # everyone, exactly once
            assert set(statuses.values()) == {"accepted"}
            return
        # allow_multiple: nobody twice; what the ledger cannot vouch for is blocked.
        assert set(counts.values()) == {1}
        in_doubt = {c for c, s in statuses.items() if s in ("unknown", "partial")}
        accepted = {c for c, s in statuses.items() if s == "accepted"}
        assert accepted <= set(counts)
        assert accepted | in_doubt == set(clients)  # nobody silently missed
        assert in_doubt  # a SIGKILL mid-request leaves some in doubt
        actions = plan_actions(ws, key)
        assert actions.get("blocked", 0) == len(in_doubt)
        assert actions.get("send", 0) == actions.get("retry", 0) == 0


@pytest.mark.slow
def test_injected_faults_lose_nothing_and_duplicate_nothing(tmp_path: Path) -> None:
    key = new_api_key()
    log = tmp_path / "sim.log"
    # 10% 500s, 5% accepted-then-timed-out, 5% dropped after accepting, 5% injected 429s,
    # and a server bucket smaller than the client's pace: real bursts of 429.
    faults = ["--fail-rate", "0.1", "--timeout-rate", "0.05", "--drop-rate", "0.05",
              "--429-rate", "0.05", "--hang-seconds", "3", "--rate-limit", "80",
              "--burst", "10", "--seed", "11"]
    with sim_process(catalog(key), args=faults, log=log) as sim:
        ws = tmp_path / "ws"
        clients = write_workspace(ws, base_url=sim.url, recipients=4_000, settings={
            "batch_size": 40, "requests_per_second": 120, "concurrency": 8,
            "timeout_seconds": 0.5})
        results = apply_until_done(ws, key)
        counts = sim.counts(CAMPAIGN)
        stats = sim.stats()
    assert counts == dict.fromkeys(clients, 1)
    assert set(ledger_statuses(ws).values()) == {"accepted"}
    injected = stats["injected"]
    assert injected["500"] and injected["timeout"] and injected["drop"] and injected["429"]
    assert stats["rateLimited"] > 0  # the client met real 429 bursts too
    sweep_for_key(key, *(r.stdout + r.stderr for r in results), roots=(ws, log.parent))


@pytest.mark.slow
def test_a_saved_plan_applied_twice_sends_once(tmp_path: Path) -> None:
    key = new_api_key()
    with sim_process(catalog(key)) as sim:
        ws = tmp_path / "ws"
        clients = write_workspace(ws, base_url=sim.url, recipients=300)
        plan_file = tmp_path / "reviewed.plan.gz"
        planned = run_cli(ws, "plan", "--out", str(plan_file))
        assert planned.returncode in (0, 2), planned.stderr
        # The manifests change after review: the saved plan is still what gets sent.
        (ws / "manifests" / "promo.yaml").write_text("not: [valid", encoding="utf-8")
        first = run_cli(ws, "apply", "--auto-approve", str(plan_file), api_key=key)
        assert first.returncode == 0, first.stdout + first.stderr
        assert sim.counts(CAMPAIGN) == dict.fromkeys(clients, 1)
        second = run_cli(ws, "apply", "--auto-approve", str(plan_file), api_key=key)
        assert second.returncode == 1
        assert "refusing a stale plan" in second.stderr and "Traceback" not in second.stderr
        assert sim.counts(CAMPAIGN) == dict.fromkeys(clients, 1)
        assert sim.stats()["requests"] == 3  # 300 in batches of 100, once
    sweep_for_key(key, first.stdout, first.stderr, second.stdout, second.stderr,
                  roots=(tmp_path,))


@pytest.mark.slow
def test_the_api_key_never_leaks_even_when_refused(tmp_path: Path) -> None:
    key = new_api_key()
    wrong = new_api_key()
    with sim_process(catalog(key)) as sim:
        ws = tmp_path / "ws"
        write_workspace(ws, base_url=sim.url, recipients=500, settings={"batch_size": 10})
        refused = run_cli(ws, "apply", "--auto-approve", api_key=wrong)
        assert refused.returncode == 1
        assert "401" in refused.stdout + refused.stderr
        assert sim.counts() == {}
        assert sim.stats()["requests"] <= 16  # stopped: only what was already in flight
        ok = run_cli(ws, "apply", "--auto-approve", api_key=key)
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert len(sim.counts(CAMPAIGN)) == 500
    for secret in (key, wrong):
        sweep_for_key(secret, refused.stdout, refused.stderr, ok.stdout, ok.stderr,
                      roots=(tmp_path,))


def test_missing_key_is_a_clear_error_before_anything_is_sent(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    write_workspace(ws, base_url="http://127.0.0.1:9", recipients=3)
    done = run_cli(ws, "apply", "--auto-approve", api_key=None)
    assert done.returncode == 1
    assert API_KEY_ENV in done.stderr and "Traceback" not in done.stderr
    assert not (ws / ".declare" / "ledger.jsonl").exists()


def test_another_apply_holding_the_lock_is_named_and_nothing_is_sent(tmp_path: Path) -> None:
    from connectly_declare.ledger.local import LocalLedger

    ws = tmp_path / "ws"
    write_workspace(ws, base_url="http://127.0.0.1:9", recipients=3)
    ledger = LocalLedger(ws / ".declare" / "ledger.jsonl")
    with ledger.lock("apply (the other pipeline)"):
        done = run_cli(ws, "apply", "--auto-approve", api_key=new_api_key())
    assert done.returncode == 1, done.stdout + done.stderr
    assert "the other pipeline" in done.stderr and "Traceback" not in done.stderr
    assert "Apply" not in done.stdout
    assert "Waiting" not in done.stderr  # --lock-timeout 0 (the default): no wait
    with ledger.lock("apply (the other pipeline)"):
        waited = run_cli(ws, "apply", "--auto-approve", "--lock-timeout", "0.5",
                         api_key=new_api_key())
    assert waited.returncode == 1, waited.stdout + waited.stderr
    first = waited.stderr.splitlines()[0]
    assert first.startswith("Waiting up to 0.5 s for the ledger's writer lock: lock ")
    assert "the other pipeline" in first


def answer_on_a_terminal(workspace: Path, key: str, answer: str) -> tuple[int, str, str]:
    """Run apply with a pseudo-terminal as stdin and type `answer` at the prompt."""
    import os
    import pty

    leader, follower = pty.openpty()
    try:
        process = subprocess.Popen(cli_command(workspace, "apply"), stdin=follower,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   env=cli_env(key), cwd=workspace)
        os.write(leader, answer.encode() + b"\n")
        out, err = process.communicate(timeout=60)
    finally:
        os.close(leader)
        os.close(follower)
    return process.returncode, out, err


@pytest.mark.slow
def test_on_a_terminal_only_yes_sends(tmp_path: Path) -> None:
    key = new_api_key()
    with sim_process(catalog(key)) as sim:
        ws = tmp_path / "ws"
        clients = write_workspace(ws, base_url=sim.url, recipients=5)
        code, out, err = answer_on_a_terminal(ws, key, "y")
        assert code == 1 and "Apply these sends? (yes/no)" in err
        assert "nothing was sent" in out and sim.stats()["requests"] == 0
        code, out, err = answer_on_a_terminal(ws, key, "yes")
        assert code == 0, out + err
        assert sim.counts(CAMPAIGN) == dict.fromkeys(clients, 1)


def test_without_a_terminal_apply_needs_auto_approve(tmp_path: Path) -> None:
    key = new_api_key()
    with sim_process(catalog(key)) as sim:
        ws = tmp_path / "ws"
        write_workspace(ws, base_url=sim.url, recipients=3)
        done = run_cli(ws, "apply", api_key=key, input="yes\n")
        assert done.returncode == 1
        assert "--auto-approve" in done.stderr
        assert sim.stats()["requests"] == 0


def wait_for_requests(sim: SimProcess, count: int, deadline: float = 60.0) -> None:
    limit = time.monotonic() + deadline
    while sim.stats()["requests"] < count and time.monotonic() < limit:
        time.sleep(0.02)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_finishes_in_flight_requests_records_them_and_exits_130(
        tmp_path: Path, sig: signal.Signals) -> None:
    key = new_api_key()
    with sim_process(catalog(key), args=["--latency-ms", "150"]) as sim:
        ws = tmp_path / "ws"
        clients = write_workspace(ws, base_url=sim.url, recipients=400, settings={
            "batch_size": 10, "requests_per_second": 40, "concurrency": 4})
        process = start_cli(ws, "apply", "--auto-approve", api_key=key)
        wait_for_requests(sim, 6)
        process.send_signal(sig)
        out, err = process.communicate(timeout=60)
        assert process.returncode == 130, out + err
        assert "Apply interrupted" in out and "Stopping" in err
        delivered = sim.counts(CAMPAIGN)
        assert 0 < len(delivered) < len(clients)
        # Every request answered before exit has its outcome recorded: nothing in doubt.
        statuses = ledger_statuses(ws)
        assert {c for c, s in statuses.items() if s == "accepted"} == set(delivered)
        assert set(statuses.values()) == {"accepted"}
        apply_until_done(ws, key)
        assert sim.counts(CAMPAIGN) == dict.fromkeys(clients, 1)


@pytest.mark.slow
def test_a_second_ctrl_c_exits_at_once_and_the_ledger_still_holds_every_intent(
        tmp_path: Path) -> None:
    key = new_api_key()
    # Answers take 2 s: the second Ctrl-C comes while all four requests are in flight.
    with sim_process(catalog(key), args=["--latency-ms", "2000"]) as sim:
        ws = tmp_path / "ws"
        clients = write_workspace(ws, base_url=sim.url, recipients=40, settings={
            "batch_size": 10, "requests_per_second": 50, "concurrency": 4})
        process = start_cli(ws, "apply", "--auto-approve", api_key=key)
        wait_for_requests(sim, 4)
        process.send_signal(signal.SIGINT)
        time.sleep(0.3)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
        assert process.returncode == 130, out + err
        assert "Exiting now" in err
        statuses = ledger_statuses(ws)
        assert len(statuses) == 40 and set(statuses.values()) == {"unknown"}  # 4 in flight
        time.sleep(2)  # let the simulator finish what it was given
        sim_before = sim.counts(CAMPAIGN)
        assert set(sim_before) <= set(statuses)
        apply_until_done(ws, key)
        assert sim.counts(CAMPAIGN) == dict.fromkeys(clients, 1)


@pytest.mark.slow
def test_apply_sim_on_the_example_workspace(tmp_path: Path) -> None:
    ws = tmp_path / "campaigns"
    shutil.copytree(REPO / "campaigns", ws, ignore=shutil.ignore_patterns(".declare"))
    first = run_cli(ws, "apply", "--sim", "--auto-approve", api_key=None)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Apply complete" in first.stdout and "sim-ledger.jsonl" in first.stdout
    second = run_cli(ws, "apply", "--sim", "--auto-approve", api_key=None)
    assert second.returncode == 0 and "Nothing to send" in second.stdout
    assert (ws / ".declare" / "sim-ledger.jsonl").exists()
    assert not (ws / ".declare" / "ledger.jsonl").exists()  # the real ledger is untouched
