"""`plan`, `show` and `state` through the real CLI, run as a subprocess on a real workspace."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from connectly_declare.ledger.base import Intent, IntentEntry, Outcome, OutcomeStatus
from connectly_declare.ledger.local import LocalLedger
from connectly_declare.plan.planfile import read_plan

AT = "2026-11-20T10:00:00+00:00"
CLIENTS = ["+16505550101", "+16505550102", "+16505550103", "+16505550104"]


def run(ws: Path, *args: str,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DECLARE_")}
    environ["NO_COLOR"] = "1"
    environ.update(env or {})
    return subprocess.run([sys.executable, "-m", "connectly_declare", "-C", str(ws), *args],
                          capture_output=True, text=True, env=environ, timeout=120)


def write_workspace(root: Path, *, extra: str = "") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "declare.yaml").write_text("version: 1\nbusiness_id: biz-1\n", encoding="utf-8")
    people = "\n".join(f"      - {{client: '{c}', name: P{i}}}" for i, c in enumerate(CLIENTS))
    (root / "manifests.yaml").write_text(textwrap.dedent("""\
        kind: Campaign
        name: Welcome ✓
        versions:
          - version: v1
            variables: [name]
        ---
        kind: Audience
        name: people
        sources:
          - inline:
        """) + people + textwrap.dedent("""
        ---
        kind: Sendout
        name: welcome
        campaign: Welcome ✓
        version: v1
        audience: people
        variables:
          name: "{{ recipient.name }}"
        """) + extra, encoding="utf-8")
    return root


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    return write_workspace(tmp_path / "ws")


def record_apply(ws: Path, plan_file: Path, statuses: dict[str, OutcomeStatus]) -> None:
    """What apply would write: an intent per entry, then its outcome (if any)."""
    plan = read_plan(plan_file)
    ledger = LocalLedger(ws / ".declare" / "ledger.jsonl", business_id="biz-1")
    with ledger.lock("test apply"):
        for n, (sendout, planned) in enumerate(plan.iter_sends()):
            e = planned.entry
            if e.client not in statuses:
                continue
            ledger.append([Intent(batch_id=f"b{n}", at=AT, sendout=sendout.name,
                                  campaign=e.campaign, version=e.version, scope=e.scope,
                                  options=sendout.options,
                                  entries=(IntentEntry(e.client, e.fingerprint),))])
            if statuses[e.client] != "none":  # type: ignore[comparison-overlap]
                ledger.append([Outcome(batch_id=f"b{n}", at=AT, status=statuses[e.client])])


@pytest.mark.slow  # many CLI subprocesses
def test_plan_counts_exit_codes_and_masks(ws: Path) -> None:
    result = run(ws, "plan")
    assert result.returncode == 0, result.stderr
    assert "welcome (Welcome ✓ v1, allow_one): 4 send" in result.stdout
    assert "Plan: 4 to send" in result.stdout
    assert run(ws, "plan", "--detailed-exitcode").returncode == 2
    details = run(ws, "plan", "--details").stdout
    assert "+1650•••0101" in details and "+16505550101" not in details
    assert "+16505550101" in run(ws, "plan", "--details", "--show-recipients").stdout
    doc = json.loads(run(ws, "plan", "--format", "json").stdout)
    assert doc["format_version"] == 1 and doc["totals"]["send"] == 4
    entries = doc["sendouts"][0]["entries"]
    assert [e["client"] for e in entries] == ["+1650•••0101", "+1650•••0102", "+1650•••0103",
                                              "+1650•••0104"]
    assert entries[0]["variables"] == {"name": "P0"} and entries[0]["action"] == "send"


def test_plan_is_deterministic_byte_for_byte(ws: Path) -> None:
    outputs = []
    for n in (1, 2):
        result = run(ws, "plan", "--format", "json", "--out", str(ws / f"p{n}.json.gz"))
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout)
    assert outputs[0] == outputs[1]
    assert (ws / "p1.json.gz").read_bytes() == (ws / "p2.json.gz").read_bytes()


@pytest.mark.slow  # many CLI subprocesses
def test_saved_plan_records_lineage_and_serial_and_shows_identically(ws: Path) -> None:
    first = ws / "first.json"
    assert run(ws, "plan", "--out", str(first)).returncode == 0
    assert (read_plan(first).lineage, read_plan(first).serial) == (None, 0)
    record_apply(ws, first, {CLIENTS[0]: "accepted", CLIENTS[1]: "rejected",
                             CLIENTS[2]: "unknown"})
    second = ws / "second.json"
    planned = run(ws, "plan", "--out", str(second))
    assert "1 send, 2 retry, 1 noop" in planned.stdout
    saved = read_plan(second)
    state = LocalLedger(ws / ".declare" / "ledger.jsonl").read()
    assert (saved.lineage, saved.serial) == (state.lineage, state.serial) == (state.lineage, 7)
    assert saved.lineage is not None
    for fmt in ("text", "markdown", "json"):
        assert run(ws, "show", str(second), "--format", fmt).stdout == \
            run(ws, "plan", "--format", fmt).stdout
    assert run(ws, "show", str(second), "--detailed-exitcode").returncode == 2


def test_conflicting_sendouts_fail_the_plan_naming_both(tmp_path: Path) -> None:
    ws = write_workspace(tmp_path / "ws", extra=textwrap.dedent("""\
        ---
        kind: Sendout
        name: welcome-again
        campaign: Welcome ✓
        version: v1
        audience: people
        variables:
          name: "{{ recipient.name }}"
        """))
    result = run(ws, "plan")
    assert result.returncode == 1
    assert "sendouts welcome and welcome-again would both send campaign 'Welcome ✓' to the " \
           "same 4 clients under allow_one" in result.stderr
    assert "Traceback" not in result.stderr
    assert run(ws, "plan", "--target", "welcome").returncode == 0


def test_guards_fail_the_plan_without_writing_the_out_file(ws: Path) -> None:
    result = run(ws, "plan", "--max-recipients", "3", "--out", str(ws / "p.json"))
    assert result.returncode == 1
    assert "would send 4 entries, more than --max-recipients 3" in result.stderr
    assert not (ws / "p.json").exists()


def test_corrupt_ledger_refuses_and_torn_tail_warns(ws: Path) -> None:
    first = ws / "first.json"
    run(ws, "plan", "--out", str(first))
    record_apply(ws, first, {CLIENTS[0]: "accepted", CLIENTS[1]: "accepted"})
    path = ws / ".declare" / "ledger.jsonl"
    good = path.read_bytes()
    path.write_bytes(good + b'{"type":"outcome","bat')
    torn = run(ws, "plan")
    assert torn.returncode == 0
    assert "warning: .declare/ledger.jsonl:6: the last line is damaged" in torn.stdout
    assert "2 send, 2 noop" in torn.stdout
    lines = good.split(b"\n")
    lines[2] = b"garbage"
    path.write_bytes(b"\n".join(lines))
    corrupt = run(ws, "plan")
    assert corrupt.returncode == 1
    assert corrupt.stderr.startswith(".declare/ledger.jsonl:3: damaged ledger record")
    assert "Traceback" not in corrupt.stderr


@pytest.mark.slow  # many CLI subprocesses
def test_state_list_show_resolve_export(ws: Path) -> None:
    first = ws / "first.json"
    run(ws, "plan", "--out", str(first))
    record_apply(ws, first, {CLIENTS[0]: "accepted", CLIENTS[1]: "unknown"})
    listing = run(ws, "state", "list").stdout
    assert "accepted  +1650•••0101  'Welcome ✓'  sendout welcome" in listing
    assert "2 of 2 keys" in listing
    assert "1 of 2 keys" in run(ws, "state", "list", "--status", "unknown").stdout
    shown = run(ws, "state", "show", "(650) 555-0102").stdout
    assert shown.startswith("unknown   +1650•••0102")
    refused = run(ws, "state", "resolve", CLIENTS[0], "--campaign", "Welcome ✓", "--as",
                  "unsent")
    assert refused.returncode == 1 and "only in-doubt keys can be resolved" in refused.stderr
    resolved = run(ws, "state", "resolve", "650 555 0102", "--campaign", "Welcome ✓", "--as",
                   "unsent", "--reason", "not in the inbox")
    assert resolved.returncode == 0, resolved.stderr
    assert "as unsent" in resolved.stdout
    last = json.loads((ws / ".declare" / "ledger.jsonl").read_text().splitlines()[-1])
    assert last["type"] == "resolution" and last["by"] and last["reason"] == "not in the inbox"
    assert "3 send, 1 noop" in run(ws, "plan").stdout  # unsent: planned as send again
    export = json.loads(run(ws, "state", "export").stdout)
    assert [k["client"] for k in export["keys"]] == [CLIENTS[0]]
    assert export["serial"] == 6 and export["keys"][0]["status"] == "accepted"


@pytest.mark.slow  # many CLI subprocesses
def test_resolve_waits_for_no_one_and_names_the_lock_holder(ws: Path) -> None:
    first = ws / "first.json"
    run(ws, "plan", "--out", str(first))
    record_apply(ws, first, {CLIENTS[1]: "unknown"})
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from pathlib import Path; "
         "from connectly_declare.ledger.local import LocalLedger; "
         "l = LocalLedger(Path(sys.argv[1]), business_id='biz-1'); "
         "c = l.lock('apply --auto-approve'); info = c.__enter__(); "
         "print(info.lock_id, flush=True); sys.stdin.readline()",
         str(ws / ".declare" / "ledger.jsonl")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        lock_id = holder.stdout.readline().strip()
        result = run(ws, "state", "resolve", CLIENTS[1], "--campaign", "Welcome ✓", "--as",
                     "accepted")
        assert result.returncode == 1
        assert f"lock {lock_id} held by" in result.stderr and "`apply --auto-approve`" in \
            result.stderr
        refused = run(ws, "state", "unlock", lock_id)
        assert refused.returncode == 1 and "still running" in refused.stderr
    finally:
        holder.kill()
        holder.wait()
    assert run(ws, "state", "unlock", lock_id).returncode == 0
    assert run(ws, "state", "resolve", CLIENTS[1], "--campaign", "Welcome ✓", "--as",
               "accepted").returncode == 0


def test_show_refuses_a_damaged_plan_without_a_traceback(ws: Path) -> None:
    path = ws / "p.json.gz"
    assert run(ws, "plan", "--out", str(path)).returncode == 0
    path.write_bytes(path.read_bytes()[:-12])
    result = run(ws, "show", str(path))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"{path}: not a usable saved plan" in result.stderr
