"""End-to-end helpers: a real simulator process on loopback, a real workspace on disk, and
the real CLI run as a subprocess. Plain functions, importable by any test area
(`from tests.support.e2e import sim_process, write_workspace, run_cli`).

The simulator runs in its own process (`python -m connectly_declare sim --port 0`), so it
survives a SIGKILL of the CLI and a test can read back, from its inspection routes, exactly
who received what and how many times.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

REPO = Path(__file__).resolve().parents[2]
API_KEY_ENV = "E2E_CONNECTLY_KEY"
BUSINESS = "e2e-business"
CAMPAIGN = "Spring promo 2024"


def new_api_key() -> str:
    """A random key, distinctive enough that a sweep for it cannot hit by accident."""
    return "e2e-key-" + secrets.token_hex(16)


@dataclass
class SimProcess:
    """A running `connectly-declare sim`: its base URL and its inspection routes."""

    url: str
    process: subprocess.Popen[str]
    business: str
    output: list[str] = field(default_factory=list)

    def _get(self, path: str, **params: str) -> Any:
        response = httpx.get(self.url + path, params=params, timeout=30)
        response.raise_for_status()
        return response.json()

    def counts(self, campaign: str | None = None) -> dict[str, int]:
        """client -> how many times it received `campaign` (all campaigns when None)."""
        params = {"campaign": campaign} if campaign else {}
        found: dict[str, int] = {}
        for row in self._get("/_sim/counts", **params)["counts"]:
            found[row["client"]] = found.get(row["client"], 0) + row["count"]
        return found

    def deliveries(self, **filters: str) -> list[dict[str, Any]]:
        return list(self._get("/_sim/deliveries", **filters)["deliveries"])

    def stats(self) -> dict[str, Any]:
        return dict(self._get("/_sim/stats"))

    def reset(self) -> None:
        httpx.post(self.url + "/_sim/reset", timeout=30).raise_for_status()


def catalog(api_key: str, *, business: str = BUSINESS,
            campaigns: Sequence[tuple[str, Sequence[tuple[str, Sequence[str]]]]] = (
                (CAMPAIGN, (("v1", ("name",)),)),)) -> dict[str, Any]:
    """A one-business simulator catalog: campaign name -> versions (label, variables)."""
    return {"businesses": [{"id": business, "api_keys": [api_key], "campaigns": [
        {"name": name, "versions": [{"label": label, "variables": list(variables)}
                                    for label, variables in versions]}
        for name, versions in campaigns]}]}


@contextmanager
def sim_process(catalog_data: Mapping[str, Any], *, args: Sequence[str] = (),
                business: str = BUSINESS, log: Path | None = None) -> Iterator[SimProcess]:
    """Start the simulator in its own process on a free loopback port; stop it on exit.

    `args` are extra `sim` options (`--rate-limit`, `--fail-rate 0.1`, `--seed 1`...).
    Its output goes to `log` (a temporary file when None) so tests can sweep it."""
    with tempfile.TemporaryDirectory(prefix="declare-sim-") as tmp:
        catalog_file = Path(tmp) / "catalog.json"
        catalog_file.write_text(json.dumps(catalog_data), encoding="utf-8")
        log = log or Path(tmp) / "sim.log"
        with log.open("w", encoding="utf-8") as sink:
            process = subprocess.Popen(
                [sys.executable, "-m", "connectly_declare", "sim", "--port", "0",
                 "--catalog", str(catalog_file), *args],
                stdout=subprocess.PIPE, stderr=sink, text=True, cwd=REPO,
                env={**os.environ, "PYTHONUNBUFFERED": "1"})
            try:
                assert process.stdout is not None
                first = process.stdout.readline()
                if "listening on " not in first:
                    process.kill()
                    process.wait()
                    raise RuntimeError(f"the simulator did not start: {first!r}; "
                                       f"log: {log.read_text(encoding='utf-8')}")
                url = first.rsplit("listening on ", 1)[1].strip()
                yield SimProcess(url, process, business, [first])
            finally:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
                    try:
                        process.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        process.kill()
                        process.wait()
                if process.stdout is not None:
                    process.stdout.close()


def write_recipients(path: Path, count: int, *, start: int = 0) -> list[str]:
    """A CSV audience of `count` distinct US numbers; returns their E.164 forms."""
    # Exchange 200 onwards: valid US numbers (phonenumbers refuses exchanges 0xx/1xx).
    clients = [f"+1415{2_000_000 + (start + i) % 8_000_000:07d}" for i in range(count)]
    lines = ["phone,name"] + [f"{c},Person {start + i}" for i, c in enumerate(clients)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return clients


def write_workspace(root: Path, *, base_url: str, recipients: int = 10,
                    allow_multiple: bool = False, business: str = BUSINESS,
                    campaign: str = CAMPAIGN, version: str = "v1",
                    settings: Mapping[str, Any] | None = None,
                    sendout: str = "spring-promo") -> list[str]:
    """A workspace with one Campaign, one CSV Audience and one Sendout to it; returns the
    recipients' E.164 numbers. `settings` are extra/overriding `declare.yaml` keys."""
    root.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {"version": 1, "business_id": business, "base_url": base_url,
                              "api_key_env": API_KEY_ENV, "manifests": ["manifests/*.yaml"]}
    config.update(settings or {})
    (root / "declare.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    clients = write_recipients(root / "data" / "people.csv", recipients)
    option = "allow_multiple" if allow_multiple else "allow_one"
    docs = [
        {"kind": "Campaign", "name": campaign, "versions": [
            {"version": version, "variables": ["name"]}]},
        {"kind": "Audience", "name": "people", "sources": [{"csv": "data/people.csv"}]},
        {"kind": "Sendout", "name": sendout, "campaign": campaign, "version": version,
         "audience": "people", "options": {"if_duplicate_check_unspecified": option},
         "variables": {"name": "{{ recipient.name }}"}},
    ]
    (root / "manifests").mkdir(exist_ok=True)
    (root / "manifests" / "promo.yaml").write_text(
        yaml.safe_dump_all(docs, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return clients


def edit_sendout(root: Path, **changes: Any) -> None:
    """Edit the Sendout of a workspace made by :func:`write_workspace`, as a person would
    (a keyword set to None removes that key)."""
    path = root / "manifests" / "promo.yaml"
    docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    for doc in docs:
        if doc["kind"] == "Sendout":
            for name, value in changes.items():
                if value is None:
                    doc.pop(name, None)
                else:
                    doc[name] = value
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False, allow_unicode=True),
                    encoding="utf-8")


def cli_env(api_key: str | None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    # the runner's own CI variables are not the test's: a test that wants CI sets them
    env = {k: v for k, v in os.environ.items()
           if k not in (API_KEY_ENV, "CI", "GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY")}
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("DECLARE_DEBUG", None)
    if api_key is not None:
        env[API_KEY_ENV] = api_key
    env.update(extra or {})
    return env


def cli_command(workspace: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "connectly_declare", "-C", str(workspace), *args]


def run_cli(workspace: Path, *args: str, api_key: str | None = None, timeout: float = 120,
            env: Mapping[str, str] | None = None, input: str | None = None
            ) -> subprocess.CompletedProcess[str]:
    """Run `connectly-declare -C WORKSPACE ARGS...` to completion (never raises on exit)."""
    return subprocess.run(cli_command(workspace, *args), capture_output=True, text=True,
                          timeout=timeout, env=cli_env(api_key, env), input=input,
                          cwd=workspace, check=False)


def start_cli(workspace: Path, *args: str, api_key: str | None = None,
              env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
    """Start the CLI without waiting (to signal or kill it); output goes to pipes."""
    return subprocess.Popen(cli_command(workspace, *args), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=cli_env(api_key, env),
                            cwd=workspace)


def files_containing(root: Path, needle: str) -> list[Path]:
    """Every file under `root` whose bytes contain `needle` (gzip files decompressed)."""
    import gzip

    found = []
    raw = needle.encode("utf-8")
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        if path.suffix == ".gz":
            try:
                data = gzip.decompress(data)
            except OSError:
                pass
        if raw in data:
            found.append(path)
    return found


__all__ = [
    "API_KEY_ENV",
    "BUSINESS",
    "CAMPAIGN",
    "SimProcess",
    "catalog",
    "cli_command",
    "cli_env",
    "files_containing",
    "new_api_key",
    "run_cli",
    "sim_process",
    "start_cli",
    "write_recipients",
    "write_workspace",
]
