"""The shipped GitHub Actions workflow: valid against GitHub's workflow schema (with the
real check-jsonschema and its vendored schema, no network), and doing what the README says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / "examples" / "github" / "connectly-declare.yml"


def _check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema",
                           "vendor.github-workflows", str(path)],
                          capture_output=True, text=True, timeout=120)


def _load() -> dict[Any, Any]:
    # PyYAML reads the key `on` as True (YAML 1.1); GitHub reads it as "on".
    doc: dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    return doc


def test_the_workflow_is_valid_for_github() -> None:
    result = _check(WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_does_reject_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text(encoding="utf-8").replace(
        "runs-on: ubuntu-latest", "runs_on: ubuntu-latest", 1), encoding="utf-8")
    assert _check(broken).returncode != 0


def test_plan_on_pull_requests_posts_one_comment_per_environment() -> None:
    doc = _load()
    assert "pull_request" in doc[True] and doc[True]["push"]["branches"] == ["main"]
    plan = doc["jobs"]["plan"]
    assert plan["permissions"]["pull-requests"] == "write"
    runs = " ".join(step.get("run", "") for step in plan["steps"])
    assert "connectly-declare -C" in runs and " validate" in runs
    assert "plan --format markdown" in runs and "--out-comment" in runs
    script = next(s for s in plan["steps"] if "github-script" in s.get("uses", ""))
    code = script["with"]["script"]
    assert "startsWith(marker)" in code and "updateComment" in code and "createComment" in code
    assert " declare " not in f" {runs} "  # never the bash builtin


def test_apply_on_main_is_serialised_and_auto_approved() -> None:
    apply = _load()["jobs"]["apply"]
    assert "push" in apply["if"] and "refs/heads/main" in apply["if"]
    assert apply["concurrency"]["cancel-in-progress"] is False
    assert "matrix.environment" in apply["concurrency"]["group"]
    runs = " ".join(step.get("run", "") for step in apply["steps"])
    assert "apply --auto-approve" in runs
