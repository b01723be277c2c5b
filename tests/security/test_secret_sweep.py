"""The API key and the PostgreSQL password never leave the environment.

With both secrets in the environment of every run, the real CLI validates, plans (every
format, a saved plan), applies against the loopback simulator (success, a refused key, a
server that fails or is down), plans and applies on a PostgreSQL ledger (reachable with
the real password, and unreachable), crashes (an injected internal error, a SIGKILL
mid-apply) and recovers. Then every file written under the workspace, HOME, TMPDIR and
the simulator's log, and everything printed, is searched for either secret: in plain
text, URL-encoded and base64-encoded.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import pytest
import yaml

from tests.support.e2e import (
    API_KEY_ENV,
    CAMPAIGN,
    catalog,
    files_containing,
    new_api_key,
    sim_process,
    write_workspace,
)
from tests.support.pg import postgres_server

CRASH_HOOK = Path(__file__).resolve().parent / "crash"


def _variants(secret: str) -> list[str]:
    return [secret, quote(secret, safe=""), base64.b64encode(secret.encode()).decode()]


class Sweep:
    """Runs the CLI with the secrets in its environment and keeps everything it printed."""

    def __init__(self, root: Path, key: str, pg_password: str, pg_dsn: str) -> None:
        self.root = root
        self.key = key
        self.secrets = [*_variants(key), *_variants(pg_password)]
        self.home = root / "home"
        self.tmp = root / "tmp"
        self.home.mkdir(parents=True)
        self.tmp.mkdir()
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.home),
            "TMPDIR": str(self.tmp), "LANG": "C.UTF-8", "PYTHONUNBUFFERED": "1",
            API_KEY_ENV: key, "CONNECTLY_API_KEY": key, "DECLARE_PG_DSN": pg_dsn,
        }
        self.printed: list[str] = []

    def run(self, workspace: Path, *args: str, env: dict[str, str] | None = None,
            expect: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "connectly_declare", *args],
                              cwd=workspace, env={**self.env, **(env or {})},
                              capture_output=True, text=True, timeout=180, check=False)
        self.printed += [done.stdout, done.stderr]
        assert done.returncode in expect, f"{args}: {done.returncode}\n{done.stdout}{done.stderr}"
        return done

    def start(self, workspace: Path, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", "connectly_declare", *args],
                                cwd=workspace, env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def leaks(self, *extra_roots: Path) -> list[str]:
        found = [f"printed: {s[:6]}... in {text[max(0, text.find(s) - 300):text.find(s)]!r}"
                 for text in self.printed for s in self.secrets if s in text]
        for root in (self.root, *extra_roots):
            for secret in self.secrets:
                found += [f"{path}: {secret[:12]}..." for path in files_containing(root, secret)]
        return found


def _set_config(workspace: Path, **settings: object) -> None:
    path = workspace / "declare.yaml"
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    config.update(settings)
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")


def _with_password(dsn: str, password: str) -> str:
    parts = urlsplit(dsn)
    netloc = f"{parts.username}:{quote(password, safe='')}@{parts.hostname}:{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


@pytest.mark.slow
def test_no_secret_in_any_output_or_file(tmp_path: Path) -> None:
    key = new_api_key()
    with postgres_server() as pg:
        sweep = Sweep(tmp_path / "run", key, pg.password, pg.dsn)
        ws = tmp_path / "run" / "ws"
        sim_log = tmp_path / "sim.log"
        with sim_process(catalog(key), log=sim_log) as sim:
            clients = write_workspace(ws, base_url=sim.url, recipients=300)

            # Offline: validate and plan in every form, a saved plan.
            sweep.run(ws, "validate")
            sweep.run(ws, "plan")
            sweep.run(ws, "plan", "--format", "markdown", "--show-recipients")
            sweep.run(ws, "plan", "--format", "json", "--details")
            sweep.run(ws, "plan", "--out", "reviewed.plan.gz")

            # A refused key (401): apply stops, and says so without echoing the key.
            refused = sweep.run(ws, "apply", "--auto-approve",
                                env={API_KEY_ENV: "wrong-" + key[::-1]}, expect=(1,))
            assert "401" in refused.stdout + refused.stderr or "key" in refused.stderr.lower()

            # A crash: the CLI dies by SIGKILL mid-apply, then an injected internal error
            # after a full apply (exit 3 and a crash log, written with the key in memory).
            process = sweep.start(ws, "apply", "--auto-approve", "--batch-size", "10")
            deadline = time.monotonic() + 60
            while sim.stats()["requests"] < 3 and time.monotonic() < deadline:
                time.sleep(0.01)
            process.send_signal(signal.SIGKILL)
            out, err = process.communicate(timeout=30)
            sweep.printed += [out, err]
            crashed = sweep.run(ws, "apply", "--auto-approve", expect=(3,), env={
                "PYTHONPATH": str(CRASH_HOOK),
                "DECLARE_TEST_CRASH_AFTER": "connectly_declare.commands.apply:run_apply"})
            assert "internal error" in crashed.stderr
            assert (ws / ".declare-crash.log").is_file()
            assert sim.counts(CAMPAIGN) == dict.fromkeys(clients, 1)

            # Nothing left to send, and the saved plan is now stale: a refused apply.
            sweep.run(ws, "apply", "--auto-approve", "reviewed.plan.gz", expect=(1,))

        # The server is gone: connection errors.
        sweep.run(ws, "plan", "--out", "later.plan.gz")
        write_more = ws / "data" / "people.csv"
        write_more.write_text(write_more.read_text(encoding="utf-8")
                              + "+14155550199,Late Person\n", encoding="utf-8")
        sweep.run(ws, "apply", "--auto-approve", expect=(1,))

        # PostgreSQL ledger: the real password in the DSN, then a wrong one, then no server.
        pg_ws = tmp_path / "run" / "pg"
        with sim_process(catalog(key), log=tmp_path / "sim2.log") as sim2:
            write_workspace(pg_ws, base_url=sim2.url, recipients=50, settings={
                "state": {"backend": "postgres", "dsn_env": "DECLARE_PG_DSN",
                          "schema": "sweep_" + key[-8:]}})
            sweep.run(pg_ws, "plan", expect=(0,))
            sweep.run(pg_ws, "apply", "--auto-approve")
            sweep.run(pg_ws, "plan", "--format", "json")
            wrong = _with_password(pg.dsn, "not-" + pg.password)
            sweep.run(pg_ws, "plan", env={"DECLARE_PG_DSN": wrong}, expect=(1,))
        host, port = pg.host_port
        down = pg.dsn.replace(f"{host}:{port}", f"{host}:1")
        sweep.run(pg_ws, "plan", env={"DECLARE_PG_DSN": down}, expect=(1,))
        sweep.run(pg_ws, "apply", "--auto-approve", env={"DECLARE_PG_DSN": down}, expect=(1,))
        malformed = pg.dsn.replace("postgresql://", "postgresql:/") + " sslmode=bogus"
        sweep.run(pg_ws, "plan", env={"DECLARE_PG_DSN": malformed}, expect=(1,))

        # What PostgreSQL itself now holds for this ledger.
        schema = "sweep_" + key[-8:]
        with psycopg.connect(pg.dsn, autocommit=True) as conn:
            tables = [r[0] for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (schema,))]
            assert tables, "the apply wrote its ledger to PostgreSQL"
            stored = "".join(
                str(row) for table in tables
                for row in conn.execute(f'SELECT * FROM "{schema}"."{table}"'))
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        assert key not in stored and pg.password not in stored

    assert sweep.leaks(sim_log.parent) == []
