"""The example workflows, run: every `run:` step of every job of each workflow (and the
`run:` steps of this repository's action they use), with the workflow's environment
variables, in a git checkout of the example workspace, against real simulators standing
in for the Connectly API (one per environment) and, for the PostgreSQL variant, a real
PostgreSQL. A command that breaks fails the test."""

from __future__ import annotations

import secrets
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from psycopg import sql

from tests.support.e2e import SimProcess, catalog, new_api_key, sim_process
from tests.support.pg import postgres_server
from tests.support.workflow import JobRun, Runner, load

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
WORKSPACE = EXAMPLES / "gitops-workspace"
LOCAL = EXAMPLES / "github" / "connectly-declare-local-ledger.yml"
POSTGRES = EXAMPLES / "github" / "connectly-declare.yml"
BUSINESSES = {"staging": "acme-staging", "production": "acme"}
CAMPAIGN = ("welcome 2027", (("v1", ("first_name", "store")),))
PEOPLE = 5  # rows of examples/gitops-workspace/data/new-customers.csv


def _git(args: list[str], cwd: Path) -> str:
    env = {"GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1", "PATH": "/usr/bin:/bin",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True,
                          text=True, timeout=60).stdout


def _sendouts_repo(tmp: Path, workflow: Path, sims: Mapping[str, SimProcess],
                   declare: Mapping[str, Any] | None = None) -> Path:
    """A bare `origin` holding a sendouts repository: the example workspace as campaigns/
    (each environment's base_url pointing at its simulator) and the workflow."""
    work = tmp / "author"
    shutil.copytree(WORKSPACE, work / "campaigns")
    config_path = work / "campaigns" / "declare.yaml"
    config = dict(declare or yaml.safe_load(config_path.read_text(encoding="utf-8")))
    for name, sim in sims.items():
        config["environments"][name] = {**(config["environments"][name] or {}),
                                        "base_url": sim.url}
    config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    (work / ".github" / "workflows").mkdir(parents=True)
    shutil.copy(workflow, work / ".github" / "workflows" / "connectly-declare.yml")
    _git(["init", "--quiet", "-b", "main"], work)
    _git(["add", "."], work)
    _git(["commit", "--quiet", "-m", "sendouts"], work)
    origin = tmp / "origin.git"
    _git(["clone", "--quiet", "--bare", str(work), str(origin)], tmp)
    return origin


def _sims(stack: ExitStack, key: str) -> dict[str, SimProcess]:
    return {env: stack.enter_context(sim_process(catalog(key, business=business,
                                                         campaigns=(CAMPAIGN,)),
                                                 business=business))
            for env, business in BUSINESSES.items()}


def _assert_ok(run: JobRun) -> None:
    assert not run.failed, run.output
    assert all(s.ran for s in run.steps if "connectly-declare" in s.name.lower()
               or s.name in ("Validate", "Plan", "Apply")), run.output


def _plan_every_environment(runner: Runner, expect: str) -> None:
    for env in BUSINESSES:
        run = runner.run_job("plan", {"environment": env}, event="pull_request")
        _assert_ok(run)
        comments = sorted(runner.home.glob(f"plan-{env}-*/temp/plan-comment.md"))
        comment = comments[-1] if comments else None
        assert comment is not None, run.output
        body = comment.read_text(encoding="utf-8")
        assert body.splitlines()[0] == f"<!-- connectly-declare:plan:{env} -->"
        assert expect in body, body
        summary = comment.parent / "step-summary.md"
        assert summary.is_file() and expect in summary.read_text(encoding="utf-8")


def _apply_every_environment(runner: Runner) -> list[JobRun]:
    runs = [runner.run_job("apply", {"environment": env}) for env in BUSINESSES]
    for run in runs:
        _assert_ok(run)
    return runs


