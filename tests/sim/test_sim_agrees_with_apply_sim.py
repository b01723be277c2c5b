"""`apply --sim` and `connectly-declare sim` build the simulator from a workspace the same
way (one catalog builder, `Campaign.variables_for(None)`, one business resolution): a
workspace that `validate` accepts is accepted by both.

Each workspace is applied twice, by the real CLI as a subprocess: once with `apply --sim`
(the in-process simulator), once against `connectly-declare sim` served from the same
workspace on loopback (its own process), with `base_url` pointing at it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.e2e import API_KEY_ENV, new_api_key, run_cli, write_recipients

CAMPAIGN = "spring sale"


@dataclass(frozen=True)
class Case:
    campaign: dict[str, Any]
    sendout: dict[str, Any]  # version and variables of the Sendout
    environments: dict[str, Any] | None = None
    env: str | None = None  # --env for every command


CASES = {
    "versioned": Case(
        {"versions": [{"version": "v1", "variables": ["name"]}]},
        {"version": "v1", "variables": {"name": "{{ recipient.name }}"}}),
    # No version named and no `variables:` in the manifest: the send goes to the latest
    # version, so it needs (and gives) that version's variables.
    "unversioned, the latest version's variables": Case(
        {"versions": [{"version": "v1", "variables": ["name"]},
                      {"version": "v2", "variables": ["name", "code"]}]},
        {"variables": {"name": "{{ recipient.name }}", "code": "SPRING"}}),
    # `variables:` set in the manifest: those, not the latest version's.
    "unversioned, declared variables": Case(
        {"variables": ["first"], "versions": [{"version": "v1", "variables": ["name"]}]},
        {"variables": {"first": "{{ recipient.name }}"}}),
    # The business comes from the chosen environment (top level: a variable left unset).
    "environment's business": Case(
        {"versions": [{"version": "v1", "variables": ["name"]}]},
        {"version": "v1", "variables": {"name": "{{ recipient.name }}"}},
        environments={"staging": {"business_id": "staging-business"}}, env="staging"),
}


def write(root: Path, case: Case, base_url: str) -> list[str]:
    config: dict[str, Any] = {"version": 1, "base_url": base_url, "api_key_env": API_KEY_ENV,
                              "manifests": ["manifests/*.yaml"]}
    if case.environments:
        config["business_id_env"] = "UNSET_BUSINESS_VARIABLE"
        config["environments"] = case.environments
    else:
        config["business_id"] = "ws-business"
    (root / "declare.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    clients = write_recipients(root / "data" / "people.csv", 3)
    docs = [{"kind": "Campaign", "name": CAMPAIGN, **case.campaign},
            {"kind": "Audience", "name": "people", "sources": [{"csv": "data/people.csv"}]},
            {"kind": "Sendout", "name": "promo", "campaign": CAMPAIGN, "audience": "people",
             **case.sendout}]
    (root / "manifests").mkdir(exist_ok=True)
    (root / "manifests" / "all.yaml").write_text(yaml.safe_dump_all(docs), encoding="utf-8")
    return clients


def global_args(case: Case) -> list[str]:
    return ["--env", case.env] if case.env else []


@pytest.fixture
def served() -> Iterator[Any]:
    """Start `connectly-declare sim --port 0` in a workspace (its catalog from the
    manifests); every process started is stopped at the end."""
    procs: list[subprocess.Popen[str]] = []

    def start(root: Path, case: Case, key: str) -> str:
        proc = subprocess.Popen(
            [sys.executable, "-m", "connectly_declare", *global_args(case), "sim",
             "--port", "0"],
            cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, API_KEY_ENV: key, "DECLARE_SIM_API_KEY": "",
                 "PYTHONUNBUFFERED": "1"})
        procs.append(proc)
        assert proc.stdout is not None
        first = proc.stdout.readline()
        if "listening on " not in first:
            proc.kill()
            raise AssertionError(f"sim did not start: {first!r} {proc.communicate()[1]}")
        return first.rsplit(" ", 1)[1].strip()

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_validate_apply_sim_and_the_sim_command_all_accept(name: str, served: Any,
                                                           tmp_path: Path) -> None:
    case = CASES[name]
    key = new_api_key()
    root = tmp_path / "ws"
    root.mkdir()
    clients = write(root, case, "http://127.0.0.1:9")  # apply --sim ignores base_url

    checked = run_cli(root, *global_args(case), "validate", api_key=key)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    in_process = run_cli(root, *global_args(case), "apply", "--sim", "--auto-approve",
                         api_key=key)
    assert in_process.returncode == 0, in_process.stdout + in_process.stderr
    assert "Apply complete: 3 accepted of 3 planned" in in_process.stdout

    url = served(root, case, key)
    write(root, case, url)  # same manifests; base_url now the served simulator
    business = (case.environments or {}).get(case.env or "", {}).get("business_id",
                                                                     "ws-business")
    against = run_cli(root, *global_args(case), "apply", "--auto-approve", api_key=key)
    assert against.returncode == 0, against.stdout + against.stderr
    assert "Apply complete: 3 accepted of 3 planned" in against.stdout
    counts = httpx.get(url + "/_sim/counts", params={"campaign": CAMPAIGN}, timeout=30)
    assert {(row["business"], row["client"]): row["count"]
            for row in counts.json()["counts"]} == {(business, c): 1 for c in clients}


def test_a_send_naming_no_version_needs_the_latest_versions_variables(
        tmp_path: Path) -> None:
    """`validate` asks for what the simulator (and the server) will ask for."""
    case = Case({"versions": [{"version": "v1", "variables": ["name"]}]}, {})
    write(tmp_path, case, "http://127.0.0.1:9")
    checked = run_cli(tmp_path, "validate")
    assert checked.returncode == 1
    assert "variables: missing 'name', needed by campaign 'spring sale' (no version named)" \
        in checked.stderr, checked.stderr
