"""An apply in CI whose local ledger Git does not track warns that the next run will not
know what this one sent: on stderr, as a GitHub annotation and in the job summary. A real
Git repository in a temporary folder, the real CLI, the simulator in its own process."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.e2e import (
    catalog,
    new_api_key,
    run_cli,
    sim_process,
    write_recipients,
    write_workspace,
)


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid",
                    "-c", "commit.gpgsign=false", *args], cwd=repo, check=True,
                   capture_output=True, timeout=60)


@pytest.mark.slow
def test_an_untracked_local_ledger_in_ci_warns_everywhere(tmp_path: Path) -> None:
    key = new_api_key()
    repo = tmp_path / "repo"
    ws = repo / "campaigns"
    summary = tmp_path / "summary.md"
    ci = {"CI": "true", "GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(repo),
          "GITHUB_STEP_SUMMARY": str(summary)}
    with sim_process(catalog(key)) as sim:
        write_workspace(ws, base_url=sim.url, recipients=3)
        git(repo, "init", "-q")
        git(repo, "add", ".")
        git(repo, "commit", "-q", "-m", "workspace")

        done = run_cli(ws, "apply", "--auto-approve", api_key=key, env=ci)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "warning: the local ledger .declare/ledger.jsonl is not tracked by Git" \
            in done.stderr
        assert "the next run will not know what this one sent" in done.stderr
        annotation = [line for line in done.stdout.splitlines()
                      if line.startswith("::warning ")]
        assert len(annotation) == 1
        assert "file=campaigns/.declare/ledger.jsonl" in annotation[0]
        assert "not know what this one sent" in annotation[0]
        assert "not know what this one sent" in summary.read_text(encoding="utf-8")

        # committed back, as the workflow should: the next apply that sends is quiet
        git(repo, "add", "campaigns/.declare/ledger.jsonl")
        git(repo, "commit", "-q", "-m", "ledger")
        write_recipients(ws / "data" / "people.csv", 5)
        summary.unlink()
        done = run_cli(ws, "apply", "--auto-approve", api_key=key, env=ci)
        assert done.returncode == 0, done.stdout + done.stderr
        assert len(sim.counts()) == 5
        assert "not tracked" not in done.stderr and "::warning" not in done.stdout
        assert not summary.exists() or "not know" not in summary.read_text(encoding="utf-8")

        # outside CI nobody is warned (a laptop's ledger is the user's business)
        git(repo, "rm", "-q", "--cached", "campaigns/.declare/ledger.jsonl")
        write_recipients(ws / "data" / "people.csv", 6)
        done = run_cli(ws, "apply", "--auto-approve", api_key=key)
        assert done.returncode == 0 and "not tracked" not in done.stderr


def test_outside_a_git_repository_in_ci_it_warns_too(tmp_path: Path) -> None:
    from connectly_declare.commands.ledger_in_ci import untracked_ledger_warning

    ledger = tmp_path / ".declare" / "ledger.jsonl"
    ledger.parent.mkdir()
    ledger.write_text("{}\n", encoding="utf-8")
    text = untracked_ledger_warning(ledger, {"CI": "true"})
    assert text is not None and "is not in a Git repository" in text
    assert untracked_ledger_warning(ledger, {"CI": "false"}) is None
    assert untracked_ledger_warning(ledger, {}) is None