@pytest.mark.slow
def test_the_local_ledger_workflow_runs_and_commits_each_ledger_back(tmp_path: Path) -> None:
    key = new_api_key()
    with ExitStack() as stack:
        sims = _sims(stack, key)
        origin = _sendouts_repo(tmp_path, LOCAL, sims)
        (tmp_path / "runner").mkdir()
        runner = Runner(load(LOCAL), origin, tmp_path / "runner",
                        secrets={"CONNECTLY_API_KEY": key})

        _plan_every_environment(runner, f"{PEOPLE} to send")
        first = _apply_every_environment(runner)
        for sim in sims.values():
            counts = sim.counts()
            assert len(counts) == PEOPLE and set(counts.values()) == {1}, counts
        assert all("Apply complete" in run.output for run in first)
        log = _git(["log", "--format=%s", "main"], origin)
        assert "connectly-declare: staging ledger after apply [skip ci]" in log
        assert "connectly-declare: production ledger after apply [skip ci]" in log
        tracked = _git(["ls-tree", "-r", "--name-only", "main"], origin).split()
        assert {"campaigns/.declare/ledger.staging.jsonl",
                "campaigns/.declare/ledger.production.jsonl"} <= set(tracked)
        assert not any(name.endswith((".lock", ".lock.json")) for name in tracked), tracked

        # The next merge: fresh checkouts read the committed ledgers and send nobody again.
        _plan_every_environment(runner, "nothing to send")
        again = _apply_every_environment(runner)
        assert all("Nothing to send" in run.output for run in again), again[0].output
        assert all("the ledger is unchanged" in run.output for run in again)
        # Committed back, the ledger is tracked: no "the next run will not know" warning.
        assert all("is not tracked by Git" not in run.output for run in again)
        for sim in sims.values():
            assert set(sim.counts().values()) == {1}
    assert any("git push" in script for script in runner.commands)


@pytest.fixture()
def pg_dsn_and_schema() -> Iterator[tuple[str, str]]:
    schema = f"wf_{secrets.token_hex(6)}"
    with postgres_server() as server:
        try:
            yield server.dsn, schema
        finally:
            with psycopg.connect(server.dsn, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                    sql.Identifier(schema)))


@pytest.mark.slow
@pytest.mark.postgres
def test_the_postgres_workflow_runs_and_the_second_merge_sends_nothing(
        tmp_path: Path, pg_dsn_and_schema: tuple[str, str]) -> None:
    dsn, schema = pg_dsn_and_schema
    key = new_api_key()
    declare = yaml.safe_load((EXAMPLES / "github" / "declare.postgres.yaml").read_text(
        encoding="utf-8"))
    assert declare["state"]["backend"] == "postgres"
    declare["state"]["schema"] = schema  # its own schema on a shared test server
    with ExitStack() as stack:
        sims = _sims(stack, key)
        origin = _sendouts_repo(tmp_path, POSTGRES, sims, declare)
        (tmp_path / "runner").mkdir()
        runner = Runner(load(POSTGRES), origin, tmp_path / "runner", secrets={
            "CONNECTLY_API_KEY": key, "DECLARE_PG_DSN": dsn, "DECLARE_PG_DSN_READONLY": dsn})

        _plan_every_environment(runner, f"{PEOPLE} to send")
        _apply_every_environment(runner)
        for sim in sims.values():
            assert set(sim.counts().values()) == {1} and len(sim.counts()) == PEOPLE
        _plan_every_environment(runner, "nothing to send")
        again = _apply_every_environment(runner)
        assert all("Nothing to send" in run.output for run in again)
        for sim in sims.values():
            assert set(sim.counts().values()) == {1}
        assert dsn not in "".join(run.output for run in again)


def test_a_broken_command_fails_the_run(tmp_path: Path) -> None:
    """The runner is not blind: a step whose command fails fails the job, and the steps
    after it (without `if: always()`) do not run."""
    workflow = load(LOCAL)
    workflow["jobs"]["plan"]["steps"][1]["with"]["args"] = "validate --no-such-option"
    origin_work = tmp_path / "w"
    shutil.copytree(WORKSPACE, origin_work / "campaigns")
    _git(["init", "--quiet", "-b", "main"], origin_work)
    _git(["add", "."], origin_work)
    _git(["commit", "--quiet", "-m", "x"], origin_work)
    (tmp_path / "runner").mkdir()
    runner = Runner(workflow, origin_work, tmp_path / "runner", secrets={})
    run = runner.run_job("plan", {"environment": "staging"}, event="pull_request")
    assert run.failed and "no-such-option" in run.output
    assert not run.step("Plan").ran
