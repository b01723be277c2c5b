"""The crash, fault and concurrency end-to-end tests of apply with the postgres ledger (and
the concurrency test with both backends): the real CLI as a subprocess, the real simulator
in its own process, a real PostgreSQL. Who received what comes from the simulator."""

from __future__ import annotations

import random
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from connectly_declare.entry import split_key
from connectly_declare.ledger.local import LocalLedger
from connectly_declare.ledger.postgres import PostgresLedger
from tests.postgres.helpers import two_applies_at_once
from tests.support.e2e import (
    CAMPAIGN,
    SimProcess,
    catalog,
    files_containing,
    new_api_key,
    run_cli,
    sim_process,
    start_cli,
    write_workspace,
)
from tests.support.pg import PgServer

DSN_ENV = "E2E_PG_DSN"
PACED = {"batch_size": 50, "requests_per_second": 150, "concurrency": 8}
# Slow enough that one apply is still sending when the other, started at the same moment,
# asks for the lock (at 150 requests/s the first could finish 3,000 recipients in 0.4 s,
# before a loaded machine had even started the second).
OVERLAPPING = {"batch_size": 50, "requests_per_second": 30, "concurrency": 8}


def pg_settings(schema: str, **extra: Any) -> dict[str, Any]:
    return {"state": {"backend": "postgres", "dsn_env": DSN_ENV, "schema": schema}, **extra}


def statuses(ledger: PostgresLedger | LocalLedger) -> dict[str, str]:
    try:
        return {split_key(k)[1]: s.status for k, s in ledger.read().keys.items()}
    finally:
        if isinstance(ledger, PostgresLedger):
            ledger.close()


def kill_when(sim: SimProcess, process: subprocess.Popen[str], requests: int) -> None:
    start = sim.stats()["requests"]
    limit = time.monotonic() + 60
    while time.monotonic() < limit and process.poll() is None:
        if sim.stats()["requests"] - start >= requests:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    process.wait(timeout=30)


def apply_until_done(ws: Path, key: str, env: dict[str, str]) -> list[str]:
    outputs = []
    for _ in range(8):
        done = run_cli(ws, "apply", "--auto-approve", "--lock-timeout", "30", api_key=key,
                       env=env, timeout=180)
        outputs.append(done.stdout + done.stderr)
        assert done.returncode in (0, 1), done.stdout + done.stderr
        if "Nothing to send" in done.stdout:
            return outputs
    raise AssertionError("apply did not converge:\n" + "\n".join(outputs))


@pytest.mark.slow
@pytest.mark.parametrize("allow_multiple", [False, True], ids=["allow_one", "allow_multiple"])
def test_sigkill_at_random_points_then_reapply(tmp_path: Path, pg_server: PgServer,
                                               pg_schema: str, allow_multiple: bool) -> None:
    key, env = new_api_key(), {DSN_ENV: pg_server.dsn}
    rng = random.Random(70 + allow_multiple)
    ws = tmp_path / "ws"
    with sim_process(catalog(key), args=["--latency-ms", "5"]) as sim:
        # 240 requests; the three kills land within the first 150 at most.
        clients = write_workspace(ws, base_url=sim.url, recipients=12_000,
                                  allow_multiple=allow_multiple,
                                  settings=pg_settings(pg_schema, **PACED))
        kills = 0
        for _ in range(3):
            process = start_cli(ws, "apply", "--auto-approve", "--lock-timeout", "30",
                                api_key=key, env=env)
            kill_when(sim, process, rng.randint(5, 50))
            kills += process.returncode == -signal.SIGKILL
        assert kills >= 2  # the kills landed mid-run (and each next run got the lock)
        assert 0 < len(sim.counts(CAMPAIGN)) < len(clients)
        outputs = apply_until_done(ws, key, env)
        counts = sim.counts(CAMPAIGN)
    state = statuses(PostgresLedger(dsn=pg_server.dsn, schema=pg_schema))
    if not allow_multiple:
        assert counts == dict.fromkeys(clients, 1)  # everyone, exactly once
        assert set(state.values()) == {"accepted"}
    else:
        assert set(counts.values()) == {1}  # nobody twice
        in_doubt = {c for c, s in state.items() if s in ("unknown", "partial")}
        accepted = {c for c, s in state.items() if s == "accepted"}
        assert accepted <= set(counts) and accepted | in_doubt == set(clients)
    for text in outputs:
        assert pg_server.password not in text and key not in text
    assert files_containing(tmp_path, pg_server.password) == []


