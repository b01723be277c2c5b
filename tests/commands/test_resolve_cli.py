"""`state resolve` in bulk (and for any status), through the real CLI as a subprocess.

The scenario and the checks are plain functions so the PostgreSQL tests
(tests/postgres/test_resolve_pg.py) run the very same ones against a real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from connectly_declare.commands.state import open_state
from connectly_declare.entry import mask_phone
from connectly_declare.ledger.base import Intent, IntentEntry, Outcome, OutcomeStatus, Record
from connectly_declare.ledger.postgres import PostgresLedger
from connectly_declare.plan.planfile import read_plan

AT = "2026-11-20T10:00:00+00:00"
CAMPAIGN = "Welcome ✓"
# client -> (status, error) recorded by a made-up apply of sendout `welcome`
HISTORY: dict[str, tuple[OutcomeStatus | None, dict[str, Any] | None]] = {
    "+16505550101": ("accepted", None),
    "+16505550102": (None, None),  # intent, no outcome: unknown
    "+16505550103": ("rejected", {"code": "ERROR_CODE_CAMPAIGN_ENTRY_INVALID",
                                  "message": "invalid entry"}),
    "+16505550104": ("rejected", {"code": "CLIENT_NOT_SENT", "message": "no route"}),
    "+16505550105": ("partial", None),
}
CLIENTS = list(HISTORY)


def write_workspace(root: Path, settings: Mapping[str, Any] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    config = {"version": 1, "business_id": "biz-1", **(settings or {})}
    (root / "declare.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    docs = [
        {"kind": "Campaign", "name": CAMPAIGN, "versions": [{"version": "v1",
                                                             "variables": ["name"]}]},
        {"kind": "Audience", "name": "people", "sources": [{"inline": [
            {"client": c, "name": f"P{i}"} for i, c in enumerate(CLIENTS)]}]},
        {"kind": "Sendout", "name": "welcome", "campaign": CAMPAIGN, "version": "v1",
         "audience": "people", "variables": {"name": "{{ recipient.name }}"}},
    ]
    (root / "manifests.yaml").write_text(yaml.safe_dump_all(docs, allow_unicode=True),
                                         encoding="utf-8")
    return root


def run(ws: Path, *args: str, env: Mapping[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DECLARE_")}
    environ.update({"NO_COLOR": "1", **(env or {})})
    return subprocess.run([sys.executable, "-m", "connectly_declare", "-C", str(ws), *args],
                          capture_output=True, text=True, env=environ, timeout=120)


def populate(ws: Path, env: Mapping[str, str]) -> None:
    """What apply would have written for HISTORY, through the workspace's own backend."""
    plan_file = ws / "first.json"
    assert run(ws, "plan", "--out", str(plan_file), env=env).returncode == 0
    records: list[Record] = []
    for n, (sendout, planned) in enumerate(read_plan(plan_file).iter_sends()):
        e = planned.entry
        records.append(Intent(batch_id=f"b{n}", at=AT, sendout=sendout.name,
                              campaign=e.campaign, version=e.version, scope=e.scope,
                              options=sendout.options,
                              entries=(IntentEntry(e.client, e.fingerprint),)))
        status, error = HISTORY[e.client]
        if status is not None:
            records.append(Outcome(batch_id=f"b{n}", at=AT, status=status, error=error,
                                   accepted_count=int(status != "rejected"),
                                   rejected_count=int(status != "accepted")))
    ledger = open_state(ws, None, environ=env).ledger
    try:
        with ledger.lock("test apply"):
            ledger.append(records)
    finally:
        if isinstance(ledger, PostgresLedger):
            ledger.close()


def ledger_records(ws: Path, env: Mapping[str, str]) -> list[Record]:
    ledger = open_state(ws, None, environ=env).ledger
    try:
        return list(ledger.records())
    finally:
        if isinstance(ledger, PostgresLedger):
            ledger.close()


def plan_counts(ws: Path, env: Mapping[str, str]) -> dict[str, int]:
    done = run(ws, "plan", "--format", "json", env=env)
    assert done.returncode in (0, 2), done.stderr
    counts: dict[str, int] = json.loads(done.stdout)["sendouts"][0]["counts"]
    return counts


