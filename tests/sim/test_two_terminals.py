"""The README's two-terminal flow, run as written: terminal 1 starts `connectly-declare sim`
(here on a free loopback port), terminal 2 sets the `export` lines it printed and runs the
README's commands. Who received what comes from the simulator's /_sim/counts."""

from __future__ import annotations

import os
import pty
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
REAL_LOOKING_KEY = "live-key-0123456789abcdef"  # must never be printed


def readme_terminal(number: int) -> list[str]:
    """The command lines of the README block that starts `# terminal N`."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"```sh\n(.*?)```", readme, flags=re.S)
              if b.startswith(f"# terminal {number}")]
    assert len(blocks) == 1, f"README has {len(blocks)} blocks for terminal {number}"
    lines = [line.split("  #", 1)[0].strip() for line in blocks[0].splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def argv(line: str) -> list[str]:
    words = shlex.split(line)
    assert words[0] == "connectly-declare", line
    return [sys.executable, "-m", "connectly_declare", *words[1:]]


def base_env() -> dict[str, str]:
    drop = ("CI", "GITHUB_ACTIONS", "DECLARE_ENV", "DECLARE_BASE_URL", "DECLARE_DEBUG",
            "CONNECTLY_API_KEY", "DECLARE_SIM_API_KEY", "NO_COLOR")
    return {k: v for k, v in os.environ.items() if k not in drop} | {"PYTHONUNBUFFERED": "1"}


def run_on_a_terminal(command: list[str], cwd: Path, env: dict[str, str],
                      answer: str) -> subprocess.CompletedProcess[str]:
    leader, follower = pty.openpty()
    try:
        process = subprocess.Popen(command, stdin=follower, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, cwd=cwd, env=env)
        os.write(leader, answer.encode() + b"\n")
        out, err = process.communicate(timeout=180)
    finally:
        os.close(leader)
        os.close(follower)
    return subprocess.CompletedProcess(command, process.returncode, out, err)


@pytest.mark.slow
def test_the_readme_two_terminal_flow_as_written(tmp_path: Path) -> None:
    shutil.copytree(REPO / "campaigns", tmp_path / "campaigns",
                    ignore=shutil.ignore_patterns(".declare"))
    (first,) = readme_terminal(1)
    second = readme_terminal(2)

    sim_env = base_env() | {"CONNECTLY_API_KEY": REAL_LOOKING_KEY}
    sim = subprocess.Popen([*argv(first), "--port", str(free_port())], cwd=tmp_path,
                           env=sim_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
    try:
        assert sim.stdout is not None
        printed: list[str] = []
        for _ in range(40):
            line = sim.stdout.readline()
            if not line:
                break
            printed.append(line)
            if line.startswith("Stop with Ctrl-C"):
                break
        shown = "".join(printed)
        assert "listening on http://127.0.0.1:" in shown, shown
        assert REAL_LOOKING_KEY not in shown
        exports = dict(re.findall(r"^\s+export (\w+)=(\S+)$", shown, flags=re.M))
        url = shown.split("listening on ", 1)[1].split()[0]
        assert exports == {"DECLARE_BASE_URL": url, "CONNECTLY_API_KEY": "sim-demo-key"}
        # the README shows the same variables terminal 1 prints
        written = dict(line.removeprefix("export ").split("=", 1)
                       for line in second if line.startswith("export "))
        assert written.keys() == exports.keys()

        env = base_env() | exports  # terminal 2, after pasting the printed lines
        results = {}
        for line in second:
            if line.startswith("export "):
                continue
            if " apply" in line:
                done = run_on_a_terminal(argv(line), tmp_path, env, "yes")
            else:
                done = subprocess.run(argv(line), cwd=tmp_path, env=env, capture_output=True,
                                      text=True, timeout=180, check=False)
            assert done.returncode == 0, line + "\n" + done.stdout + done.stderr
            results[line] = done.stdout + done.stderr

        apply = next(v for k, v in results.items() if " apply" in k)
        assert f"sends to the simulator at {url.removeprefix('http://')}" in apply
        accepted = int(re.findall(r"Apply complete: (\d+) accepted", apply)[0])
        counts = httpx.get(url + "/_sim/counts", timeout=30).json()["counts"]
        assert sum(row["count"] for row in counts) == accepted > 30
        assert {row["count"] for row in counts} == {1}  # nobody twice per campaign
        assert {row["business"] for row in counts} == {"demo-business"}

        sim_plan = next(v for k, v in results.items() if k.endswith("plan --sim"))
        assert "Plan: nothing to send" in sim_plan
        state = next(v for k, v in results.items() if "state --sim list" in k)
        assert state.count("accepted ") == accepted
        real_plan = next(v for k, v in results.items() if k.endswith(" plan"))
        assert f"Plan: {accepted} to send" in real_plan
        assert not (tmp_path / "campaigns" / ".declare" / "ledger.jsonl").exists()
    finally:
        sim.send_signal(signal.SIGTERM)
        try:
            sim.wait(timeout=20)
        except subprocess.TimeoutExpired:
            sim.kill()
            sim.wait()
        if sim.stdout is not None:
            sim.stdout.close()
