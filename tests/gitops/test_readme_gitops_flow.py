"""The README's local-ledger GitOps flow, as written: its "set up" block in a copy of this
repository's examples, then the workflow it installs (apply job, staging then production,
through tests/support/workflow.py, simulators standing in for the Connectly API, a bare
repository standing in for GitHub), then its "after the merge" block."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

import pytest
import yaml

from tests.support.e2e import catalog, new_api_key, sim_process
from tests.support.workflow import Runner, load

REPO = Path(__file__).resolve().parents[2]
BUSINESSES = {"staging": "acme-staging", "production": "acme"}
CAMPAIGN = ("welcome 2027", (("v1", ("first_name", "store")),))


def _blocks() -> dict[str, str]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    found = {}
    for block in re.findall(r"```bash\n(.*?)```", readme, flags=re.S):
        first = block.splitlines()[0]
        if first.startswith("# gitops-flow: "):
            found[first.removeprefix("# gitops-flow: ")] = block
    return found


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DECLARE_ENV", "NO_COLOR", "CI", "GITHUB_ACTIONS", "VIRTUAL_ENV")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update({"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
                "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid",
                "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"})
    return env


def _bash(script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=cwd,
                          env=_env(), capture_output=True, text=True, timeout=300,
                          check=False)


def _git(args: list[str], cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, env=_env(), check=True, capture_output=True,
                   timeout=60)


def test_the_readme_has_both_blocks_of_the_flow() -> None:
    blocks = _blocks()
    assert set(blocks) == {"set up", "after the merge"}
    assert "connectly-declare-local-ledger.yml" in blocks["set up"]
    assert "git pull" in blocks["after the merge"]


@pytest.mark.slow
def test_the_readme_gitops_flow_runs_as_written(tmp_path: Path) -> None:
    blocks = _blocks()
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    set_up = _bash(blocks["set up"], tmp_path)
    assert set_up.returncode == 0, set_up.stdout + set_up.stderr
    assert "5 to send" in set_up.stdout
    repo = tmp_path / "my-sendouts"

    key = new_api_key()
    with ExitStack() as stack:
        sims = {env: stack.enter_context(sim_process(
            catalog(key, business=business, campaigns=(CAMPAIGN,)), business=business))
            for env, business in BUSINESSES.items()}
        # Not in the README: the simulators stand in for the API the environments reach.
        config_path = repo / "campaigns" / "declare.yaml"
        config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
        for env, sim in sims.items():
            config["environments"][env] = {**(config["environments"][env] or {}),
                                           "base_url": sim.url}
        config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        _git(["commit", "-q", "-am", "test: the simulators stand in for the API"], repo)
        # "Push it to GitHub": a bare repository is the remote.
        origin = tmp_path / "github.git"
        _git(["clone", "-q", "--bare", str(repo), str(origin)], tmp_path)
        _git(["remote", "add", "origin", str(origin)], repo)

        workflow = load(repo / ".github" / "workflows" / "connectly-declare.yml")
        (tmp_path / "runner").mkdir()
        runner = Runner(workflow, origin, tmp_path / "runner",
                        secrets={"CONNECTLY_API_KEY": key})
        for env in BUSINESSES:
            run = runner.run_job("apply", {"environment": env})
            assert not run.failed, run.output
            assert "Apply complete" in run.output, run.output
            assert set(sims[env].counts().values()) == {1} and len(sims[env].counts()) == 5

        after = _bash(blocks["after the merge"], repo)
        assert after.returncode == 0, after.stdout + after.stderr
        assert "connectly-declare: staging ledger after apply [skip ci]" in after.stdout
        assert "connectly-declare: production ledger after apply [skip ci]" in after.stdout
        assert after.stdout.count("Plan: nothing to send") == 2, after.stdout
        assert all(set(sim.counts().values()) == {1} for sim in sims.values())