def check_bulk_resolve(ws: Path, env: Mapping[str, str]) -> None:
    """Each selector, dry run first (nothing written), then for real (one record appended,
    the fold and the plan change, `state list`/`show` tell the verdict and its reason)."""
    before = ledger_records(ws, env)
    counts = plan_counts(ws, env)
    assert counts["noop"] == 1 and counts["send"] == 0

    # --status in-doubt --dry-run: counts per sendout and status, masked samples, no write
    dry = run(ws, "state", "resolve", "--status", "in-doubt", "--as", "accepted",
              "--reason", "seen in the inbox", "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr
    assert "would resolve 2 keys as accepted" in dry.stdout
    assert "sendout welcome: 1 partial" in dry.stdout and "sendout welcome: 1 unknown" in dry.stdout
    assert mask_phone(CLIENTS[1]) in dry.stdout and CLIENTS[1] not in dry.stdout
    assert "dry run: nothing was written" in dry.stdout
    assert ledger_records(ws, env) == before
    # --campaign narrows too (and a campaign the ledger does not hold selects nothing)
    one = run(ws, "state", "resolve", "--campaign", CAMPAIGN, "--status", "unknown", "--as",
              "accepted", "--reason", "x", "--dry-run", env=env)
    assert "would resolve 1 key as accepted" in one.stdout
    none = run(ws, "state", "resolve", "--campaign", "Other", "--as", "accepted", "--reason",
               "x", "--dry-run", env=env)
    assert "would resolve 0 keys as accepted" in none.stdout

    done = run(ws, "state", "resolve", "--status", "in-doubt", "--as", "accepted",
               "--reason", "seen in the inbox", env=env)
    assert done.returncode == 0, done.stderr
    assert "resolved 2 keys as accepted" in done.stdout and "recorded by " in done.stdout
    after = ledger_records(ws, env)
    assert after[:len(before)] == before and len(after) == len(before) + 1  # one record
    assert plan_counts(ws, env)["noop"] == 3
    listing = run(ws, "state", "list", "--status", "accepted", env=env).stdout
    assert "3 of 5 keys" in listing
    assert listing.count("resolved accepted by ") == 2 and "seen in the inbox" in listing

    # --status failed: rejected for a permanent reason (ENTRY_INVALID; not CLIENT_NOT_SENT)
    failed = run(ws, "state", "resolve", "--status", "failed", "--as", "accepted",
                 "--reason", "x", "--dry-run", env=env)
    assert "would resolve 1 key as accepted" in failed.stdout, failed.stdout + failed.stderr
    assert "sendout welcome: 1 rejected" in failed.stdout and mask_phone(CLIENTS[2]) in \
        failed.stdout
    assert plan_counts(ws, env)["failed"] == 1

    # --error-code, any status (a rejection overruled): the invalid one was received
    code = run(ws, "state", "resolve", "--error-code", "ERROR_CODE_CAMPAIGN_ENTRY_INVALID",
               "--as", "accepted", "--reason", "support confirmed delivery", env=env)
    assert code.returncode == 0, code.stderr
    assert "resolved 1 key as accepted" in code.stdout
    assert "sendout welcome: 1 rejected" in code.stdout
    assert plan_counts(ws, env)["noop"] == 4
    shown = run(ws, "state", "show", CLIENTS[2], env=env).stdout
    assert shown.startswith("accepted") and "support confirmed delivery" in shown

    # --sendout and --status together; the file of clients; --as rejected / unknown
    clients_file = ws / "missed.txt"
    clients_file.write_text(f"# checked by hand\n{CLIENTS[0]}\n\n{CLIENTS[3]}  # twice\n"
                            f"{CLIENTS[3]}\n+16505559999\n", encoding="utf-8")
    by_file = run(ws, "state", "resolve", "--clients", str(clients_file), "--sendout",
                  "welcome", "--as", "rejected", "--reason", "not in the inbox", env=env)
    assert by_file.returncode == 0, by_file.stderr
    assert "resolved 1 key as rejected" in by_file.stdout  # CLIENTS[3] is rejected already
    assert "1 selected keys are rejected already" in by_file.stdout
    assert "1 clients of the file have no selected key" in by_file.stdout
    counts = plan_counts(ws, env)
    assert counts["noop"] == 3 and counts["retry"] == 2  # CLIENTS[0] is sent again
    unknown = run(ws, "state", "resolve", "--sendout", "welcome", "--status", "rejected",
                  "--as", "unknown", "--reason", "let the server's duplicate check decide",
                  env=env)
    assert unknown.returncode == 0 and "resolved 2 keys as unknown" in unknown.stdout
    assert run(ws, "state", "list", "--status", "unknown", env=env).stdout.count("\n") == 3
    assert len(ledger_records(ws, env)) == len(before) + 4


def check_refusals(ws: Path, env: Mapping[str, str]) -> None:
    """A user's mistakes: nothing written, no traceback, what to do."""
    before = ledger_records(ws, env)
    bad = ws / "clients.txt"
    bad.write_text(f"{CLIENTS[0]}\nnot a phone\n\n+1 650\n", encoding="utf-8")
    refused = run(ws, "state", "resolve", "--clients", str(bad), "--as", "accepted",
                  "--reason", "x", env=env)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert f"{bad}:2: 'not a phone' is not a phone number" in refused.stderr
    assert f"{bad}:4: '+1 650' is not a phone number" in refused.stderr
    missing = run(ws, "state", "resolve", "--clients", str(ws / "nope.txt"), "--as",
                  "accepted", "--reason", "x", env=env)
    assert missing.returncode == 1 and "nope.txt: no such file" in missing.stderr
    no_reason = run(ws, "state", "resolve", "--status", "unknown", "--as", "accepted", env=env)
    assert no_reason.returncode == 1 and "needs --reason" in no_reason.stderr
    nothing = run(ws, "state", "resolve", "--as", "accepted", "--reason", "x", env=env)
    assert nothing.returncode == 1 and "at least one of --sendout" in nothing.stderr
    single = run(ws, "state", "resolve", CLIENTS[0], "--campaign", CAMPAIGN, "--as",
                 "rejected", env=env)
    assert single.returncode == 1 and "only in-doubt keys can be resolved without --reason" \
        in single.stderr
    assert ledger_records(ws, env) == before
    # with a reason, a single key of any status is settled
    overruled = run(ws, "state", "resolve", CLIENTS[0], "--campaign", CAMPAIGN, "--as",
                    "rejected", "--reason", "bounced", env=env)
    assert overruled.returncode == 0, overruled.stderr
    assert "(was accepted) as rejected" in overruled.stdout
    assert len(ledger_records(ws, env)) == len(before) + 1


@pytest.mark.slow  # many CLI subprocesses
def test_bulk_resolve_each_selector_local(tmp_path: Path) -> None:
    ws = write_workspace(tmp_path / "ws")
    populate(ws, {})
    check_bulk_resolve(ws, {})
    # the local ledger holds the bulk verdict as one line
    lines = (ws / ".declare" / "ledger.jsonl").read_text(encoding="utf-8").splitlines()
    bulk = [json.loads(line) for line in lines if '"resolutions"' in line]
    assert len(bulk) == 2 and all(len(b["keys"]) == 2 for b in bulk)
    assert bulk[0]["reason"] == "seen in the inbox" and "@" in bulk[0]["by"]


@pytest.mark.slow  # many CLI subprocesses
def test_bulk_resolve_refusals_local(tmp_path: Path) -> None:
    ws = write_workspace(tmp_path / "ws")
    populate(ws, {})
    check_refusals(ws, {})


def test_a_bulk_verdict_torn_by_a_crash_resolves_none_of_its_keys(tmp_path: Path) -> None:
    from connectly_declare.ledger.base import Resolution
    from connectly_declare.ledger.local import LocalLedger

    path = tmp_path / "ledger.jsonl"
    ledger = LocalLedger(path, business_id="biz-1")
    clients = [f"+1650555{n:04d}" for n in range(200)]
    with ledger.lock("test"):
        ledger.append([Intent(batch_id="b1", at=AT, sendout="s", campaign="C", version=None,
                              scope="s", options={},
                              entries=tuple(IntentEntry(c, "f") for c in clients))])
        ledger.append([Resolution(campaign="C", client=clients[0], scope="s",
                                  resolved_as="accepted", by="u@h", at=AT, reason="inbox",
                                  more=tuple(("C", c, "s") for c in clients[1:]))])
    whole = path.read_bytes()
    assert whole.count(b"\n") == 3  # header, intent, the whole verdict on one line
    assert {s.status for s in LocalLedger(path).read().keys.values()} == {"accepted"}
    path.write_bytes(whole[:-len(whole.splitlines()[-1]) // 2])  # the crash, mid-line
    state = LocalLedger(path).read()
    assert {s.status for s in state.keys.values()} == {"unknown"}  # none of it, not half
    assert any("torn by a crash" in w for w in state.warnings)
