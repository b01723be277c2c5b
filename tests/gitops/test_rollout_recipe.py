"""The README's staged-rollout pipeline recipe is what the example workflows do: an hourly
`schedule` and a manual `workflow_dispatch` run the same apply as a merge (so `after:`
gates open by themselves), and nothing but a pull request runs the plan comment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((REPO / "examples" / "github").glob("*.yml"))


def _load(path: Path) -> dict[Any, Any]:
    doc: dict[Any, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return doc


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_a_schedule_and_a_manual_run_apply_like_a_merge(workflow: Path) -> None:
    doc = _load(workflow)
    triggers = doc[True]  # PyYAML reads the key `on` as True
    assert [entry["cron"] for entry in triggers["schedule"]] == ["17 * * * *"]
    assert "workflow_dispatch" in triggers
    apply_if = doc["jobs"]["apply"]["if"]
    for event in ("push", "schedule", "workflow_dispatch"):
        assert f"github.event_name == '{event}'" in apply_if
    assert "refs/heads/main" in apply_if
    assert doc["jobs"]["plan"]["if"] == "github.event_name == 'pull_request'"


def test_the_readme_gives_the_recipe() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Staged rollouts in a pipeline", 1)[1].split("\n## ", 1)[0]
    for needle in ("cron", "workflow_dispatch", "apply --auto-approve", "promote:"):
        assert needle in section
