"""`apply --auto-approve` of a fresh plan sends while it plans (commands.apply_stream):
the real CLI against the real simulator in its own process. It sends exactly what the
plan-first apply sends, refuses before any request what only the whole plan can tell,
stops cleanly at a bad row, and converges after a SIGKILL with nobody messaged twice."""

from __future__ import annotations

import random
import signal
from pathlib import Path
from typing import Any

import pytest
import yaml

from connectly_declare.entry import split_key
from connectly_declare.ledger.local import LocalLedger
from tests.apply.test_e2e_apply import apply_until_done, kill_when, ledger_statuses, plan_actions
from tests.support.e2e import (
    CAMPAIGN,
    catalog,
    new_api_key,
    run_cli,
    sim_process,
    start_cli,
    write_workspace,
)

STREAMING = "Planning and sending at once"
OTHER = "Autumn news"


def write_people(ws: Path, count: int, *, renamed: int = 0, bad_row: int | None = None
                 ) -> list[str]:
    """people.csv of `count` numbers; every `renamed`-th person gets another name (a new
    fingerprint); row `bad_row` (0-based) holds a number that is no phone number."""
    clients = [f"+1415{2_000_000 + i:07d}" for i in range(count)]
    lines = ["phone,name"]
    for i, client in enumerate(clients):
        name = f"Renamed {i}" if renamed and i % renamed == 0 else f"Person {i}"
        lines.append(f"{'12345' if i == bad_row else client},{name}")
    (ws / "data" / "people.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return clients


def add_second_sendout(ws: Path) -> None:
    """An allow_multiple sendout of another campaign to the same audience."""
    docs = [{"kind": "Campaign", "name": OTHER, "versions": [
                {"version": "v1", "variables": ["name"]}]},
            {"kind": "Sendout", "name": "autumn", "campaign": OTHER, "version": "v1",
             "audience": "people",
             "options": {"if_duplicate_check_unspecified": "allow_multiple"},
             "variables": {"name": "{{ recipient.name }}"}}]
    (ws / "manifests" / "autumn.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False),
                                                  encoding="utf-8")


def ledger_view(ws: Path) -> dict[str, tuple[str, str | None, str]]:
    state = LocalLedger(ws / ".declare" / "ledger.jsonl").read()
    return {k: (s.status, s.fingerprint, s.sendout) for k, s in state.keys.items()}


def delivered(sim: Any) -> list[tuple[str, str, str, str]]:
    return sorted((d["campaign"], d["client"], d["version"], repr(d["variables"]))
                  for d in sim.deliveries())


@pytest.mark.slow
def test_streaming_sends_exactly_what_planning_first_sends(tmp_path: Path) -> None:
    key = new_api_key()
    cat = catalog(key, campaigns=((CAMPAIGN, (("v1", ("name",)),)),
                                  (OTHER, (("v1", ("name",)),))))
    settings = {"batch_size": 10, "requests_per_second": 200, "concurrency": 4}
    with sim_process(cat) as sim_a, sim_process(cat) as sim_b:
        runs = []
        for sim, ws in ((sim_a, tmp_path / "a"), (sim_b, tmp_path / "b")):
            write_workspace(ws, base_url=sim.url, recipients=1, settings=settings)
            add_second_sendout(ws)
            write_people(ws, 300)
            # the same history on both sides, planned first (--max-recipients)
            first = run_cli(ws, "apply", "--auto-approve", "--max-recipients", "100000",
                            api_key=key)
            assert first.returncode == 0 and STREAMING not in first.stdout, first.stderr
            # more people, some renamed: send, noop, drift (allow_one), resend (multiple)
            clients = write_people(ws, 700, renamed=7)
            runs.append(ws)
        streamed = run_cli(runs[0], "apply", "--auto-approve", api_key=key)
        whole = run_cli(runs[1], "apply", "--auto-approve", "--max-recipients", "1000000",
                        api_key=key)
        assert streamed.returncode == whole.returncode == 0, streamed.stderr + whole.stderr
        assert STREAMING in streamed.stdout and STREAMING not in whole.stdout
        summary = [line for line in whole.stdout.splitlines() if "accepted of" in line]
        assert summary and summary[0].split(" Environment")[0] in streamed.stdout
        assert "Plan: " in streamed.stdout  # the plan's summary follows the sends
        assert delivered(sim_a) == delivered(sim_b)
        assert len(delivered(sim_a)) == 300 * 2 + 400 * 2 + 300 // 7 + 1  # + resends
        assert ledger_view(runs[0]) == ledger_view(runs[1])
        assert plan_actions(runs[0], key) == plan_actions(runs[1], key)
        assert {c for c in ledger_statuses(runs[0])} == set(clients)


def test_guards_of_the_whole_plan_refuse_before_any_request(tmp_path: Path) -> None:
    key = new_api_key()
    with sim_process(catalog(key)) as sim:
        ws = tmp_path / "ws"
        write_workspace(ws, base_url=sim.url, recipients=30)
        too_many = run_cli(ws, "apply", "--auto-approve", "--max-recipients", "20",
                           api_key=key)
        assert too_many.returncode == 1 and "--max-recipients" in too_many.stderr
        # two allow_one sendouts of one campaign to the same people: the conflict
        manifest = ws / "manifests" / "promo.yaml"
        docs = list(yaml.safe_load_all(manifest.read_text(encoding="utf-8")))
        twin = dict(docs[2], name="spring-again")
        (ws / "manifests" / "twin.yaml").write_text(yaml.safe_dump(twin), encoding="utf-8")
        conflict = run_cli(ws, "apply", "--auto-approve", api_key=key)
        assert conflict.returncode == 1 and "would both send campaign" in conflict.stderr
        (ws / "manifests" / "twin.yaml").unlink()
        docs[2]["max_recipients"] = 10  # the sendout's own limit
        manifest.write_text(yaml.safe_dump_all(docs), encoding="utf-8")
        capped = run_cli(ws, "apply", "--auto-approve", api_key=key)
        assert capped.returncode == 1 and "max_recipients 10" in capped.stderr
        for done in (too_many, conflict, capped):
            assert STREAMING not in done.stdout
        assert sim.stats()["requests"] == 0
        assert not (ws / ".declare" / "ledger.jsonl").exists() or ledger_view(ws) == {}


@pytest.mark.slow
def test_a_bad_row_mid_stream_stops_sending_and_a_reapply_sends_the_rest(
        tmp_path: Path) -> None:
    key = new_api_key()
    with sim_process(catalog(key)) as sim:
        ws = tmp_path / "ws"
        write_workspace(ws, base_url=sim.url, recipients=1, settings={
            "batch_size": 50, "requests_per_second": 200, "concurrency": 4})
        clients = write_people(ws, 3000, bad_row=2500)
        done = run_cli(ws, "apply", "--auto-approve", api_key=key)
        assert done.returncode == 1, done.stdout + done.stderr
        assert STREAMING in done.stdout
        assert "data/people.csv:2502" in done.stderr  # the header is line 1
        assert "Traceback" not in done.stderr
        assert "Stopped early: planning stopped at an error" in done.stdout
        counts = sim.counts(CAMPAIGN)
        assert counts and set(counts.values()) == {1}
        assert set(counts) <= set(clients[:2500])  # nothing from the bad row on
        statuses = ledger_statuses(ws)
        # the ledger says exactly what was delivered: requests in flight were recorded
        assert {c for c, s in statuses.items() if s == "accepted"} == set(counts)
        assert set(statuses.values()) == {"accepted"}
        write_people(ws, 3000)  # fixed
        apply_until_done(ws, key)
        assert sim.counts(CAMPAIGN) == dict.fromkeys(clients, 1)


@pytest.mark.slow
def test_sigkill_mid_stream_then_reapply_sends_nobody_twice(tmp_path: Path) -> None:
    key = new_api_key()
    rng = random.Random(15)
    with sim_process(catalog(key), args=["--latency-ms", "5"]) as sim:
        ws = tmp_path / "ws"
        clients = write_workspace(ws, base_url=sim.url, recipients=6000, allow_multiple=True,
                                  settings={"batch_size": 20, "requests_per_second": 200,
                                            "concurrency": 8})
        kills = 0
        for _ in range(2):
            process = start_cli(ws, "apply", "--auto-approve", api_key=key)
            assert kill_when(sim, process, rng.randint(5, 40)) > 0
            if process.returncode == -signal.SIGKILL:
                kills += 1
                assert process.stdout is not None
                assert STREAMING in process.stdout.read()  # killed while planning
        assert kills >= 1
        assert 0 < len(sim.counts(CAMPAIGN)) < len(clients)
        apply_until_done(ws, key)
        counts = sim.counts(CAMPAIGN)
        statuses = ledger_statuses(ws)
        assert set(counts.values()) == {1}  # nobody twice
        in_doubt = {c for c, s in statuses.items() if s in ("unknown", "partial")}
        accepted = {c for c, s in statuses.items() if s == "accepted"}
        assert accepted <= set(counts)
        assert accepted | in_doubt == set(clients)  # nobody silently missed
        actions = plan_actions(ws, key)
        assert actions.get("blocked", 0) == len(in_doubt)
        assert actions.get("send", 0) == actions.get("retry", 0) == 0
        keys = {split_key(k)[1] for k in ledger_view(ws)}
        assert keys == set(clients)
