"""The simulator over real sockets: uvicorn in a thread with a real httpx client, and the
`connectly-declare sim` command as a subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from connectly_declare.errors import DeclareError
from connectly_declare.sim import Catalog, FaultConfig, Simulator, serve_in_thread
from tests.sim.conftest import KEY, PAGE_CATALOG, SEND_URL, entry

ONE = {"entries": [entry("+16505550001", "campaign_basic")]}
REPO = Path(__file__).resolve().parents[2]


def serve(catalog: Catalog, **faults: Any) -> tuple[Simulator, Any]:
    sim = Simulator(catalog, faults=FaultConfig(**faults), rate_limit=None)
    return sim, serve_in_thread(sim.app)


def test_a_real_client_over_loopback(catalog: Catalog) -> None:
    sim, server = serve(catalog)
    with server as url, httpx.Client(base_url=url, headers={"X-API-Key": KEY}) as client:
        assert url.startswith("http://127.0.0.1:")
        answers = [client.post(SEND_URL, json=ONE) for _ in range(3)]  # one keep-alive conn
        assert [a.json()["data"][0]["acceptedCount"] for a in answers] == [1, 0, 0]
        assert client.get("/openapi.json").json()["openapi"] == "3.1.0"
    assert sim.state.stats.requests == 3


def test_a_dropped_connection_after_accepting(catalog: Catalog) -> None:
    sim, server = serve(catalog, drop_after_accept_rate=1.0)
    with server as url, httpx.Client(base_url=url, headers={"X-API-Key": KEY}) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            client.post(SEND_URL, json=ONE)
        # the entry was accepted although the client never saw an answer
        assert [d["client"] for d in client.get("/_sim/deliveries").json()["deliveries"]] == [
            "+16505550001"]
    assert sim.state.stats.injected_drops == 1


def test_a_timeout_after_accepting(catalog: Catalog) -> None:
    sim, server = serve(catalog, timeout_after_accept_rate=1.0, hang_seconds=60)
    with server as url, httpx.Client(base_url=url, headers={"X-API-Key": KEY}) as client:
        with pytest.raises(httpx.ReadTimeout):
            client.post(SEND_URL, json=ONE, timeout=0.3)
        assert len(client.get("/_sim/deliveries").json()["deliveries"]) == 1
    # leaving the block stopped the server although a response was being held: the hold
    # ends when its client hangs up
    assert sim.state.stats.injected_timeouts == 1


def test_only_loopback_addresses(catalog: Catalog) -> None:
    with pytest.raises(DeclareError, match="only listens on loopback"), \
            serve_in_thread(Simulator(catalog).app, host="0.0.0.0"):
        pass


# --- the command -----------------------------------------------------------------------


class Running:
    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        assert proc.stdout is not None
        self.stdout: IO[str] = proc.stdout
        self.banner = [self.stdout.readline() for _ in range(5)]
        assert "listening on http://127.0.0.1:" in self.banner[0], self.banner
        self.url = self.banner[0].rsplit(" ", 1)[1].strip()


@pytest.fixture
def run_sim() -> Iterator[Any]:
    procs: list[subprocess.Popen[str]] = []

    def start(*args: str, cwd: Path = REPO, env: dict[str, str] | None = None) -> Running:
        proc = subprocess.Popen(
            [sys.executable, "-m", "connectly_declare", "sim", "--port", "0", *args],
            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, **(env or {})})
        procs.append(proc)
        return Running(proc)

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_the_command_serves_a_catalog_until_a_signal(run_sim: Any, sig: int) -> None:
    sim = run_sim("--catalog", str(PAGE_CATALOG), "--seed", "3")
    assert any("business page-business" in line for line in sim.banner)
    assert not any(KEY in line for line in sim.banner)  # API keys are never printed
    answer = httpx.post(sim.url + SEND_URL, json=ONE, headers={"X-API-Key": KEY})
    assert answer.json()["data"][0]["status"] == "created"
    sim.proc.send_signal(sig)
    out, err = sim.proc.communicate(timeout=20)
    assert sim.proc.returncode == 0, err
    assert f"Stopped by {signal.Signals(sig).name} after 1 requests" in out


def test_the_command_injects_faults_from_its_flags(run_sim: Any) -> None:
    sim = run_sim("--catalog", str(PAGE_CATALOG), "--fail-rate", "1")
    answer = httpx.post(sim.url + SEND_URL, json=ONE, headers={"X-API-Key": KEY})
    assert answer.status_code == 500
    sim.proc.terminate()
    assert sim.proc.wait(timeout=20) == 0


def test_the_command_builds_its_catalog_from_the_workspace(run_sim: Any,
                                                           tmp_path: Path) -> None:
    (tmp_path / "declare.yaml").write_text(
        "version: 1\nbusiness_id: ws-business\napi_key_env: WS_TEST_KEY\n")
    (tmp_path / "campaigns.yaml").write_text(
        "kind: Campaign\nname: spring sale\nversions:\n"
        "  - version: v1\n    variables: [first_name]\n")
    sim = run_sim(cwd=tmp_path, env={"WS_TEST_KEY": "from-the-environment",
                                     "DECLARE_SIM_API_KEY": ""})
    assert any("API key: $WS_TEST_KEY" in line for line in sim.banner)
    answer = httpx.post(
        sim.url + "/v1/businesses/ws-business/send/campaigns",
        json={"entries": [entry("+16505550001", "spring sale",
                                variables={"first_name": "Ann"})]},
        headers={"X-API-Key": "from-the-environment"})
    assert answer.json()["data"][0]["status"] == "created"
    sim.proc.terminate()
    assert sim.proc.wait(timeout=20) == 0


@pytest.mark.parametrize(("args", "message"), [
    (["--host", "0.0.0.0", "--catalog", str(PAGE_CATALOG)], "only listens on loopback"),
    (["--catalog", "missing.yaml"], "missing.yaml: cannot read the simulator catalog"),
])
def test_the_command_refuses_clearly(args: list[str], message: str, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "connectly_declare", "sim", *args],
                          cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_the_banner_describes_the_catalog_without_keys(run_sim: Any, tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps({"businesses": [
        {"id": "b1", "api_keys": ["secret-1"], "campaigns": [{"name": "c1"}]}]}))
    sim = run_sim("--catalog", str(catalog), "--api-key", "secret-2", "--rate-limit", "0")
    text = "".join(sim.banner)
    assert "business b1" in text and "c1" in text and "rate limit: off" in text
    assert "secret" not in text
    ok = httpx.post(sim.url + "/v1/businesses/b1/send/campaigns", json={},
                    headers={"X-API-Key": "secret-2"})
    assert ok.status_code == 200
    sim.proc.terminate()
    sim.proc.wait(timeout=20)
