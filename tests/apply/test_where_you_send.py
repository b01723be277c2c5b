"""Where you send (issue 17): the plan header, the apply question and the summary name the
endpoint, business, environment, ledger and side; against a non-loopback endpoint the
question wants the environment typed; saved plans keep their side. The real CLI as a
subprocess (on a pseudo-terminal where it asks), the simulator in its own process."""

from __future__ import annotations

import json
import os
import pty
import subprocess
from pathlib import Path

import pytest

from tests.support.e2e import (
    SimProcess,
    catalog,
    cli_command,
    cli_env,
    new_api_key,
    run_cli,
    sim_process,
    write_workspace,
)


def answer_on_a_terminal(ws: Path, args: list[str], key: str, answer: str
                         ) -> tuple[int, str, str]:
    """Run `connectly-declare -C WS ARGS` with stdin on a pseudo-terminal (so it asks) and
    type `answer`; stdout and stderr are pipes."""
    leader, follower = pty.openpty()
    try:
        process = subprocess.Popen(cli_command(ws, *args), stdin=follower,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   env=cli_env(key), cwd=ws)
        os.write(leader, answer.encode() + b"\n")
        out, err = process.communicate(timeout=120)
    finally:
        os.close(leader)
        os.close(follower)
    return process.returncode, out, err


def staging(sim: SimProcess, ws: Path, *, host: str = "127.0.0.1",
            env: str = "staging") -> list[str]:
    return write_workspace(ws, base_url=sim.url.replace("127.0.0.1", host), recipients=3,
                           settings={"environments": {env: {}}})


@pytest.mark.slow
def test_header_question_and_summary_say_where(tmp_path: Path) -> None:
    key = new_api_key()
    with sim_process(catalog(key)) as sim:
        ws = tmp_path / "ws"
        staging(sim, ws)
        host = sim.url.removeprefix("http://")
        done = run_cli(ws, "--env", "staging", "plan", api_key=key)
        assert done.returncode == 0, done.stderr
        where = done.stdout.splitlines()[1]
        for part in (f"Sends to {host} (loopback, not the simulator's side",
                     "business e2e-business", "environment staging",
                     "ledger .declare/ledger.staging.jsonl"):
            assert part in where, where
        done = run_cli(ws, "--env", "staging", "plan", "--sim", "--format", "json")
        data = json.loads(done.stdout)
        assert (data["sim"], data["endpoint"], data["ledger"]) == (
            True, None, ".declare/sim-ledger.staging.jsonl")
        done = run_cli(ws, "--env", "staging", "plan", "--sim")
        assert "Sends to the simulator apply starts (on loopback)" in done.stdout.splitlines()[1]

        code, out, err = answer_on_a_terminal(ws, ["--env", "staging", "apply"], key, "yes")
        assert code == 0, out + err
        assert f"This apply sends to {host}" in err and "Apply these sends? (yes/no)" in err
        summary = out.split("Apply complete", 1)[1]
        assert f"sends to {host}" in summary and "environment staging" in summary
        assert "ledger .declare/ledger.staging.jsonl" in summary
        assert len(sim.counts()) == 3


@pytest.mark.slow
def test_a_real_endpoint_wants_the_environment_typed_not_yes(tmp_path: Path) -> None:
    key = new_api_key()
    with sim_process(catalog(key)) as sim:
        ws = tmp_path / "ws"
        # 0.0.0.0 reaches the simulator on Linux, but is not loopback: a "real" endpoint
        clients = staging(sim, ws, host="0.0.0.0", env="production")
        args = ["--env", "production", "apply"]
        code, out, err = answer_on_a_terminal(ws, args, key, "yes")
        assert code == 1 and "Apply cancelled: nothing was sent." in out
        assert "real sends, not the simulator" in err
        assert "only the environment is accepted to confirm" in err
        assert "Type production to send" in err
        assert sim.stats()["requests"] == 0
        code, out, err = answer_on_a_terminal(ws, args, key, "production")
        assert code == 0, out + err
        assert sim.counts() == dict.fromkeys(clients, 1)