@pytest.mark.slow
def test_injected_faults_lose_nothing_and_duplicate_nothing(
        tmp_path: Path, pg_server: PgServer, pg_schema: str) -> None:
    key, env = new_api_key(), {DSN_ENV: pg_server.dsn}
    faults = ["--fail-rate", "0.1", "--timeout-rate", "0.05", "--drop-rate", "0.05",
              "--429-rate", "0.05", "--hang-seconds", "3", "--rate-limit", "80",
              "--burst", "10", "--seed", "17"]
    ws = tmp_path / "ws"
    with sim_process(catalog(key), args=faults) as sim:
        clients = write_workspace(ws, base_url=sim.url, recipients=2_000, settings=pg_settings(
            pg_schema, batch_size=40, requests_per_second=120, concurrency=8,
            timeout_seconds=0.5))
        apply_until_done(ws, key, env)
        counts = sim.counts(CAMPAIGN)
        injected = sim.stats()["injected"]
    assert counts == dict.fromkeys(clients, 1)
    assert set(statuses(PostgresLedger(dsn=pg_server.dsn, schema=pg_schema)).values()) \
        == {"accepted"}
    assert injected["500"] and injected["timeout"] and injected["drop"]


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["local", "postgres"])
def test_two_applies_at_the_same_moment(tmp_path: Path, pg_server: PgServer, pg_schema: str,
                                        backend: str) -> None:
    key, env = new_api_key(), {DSN_ENV: pg_server.dsn}
    settings = pg_settings(pg_schema, **OVERLAPPING) if backend == "postgres" \
        else dict(OVERLAPPING)
    ws = tmp_path / "ws"
    with sim_process(catalog(key), args=["--latency-ms", "5"]) as sim:
        clients = write_workspace(ws, base_url=sim.url, recipients=3_000, settings=settings)
        # No waiting: one sends, the other fails at once naming the holder.
        first = two_applies_at_once(ws, key, env, "0")
        codes = sorted(r.returncode for r in first)
        failed = next(r for r in first if r.returncode == 1)
        assert codes == [0, 1], [r.stdout + r.stderr for r in first]
        assert "locked" in failed.stderr and "held by" in failed.stderr
        assert "pid " in failed.stderr and "Traceback" not in failed.stderr
        assert sim.counts(CAMPAIGN) == dict.fromkeys(clients, 1)
        # More recipients, and this time the second waits for the first, then finds
        # nothing left to send.
        clients += write_workspace(ws, base_url=sim.url, recipients=6_000,
                                   settings=settings)[3_000:]
        second = two_applies_at_once(ws, key, env, "120")
        assert [r.returncode for r in second] == [0, 0], [r.stdout + r.stderr for r in second]
        assert any("Nothing to send" in r.stdout for r in second)
        assert sim.counts(CAMPAIGN) == dict.fromkeys(clients, 1)  # nobody twice


def test_migrate_then_switch_sends_nobody_again(tmp_path: Path, pg_server: PgServer,
                                                pg_schema: str) -> None:
    key, env = new_api_key(), {DSN_ENV: pg_server.dsn}
    ws = tmp_path / "ws"
    with sim_process(catalog(key)) as sim:
        clients = write_workspace(ws, base_url=sim.url, recipients=250)
        assert run_cli(ws, "apply", "--auto-approve", api_key=key).returncode == 0
        # Switching declare.yaml first is refused while the local history is not copied.
        config = yaml.safe_load((ws / "declare.yaml").read_text(encoding="utf-8"))
        (ws / "declare.yaml").write_text(yaml.safe_dump({**config, **pg_settings(pg_schema)}),
                                         encoding="utf-8")
        refused = run_cli(ws, "apply", "--auto-approve", api_key=key, env=env)
        assert refused.returncode == 1 and "state migrate --to postgres" in refused.stderr
        assert sim.stats()["requests"] == 3
        migrated = run_cli(ws, "state", "migrate", "--to", "postgres", env=env)
        assert migrated.returncode == 0, migrated.stderr
        assert "Migrated (environment default): 7 records, 250 keys" in migrated.stdout
        assert "Verified record for record" in migrated.stdout
        again = run_cli(ws, "state", "migrate", "--to", "postgres", env=env)
        assert again.returncode == 0 and "Already migrated" in again.stdout
        after = run_cli(ws, "apply", "--auto-approve", api_key=key, env=env)
        assert after.returncode == 0 and "Nothing to send" in after.stdout, after.stderr
        more = write_workspace(ws, base_url=sim.url, recipients=260,
                               settings=pg_settings(pg_schema))
        assert run_cli(ws, "apply", "--auto-approve", api_key=key, env=env).returncode == 0
        assert sim.counts(CAMPAIGN) == dict.fromkeys(more, 1) and set(clients) < set(more)
    for done in (refused, migrated, again, after):
        assert pg_server.password not in done.stdout + done.stderr
    assert files_containing(tmp_path, pg_server.password) == []


def test_environments_keep_separate_postgres_ledgers(tmp_path: Path, pg_server: PgServer,
                                                     pg_schema: str) -> None:
    key, env = new_api_key(), {DSN_ENV: pg_server.dsn}
    ws = tmp_path / "ws"
    with sim_process(catalog(key)) as sim:
        clients = write_workspace(ws, base_url=sim.url, recipients=120, settings={
            **pg_settings(pg_schema), "environments": {"staging": {}, "production": {}}})
        staged = run_cli(ws, "--env", "staging", "apply", "--auto-approve", api_key=key,
                         env=env)
        assert staged.returncode == 0, staged.stderr
        assert "staging" in staged.stdout
        listed = run_cli(ws, "state", "list", env={**env, "DECLARE_ENV": "staging"})
        assert listed.returncode == 0 and len(listed.stdout.strip().splitlines()) >= 120
        plan = run_cli(ws, "plan", "--format", "json", env={**env, "DECLARE_ENV": "production"})
        assert plan.returncode == 0 and '"environment": "production"' in plan.stdout
        assert sim.counts(CAMPAIGN) == dict.fromkeys(clients, 1)
    staging = PostgresLedger(dsn=pg_server.dsn, schema=pg_schema, environment="staging")
    production = PostgresLedger(dsn=pg_server.dsn, schema=pg_schema, environment="production")
    assert set(statuses(staging).values()) == {"accepted"} and statuses(production) == {}
