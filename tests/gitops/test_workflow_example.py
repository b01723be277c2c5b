"""The shipped GitHub Actions workflows and the composite action (action.yml): valid
against GitHub's schemas (with the real check-jsonschema and its vendored schemas, no
network), and doing what the README says. test_workflow_runs.py runs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
POSTGRES = REPO / "examples" / "github" / "connectly-declare.yml"
LOCAL = REPO / "examples" / "github" / "connectly-declare-local-ledger.yml"
WORKFLOWS = [POSTGRES, LOCAL]
ACTION = REPO / "action.yml"


def _check(path: Path, schema: str = "vendor.github-workflows") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema",
                           schema, str(path)],
                          capture_output=True, text=True, timeout=120)


def _load(path: Path) -> dict[Any, Any]:
    # PyYAML reads the key `on` as True (YAML 1.1); GitHub reads it as "on".
    doc: dict[Any, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return doc


def _args(job: dict[str, Any]) -> list[str]:
    """The connectly-declare command lines a job runs through the action."""
    return [step["with"]["args"] for step in job["steps"]
            if step.get("uses", "").endswith("/connectly-declare@v0")]


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_the_workflow_is_valid_for_github(workflow: Path) -> None:
    result = _check(workflow)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_action_is_valid_for_github() -> None:
    result = _check(ACTION, "vendor.github-actions")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_checks_do_reject_a_broken_workflow_and_action(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(POSTGRES.read_text(encoding="utf-8").replace(
        "runs-on: ubuntu-latest", "runs_on: ubuntu-latest", 1), encoding="utf-8")
    assert _check(broken).returncode != 0
    action = tmp_path / "action.yml"
    action.write_text(ACTION.read_text(encoding="utf-8").replace(
        "using: composite", "using: compost", 1), encoding="utf-8")
    assert _check(action, "vendor.github-actions").returncode != 0


def test_the_action_installs_itself_from_its_own_ref_and_runs_the_given_command() -> None:
    action = _load(ACTION)
    assert action["runs"]["using"] == "composite"
    assert set(action["inputs"]) >= {"args", "working-directory", "python-version"}
    assert action["inputs"]["args"]["required"] is True
    steps = action["runs"]["steps"]
    install = next(s for s in steps if s.get("id") == "install")
    assert install["env"]["ACTION_PATH"] == "${{ github.action_path }}"
    assert 'pip install' in install["run"] and '"$ACTION_PATH"' in install["run"]
    run = next(s for s in steps if s.get("id") == "run")
    assert run["working-directory"] == "${{ inputs.working-directory }}"
    # The arguments reach the script through the environment, never pasted into it, so
    # `args` cannot run shell code.
    assert "inputs.args" not in run["run"] and run["env"]["INPUT_ARGS"] == "${{ inputs.args }}"
    assert 'connectly-declare "${argv[@]}"' in run["run"]


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_plan_on_pull_requests_posts_one_comment_per_environment(workflow: Path) -> None:
    doc = _load(workflow)
    assert "pull_request" in doc[True] and doc[True]["push"]["branches"] == ["main"]
    plan = doc["jobs"]["plan"]
    assert plan["permissions"]["pull-requests"] == "write"
    assert plan["strategy"]["matrix"]["environment"] == ["staging", "production"]
    args = _args(plan)
    assert any(a.startswith("validate") for a in args)
    assert any("plan --format markdown" in a and "--out-comment" in a for a in args)
    script = next(s for s in plan["steps"] if "github-script" in s.get("uses", ""))
    code = script["with"]["script"]
    assert "startsWith(marker)" in code and "updateComment" in code and "createComment" in code
    runs = " ".join(step.get("run", "") for step in plan["steps"])
    assert " declare " not in f" {runs} "  # never the bash builtin


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_apply_on_main_is_serialised_and_auto_approved(workflow: Path) -> None:
    apply = _load(workflow)["jobs"]["apply"]
    assert "push" in apply["if"] and "refs/heads/main" in apply["if"]
    assert apply["concurrency"]["cancel-in-progress"] is False
    assert "matrix.environment" in apply["concurrency"]["group"]
    assert apply["strategy"]["max-parallel"] == 1
    assert _args(apply) == ["apply --auto-approve"]


def test_the_local_ledger_apply_commits_the_ledger_back_even_after_a_failure() -> None:
    apply = _load(LOCAL)["jobs"]["apply"]
    assert apply["permissions"]["contents"] == "write"
    checkout = apply["steps"][0]
    assert checkout["uses"].startswith("actions/checkout@") and checkout["with"]["ref"] == "main"
    commit = next(s for s in apply["steps"] if s.get("name") == "Commit the ledger back")
    assert commit["if"] == "${{ !cancelled() }}"
    assert "git push" in commit["run"] and 'git add -- "$LEDGER"' in commit["run"]
