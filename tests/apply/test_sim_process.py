"""`apply --sim` of a large run serves its simulator from a child process (sim.child,
chosen by commands.simhost): the same answers and rate limit as in-process, the key never
on a command line, and the child gone with apply even when apply is SIGKILLed."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time
from pathlib import Path

import httpx
import pytest

from connectly_declare.commands.simhost import (
    APART_BYTES,
    APART_ENTRIES,
    SIM_PROCESS_ENV,
    apart_for_entries,
    apart_for_workspace,
    audience_bytes,
)
from connectly_declare.errors import DeclareError
from connectly_declare.ledger.local import LocalLedger
from connectly_declare.sim import Catalog
from connectly_declare.sim.child import simulator_process
from connectly_declare.workspace.load import load_workspace
from tests.support.e2e import (
    BUSINESS,
    CAMPAIGN,
    catalog,
    new_api_key,
    run_cli,
    start_cli,
    write_workspace,
)

CHILD = b"connectly_declare.sim.child"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def one_entry(client: str) -> dict[str, object]:
    return {"entries": [{"client": client, "campaignName": CAMPAIGN,
                         "variables": {"name": "A"}}]}


def children_of(pid: int) -> list[int]:
    """The simulator children of process `pid` (Linux /proc)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            if CHILD in Path(f"/proc/{child}/cmdline").read_bytes():
                found.append(int(child))
    return found


def alive(pid: int) -> bool:
    """Running, and not a zombie waiting to be reaped by whoever adopted it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_the_child_serves_the_catalog_with_the_rate_limit_given() -> None:
    key = new_api_key()
    cat = Catalog.model_validate(catalog(key))
    url_path = f"/v1/businesses/{BUSINESS}/send/campaigns"
    with simulator_process(cat, rate_limit=1.0) as url:
        assert url.startswith("http://127.0.0.1:")
        with httpx.Client(base_url=url, headers={"X-API-Key": key}) as client:
            codes = [client.post(url_path, json=one_entry(f"+1415200000{i}")).status_code
                     for i in range(3)]
            assert codes[0] == 200 and 429 in codes  # one request a second
            assert client.post(url_path, json=one_entry("+14152000009"),
                               headers={"X-API-Key": "wrong"}).status_code == 401
    with simulator_process(cat, rate_limit=None) as url:
        with httpx.Client(base_url=url, headers={"X-API-Key": key}) as client:
            assert {client.post(url_path, json=one_entry(f"+1415200001{i}")).status_code
                    for i in range(5)} == {200}
    with pytest.raises(httpx.ConnectError):  # stopped with its block
        httpx.get(url + "/_sim/stats", timeout=1)


def test_the_child_stops_when_its_block_ends() -> None:
    cat = Catalog.model_validate(catalog(new_api_key()))
    with simulator_process(cat, rate_limit=None) as url:
        assert httpx.get(url + "/_sim/stats").status_code == 200
        pids = children_of(os.getpid())
        assert len(pids) == 1
        # its settings (the API key among them) came on stdin, not on its command line
        assert b"e2e-key-" not in Path(f"/proc/{pids[0]}/cmdline").read_bytes()
    assert not alive(pids[0])
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/_sim/stats", timeout=1)


def test_apart_by_size_unless_told(tmp_path: Path) -> None:
    assert not apart_for_entries({}, APART_ENTRIES - 1)
    assert apart_for_entries({}, APART_ENTRIES)
    assert apart_for_entries({SIM_PROCESS_ENV: "always"}, 1)
    assert not apart_for_entries({SIM_PROCESS_ENV: "never"}, 10 * APART_ENTRIES)
    with pytest.raises(DeclareError, match=SIM_PROCESS_ENV):
        apart_for_entries({SIM_PROCESS_ENV: "yes"}, 1)
    write_workspace(tmp_path, base_url="https://api.connectly.ai", recipients=100)
    ws = load_workspace(tmp_path)
    assert audience_bytes(ws) == (tmp_path / "data" / "people.csv").stat().st_size
    assert not apart_for_workspace({}, ws)
    with (tmp_path / "data" / "people.csv").open("a", encoding="utf-8") as fh:
        fh.write("#" * APART_BYTES)  # only the size counts here
    assert apart_for_workspace({}, load_workspace(tmp_path))


def sim_statuses(ws: Path) -> dict[str, str]:
    state = LocalLedger(ws / ".declare" / "sim-ledger.jsonl").read()
    return {k: s.status for k, s in state.keys.items()}


@pytest.mark.slow
def test_apply_sim_from_a_child_process_as_in_process(tmp_path: Path) -> None:
    outputs = {}
    for where in ("always", "never"):
        ws = tmp_path / where
        write_workspace(ws, base_url="https://api.connectly.ai", recipients=40,
                        settings={"batch_size": 10})
        env = {SIM_PROCESS_ENV: where}
        done = run_cli(ws, "apply", "--sim", "--auto-approve", env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        assert set(sim_statuses(ws).values()) == {"accepted"} and len(sim_statuses(ws)) == 40
        again = run_cli(ws, "apply", "--sim", "--auto-approve", env=env)
        assert again.returncode == 0 and "Nothing to send" in again.stdout
        # the same words; only the simulator's generated sendout ids differ
        outputs[where] = UUID.sub("UUID", done.stdout.replace(str(ws), "WS"))
    assert outputs["always"] == outputs["never"]
    assert "Apply complete" in outputs["always"]


@pytest.mark.slow
def test_sigkill_of_apply_leaves_no_simulator_behind(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    write_workspace(ws, base_url="https://api.connectly.ai", recipients=2000,
                    settings={"batch_size": 10})
    process = start_cli(ws, "apply", "--sim", "--auto-approve",
                        env={SIM_PROCESS_ENV: "always", "DECLARE_SIM_RATE_LIMIT": "20"})
    sims: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            sims = sims or children_of(process.pid)
            ledger = ws / ".declare" / "sim-ledger.jsonl"
            if sims and ledger.exists() and len(sim_statuses(ws)) >= 30:  # mid-send
                break
            time.sleep(0.05)
        assert process.poll() is None and len(sims) == 1, "apply did not reach its sends"
        assert alive(sims[0])
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        deadline = time.monotonic() + 20
        while alive(sims[0]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(sims[0]), "the simulator outlived apply"
        assert 0 < len(sim_statuses(ws)) < 2000
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for pid in sims:  # a failed run leaves nothing behind either
            with contextlib.suppress(OSError):
                if alive(pid) and CHILD in Path(f"/proc/{pid}/cmdline").read_bytes():
                    os.kill(pid, signal.SIGKILL)
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()
        process.stderr.close()
