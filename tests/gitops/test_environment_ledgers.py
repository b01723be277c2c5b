"""Each environment keeps its own default local ledger (`.declare/ledger.ENV.jsonl`),
through the real CLI against the simulator in its own process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.e2e import (
    catalog,
    new_api_key,
    run_cli,
    sim_process,
    write_workspace,
)

# in real use each environment is its own business (or API): the simulator serves two
ENVS = {"environments": {"staging": {}, "production": {"business_id": "e2e-production"}}}


def two_businesses(key: str) -> dict[str, Any]:
    data = catalog(key)
    data["businesses"] += catalog(key, business="e2e-production")["businesses"]
    return data


def plan_json(ws: Path, env: str, key: str) -> dict[str, object]:
    done = run_cli(ws, "--env", env, "plan", "--format", "json", api_key=key)
    assert done.returncode == 0, done.stderr
    data: dict[str, object] = json.loads(done.stdout)
    return data


@pytest.mark.slow
def test_staging_apply_then_production_plan_each_sees_its_own_history(tmp_path: Path) -> None:
    key = new_api_key()
    with sim_process(two_businesses(key)) as sim:
        ws = tmp_path / "ws"
        clients = write_workspace(ws, base_url=sim.url, recipients=4, settings=ENVS)
        done = run_cli(ws, "--env", "staging", "apply", "--auto-approve", api_key=key)
        assert done.returncode == 0, done.stdout + done.stderr
        assert sim.counts() == dict.fromkeys(clients, 1)
        assert (ws / ".declare" / "ledger.staging.jsonl").exists()
        assert not (ws / ".declare" / "ledger.jsonl").exists()

        # production: its own, empty history; planned, not refused
        production = plan_json(ws, "production", key)
        assert production["environment"] == "production"
        assert production["totals"]["send"] == 4  # type: ignore[index]
        # staging: its history holds every entry
        staging = plan_json(ws, "staging", key)
        assert staging["totals"]["send"] == 0 and staging["totals"]["noop"] == 4  # type: ignore[index]

        done = run_cli(ws, "--env", "production", "apply", "--auto-approve", api_key=key)
        assert done.returncode == 0, done.stdout + done.stderr
        assert sim.counts() == dict.fromkeys(clients, 2)  # once per environment
        assert (ws / ".declare" / "ledger.production.jsonl").exists()


@pytest.mark.slow
def test_an_environment_history_left_in_the_shared_ledger_is_refused_not_forgotten(
        tmp_path: Path) -> None:
    """A workspace from before: environments defined, the history of staging in the shared
    .declare/ledger.jsonl. Planning against a new, empty staging ledger would send everyone
    everything again: refused, with the command that moves the file."""
    key = new_api_key()
    with sim_process(catalog(key)) as sim:
        ws = tmp_path / "ws"
        old = {"environments": {
            "staging": {"state": {"backend": "local", "path": ".declare/ledger.jsonl"}},
            "production": {}}}
        write_workspace(ws, base_url=sim.url, recipients=3, settings=old)
        done = run_cli(ws, "--env", "staging", "apply", "--auto-approve", api_key=key)
        assert done.returncode == 0, done.stdout + done.stderr

        config = yaml.safe_load((ws / "declare.yaml").read_text(encoding="utf-8"))
        config["environments"] = {"staging": {}, "production": {}}
        (ws / "declare.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")

        refused = run_cli(ws, "--env", "staging", "plan", api_key=key)
        assert refused.returncode == 1
        assert "history of environment staging is in .declare/ledger.jsonl" in refused.stderr
        assert "git mv .declare/ledger.jsonl .declare/ledger.staging.jsonl" in refused.stderr
        refused = run_cli(ws, "--env", "staging", "apply", "--auto-approve", api_key=key)
        assert refused.returncode == 1 and sim.stats()["requests"] == 1
        # production's history was never in that file: it plans
        assert plan_json(ws, "production", key)["totals"]["send"] == 3  # type: ignore[index]

        (ws / ".declare" / "ledger.jsonl").rename(ws / ".declare" / "ledger.staging.jsonl")
        assert plan_json(ws, "staging", key)["totals"]["noop"] == 3  # type: ignore[index]