@pytest.mark.slow
def test_saved_plans_keep_their_side(tmp_path: Path) -> None:
    key = new_api_key()
    with sim_process(catalog(key)) as sim:
        ws = tmp_path / "ws"
        write_workspace(ws, base_url=sim.url, recipients=3)
        assert run_cli(ws, "plan", "--sim", "--out", "sim.plan").returncode == 0
        assert run_cli(ws, "plan", "--out", "real.plan").returncode == 0

        done = run_cli(ws, "apply", "--auto-approve", "sim.plan")  # said before any key
        assert done.returncode == 1
        assert "this plan was made for the simulator (`plan --sim`)" in done.stderr
        assert "connectly-declare plan --out FILE" in done.stderr
        done = run_cli(ws, "apply", "--sim", "--auto-approve", "real.plan", api_key=key)
        assert done.returncode == 1
        assert "this plan was made for real sends" in done.stderr
        assert "connectly-declare plan --sim --out FILE" in done.stderr
        assert "stale" not in done.stderr
        done = run_cli(ws, "show", "--sim", "real.plan")
        assert done.returncode == 1 and "made for real sends" in done.stderr
        assert sim.stats()["requests"] == 0

        done = run_cli(ws, "show", "--sim", "sim.plan")
        assert done.returncode == 0 and "Sends to the simulator" in done.stdout
        done = run_cli(ws, "apply", "--sim", "--auto-approve", "sim.plan")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Apply complete: 3 accepted" in done.stdout
        assert sim.stats()["requests"] == 0  # the in-process simulator, not this one

        # the simulator's side, seen by plan and state; the real ledger untouched
        done = run_cli(ws, "state", "--sim", "list")
        assert done.returncode == 0 and done.stdout.count("accepted") == 3
        assert run_cli(ws, "state", "list").stdout.count("accepted") == 0
        done = run_cli(ws, "plan", "--sim", "--format", "json")
        assert json.loads(done.stdout)["totals"]["noop"] == 3

        # a stale simulator plan: the hint makes a simulator plan, not a circle
        done = run_cli(ws, "apply", "--sim", "--auto-approve", "sim.plan")
        assert done.returncode == 1 and "refusing a stale plan" in done.stderr
        assert "connectly-declare plan --sim --out FILE" in done.stderr

        # a real plan is for the endpoint it was made for
        done = run_cli(ws, "plan", "--out", "other.plan", "--base-url",
                       sim.url.replace("127.0.0.1", "0.0.0.0"))
        assert done.returncode == 0, done.stderr
        done = run_cli(ws, "apply", "--auto-approve", "other.plan", api_key=key)
        assert done.returncode == 1
        assert "this plan was made for endpoint 0.0.0.0:" in done.stderr
        assert sim.stats()["requests"] == 0
        done = run_cli(ws, "apply", "--auto-approve", "real.plan", api_key=key)
        assert done.returncode == 0, done.stdout + done.stderr
        assert len(sim.counts()) == 3


def test_a_loopback_base_url_without_sim_and_a_real_one_with_sim_are_refused(
        tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    write_workspace(ws, base_url="https://api.example.invalid", recipients=2)
    key = new_api_key()
    done = run_cli(ws, "apply", "--auto-approve", api_key=key,
                   env={"DECLARE_BASE_URL": "http://127.0.0.1:9"})
    assert done.returncode == 1
    assert "without --sim its deliveries would be recorded in the real ledger" in done.stderr
    assert "add --sim" in done.stderr
    done = run_cli(ws, "apply", "--sim", "--auto-approve", "--base-url",
                   "https://api.example.invalid")
    assert done.returncode == 1 and "api.example.invalid is not one" in done.stderr
    done = run_cli(ws, "plan", "--base-url", "https://u:hunter2@api.example.invalid")
    assert done.returncode == 1 and "must not hold a user or password" in done.stderr
    assert "hunter2" not in done.stdout + done.stderr
    assert not (ws / ".declare").exists()
