"""The command line as people type it: `-C DIR` after the subcommand, colour and the
prompt on a real pseudo-terminal (the CLI runs as a subprocess)."""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "campaigns"
PROMPT = b"Apply these sends? (yes/no)"


def _cli(*args: str, cwd: Path, env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "connectly_declare", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120, env=env, check=False)


@pytest.fixture()
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "repo" / "campaigns"
    shutil.copytree(EXAMPLE, ws, ignore=shutil.ignore_patterns(".declare"))
    return ws


@pytest.mark.parametrize("args", [
    ["validate", "-C", "campaigns"],
    ["-C", "campaigns", "validate"],
    ["-C", "elsewhere", "validate", "-C", "campaigns"],  # the later one wins
])
def test_dash_c_before_or_after_the_subcommand(workspace: Path, args: list[str]) -> None:
    (workspace.parent / "elsewhere").mkdir()
    done = _cli(*args, cwd=workspace.parent)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("valid: 4 campaigns")


@pytest.mark.parametrize("args", [
    ["plan", "-C", "campaigns", "--format", "json"],
    ["state", "-C", "campaigns", "list"],
    ["state", "list", "-C", "campaigns"],
    ["render", "spring-sale", "-C", "campaigns", "--limit", "1"],
])
def test_every_workspace_command_takes_dash_c_after_it(workspace: Path,
                                                       args: list[str]) -> None:
    done = _cli(*args, cwd=workspace.parent)
    assert done.returncode == 0, done.stderr
    assert "no declare.yaml" not in done.stderr


def test_apply_help_names_the_real_plan_option(workspace: Path) -> None:
    done = _cli("apply", "--help", cwd=workspace)
    assert "plan --out FILE" in done.stdout and "plan -out" not in done.stdout


def _on_a_terminal(args: list[str], cwd: Path, env: dict[str, str],
                   answer: bytes | None = None) -> tuple[int, bytes]:
    """Run the CLI with stdin, stdout and stderr on one pseudo-terminal; type `answer` once
    the apply prompt shows. Returns the exit code and everything the terminal showed."""
    import pty

    leader, follower = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "connectly_declare", *args], cwd=cwd,
                               stdin=follower, stdout=follower, stderr=follower, env=env)
    os.close(follower)
    shown = b""
    answered = False
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # EIO: every writer closed the terminal
                    break
                if not chunk:
                    break
                shown += chunk
            if answer is not None and not answered and PROMPT in shown:
                os.write(leader, answer)
                answered = True
            if process.poll() is not None and not ready:
                break
        code = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(leader)
    return code, shown


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("NO_COLOR", "CI", "GITHUB_ACTIONS", "DECLARE_ENV")}
    env.update(extra)
    return env


GREEN = b"\x1b[32m"


def test_an_empty_no_color_keeps_colour_and_a_set_one_removes_it(workspace: Path) -> None:
    # no-color.org: only NO_COLOR "present and not an empty string" turns colour off.
    code, shown = _on_a_terminal(["plan"], workspace, _env(NO_COLOR=""))
    assert code == 0, shown
    assert GREEN in shown
    code, shown = _on_a_terminal(["plan"], workspace, _env(NO_COLOR="1"))
    assert code == 0, shown
    assert b"\x1b[" not in shown and b"to send" in shown


def test_apply_colours_its_plan_and_ctrl_d_at_the_prompt_cancels(workspace: Path) -> None:
    code, shown = _on_a_terminal(["apply", "--sim"], workspace, _env(), answer=b"\x04")
    assert PROMPT in shown
    assert GREEN in shown.split(PROMPT)[0]  # the plan above the question, as `plan` shows it
    assert code == 1, shown  # declined, not interrupted (130)
    assert b"Apply cancelled: nothing was sent." in shown
    assert b"Aborted" not in shown
    assert not (workspace / ".declare" / "sim-ledger.jsonl").exists() or \
        "accepted" not in (workspace / ".declare" / "sim-ledger.jsonl").read_text()
