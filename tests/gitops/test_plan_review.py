"""`plan` for pull-request review, through the real CLI: the comment body with its marker,
the job summary, annotations, and every output naming the environment."""

from __future__ import annotations

import json
from pathlib import Path

from connectly_declare.report.github import comment_marker
from tests.support.e2e import run_cli, write_workspace

ENVS = {"environments": {
    "staging": {"state": {"backend": "local", "path": ".declare/staging.jsonl"}},
    "production": {"state": {"backend": "local", "path": ".declare/production.jsonl"}},
}}


def workspace(tmp_path: Path) -> tuple[Path, list[str]]:
    ws = tmp_path / "repo" / "campaigns"
    clients = write_workspace(ws, base_url="http://127.0.0.1:9", recipients=5, settings=ENVS)
    return ws, clients


def gha(tmp_path: Path) -> dict[str, str]:
    return {"GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(tmp_path / "repo"),
            "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md")}


def test_plan_writes_the_marked_comment_and_the_job_summary(tmp_path: Path) -> None:
    ws, clients = workspace(tmp_path)
    comment = tmp_path / "comment.md"
    done = run_cli(ws, "--env", "production", "plan", "--format", "markdown",
                   "--out-comment", str(comment), "--show-recipients", env=gha(tmp_path))
    assert done.returncode == 0, done.stderr
    body = comment.read_text(encoding="utf-8")
    assert body.splitlines()[0] == comment_marker("production")
    assert "production" in body.splitlines()[1]
    summary = (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert "plan: production" in summary and "5 to send" in summary
    for text in (body, summary):  # masked even with --show-recipients
        assert not any(c in text for c in clients)
    assert clients[0] in done.stdout  # ...which still unmasks the job log's own output
    # A second plan (a later push) rewrites the comment body and appends another summary.
    again = run_cli(ws, "--env", "production", "plan", "--format", "markdown",
                    "--out-comment", str(comment), env=gha(tmp_path))
    assert again.returncode == 0 and comment.read_text(encoding="utf-8") == body
    assert (tmp_path / "summary.md").read_text(encoding="utf-8").count(
        comment_marker("production")) == 0  # the marker is for the comment only


def test_outside_github_actions_no_summary_is_written(tmp_path: Path) -> None:
    ws, _ = workspace(tmp_path)
    env = {**gha(tmp_path), "GITHUB_ACTIONS": "false"}
    done = run_cli(ws, "--env", "staging", "plan", env=env)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "summary.md").exists()
    assert "staging" in done.stdout


def test_every_format_names_the_environment(tmp_path: Path) -> None:
    ws, _ = workspace(tmp_path)
    text = run_cli(ws, "plan", env={"DECLARE_ENV": "staging"})
    assert text.returncode == 0 and "staging" in text.stdout
    markdown = run_cli(ws, "--env", "staging", "plan", "--format", "markdown")
    assert "staging" in markdown.stdout
    data = json.loads(run_cli(ws, "--env", "staging", "plan", "--format", "json").stdout)
    assert data["environment"] == "staging"


def test_a_workspace_with_environments_refuses_a_plan_without_one(tmp_path: Path) -> None:
    ws, _ = workspace(tmp_path)
    done = run_cli(ws, "plan", env=gha(tmp_path))
    assert done.returncode == 1
    assert "choose one" in done.stderr and "--env" in done.stderr
    assert done.stdout.startswith("::error file=campaigns/declare.yaml,title=")
    wrong = run_cli(ws, "--env", "prod", "plan")
    assert wrong.returncode == 1 and "unknown environment 'prod'" in wrong.stderr
    assert "Traceback" not in done.stderr + wrong.stderr


def test_plan_annotates_manifest_problems(tmp_path: Path) -> None:
    ws, _ = workspace(tmp_path)
    promo = ws / "manifests" / "promo.yaml"
    promo.write_text(promo.read_text(encoding="utf-8").replace(
        "audience: people", "audience: nobody"), encoding="utf-8")
    done = run_cli(ws, "--env", "staging", "plan", env=gha(tmp_path))
    assert done.returncode == 1
    assert any(line.startswith("::error file=campaigns/manifests/promo.yaml,line=")
               for line in done.stdout.splitlines()), done.stdout + done.stderr
