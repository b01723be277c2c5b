"""A saved plan records its batch size and apply sends with it: what was reviewed is what
is sent, even when declare.yaml changes between `plan --out` and `apply FILE`. The real CLI
against the real simulator on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.support.e2e import CAMPAIGN, catalog, new_api_key, run_cli, sim_process, write_workspace


def set_batch_size(workspace: Path, size: int) -> None:
    path = workspace / "declare.yaml"
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    config["batch_size"] = size
    path.write_text(yaml.safe_dump(config), encoding="utf-8")


@pytest.mark.slow
def test_apply_sends_a_saved_plan_with_the_batch_size_it_was_planned_with(
        tmp_path: Path) -> None:
    key = new_api_key()
    with sim_process(catalog(key)) as sim:
        ws = tmp_path / "ws"
        clients = write_workspace(ws, base_url=sim.url, recipients=5,
                                  settings={"batch_size": 2})
        planned = run_cli(ws, "plan", "--out", "reviewed.plan.gz", api_key=key)
        assert planned.returncode == 0, planned.stdout + planned.stderr
        set_batch_size(ws, 100)  # changed after review: the saved plan's 2 still holds

        refused = run_cli(ws, "apply", "--auto-approve", "--batch-size", "5",
                          "reviewed.plan.gz", api_key=key)
        assert refused.returncode == 1
        assert "the saved plan was reviewed with batch size 2, not 5" in refused.stderr
        assert sim.stats()["requests"] == 0  # nothing sent

        applied = run_cli(ws, "apply", "--auto-approve", "reviewed.plan.gz", api_key=key)
        assert applied.returncode == 0, applied.stdout + applied.stderr
        assert "in 3 requests" in applied.stdout
        assert sim.stats()["requests"] == 3  # 2 + 2 + 1, not one request of 5
        assert sim.counts(CAMPAIGN) == dict.fromkeys(clients, 1)
