"""Local schedules, quiet hours and a frequency cap through the real CLI (a subprocess) on a
real workspace and local ledger: every output shows `capped` and the timing, and
--detailed-exitcode says 2 only when something can be sent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from connectly_declare.ledger.base import Intent, IntentEntry, Outcome
from connectly_declare.ledger.local import LocalLedger
from connectly_declare.plan.planfile import read_plan

CLIENTS = ["+4915112345678", "+5511987654321", "+6281234567890", "+16502530000"]
CONFIG = """\
version: 1
business_id: biz-1
quiet_hours: {start: "21:00", end: "08:00"}
frequency_cap:
  - {max: 1, per: 7d}
"""


def run(ws: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DECLARE_")}
    environ["NO_COLOR"] = "1"
    return subprocess.run([sys.executable, "-m", "connectly_declare", "-C", str(ws), *args],
                          capture_output=True, text=True, env=environ, timeout=120)


def workspace(root: Path, extra: str = "") -> Path:
    root.mkdir(parents=True)
    (root / "declare.yaml").write_text(CONFIG, encoding="utf-8")
    people = "\n".join(f"      - '{c}'" for c in CLIENTS)
    (root / "manifests.yaml").write_text(textwrap.dedent("""\
        kind: Campaign
        name: news
        ---
        kind: Campaign
        name: offer
        ---
        kind: Audience
        name: people
        sources:
          - inline:
        """) + people + textwrap.dedent("""
        ---
        kind: Sendout
        name: earlier
        campaign: news
        audience: people
        schedule: 2030-01-01T10:00:00+00:00
        quiet_hours: none
        ---
        kind: Sendout
        name: later
        campaign: offer
        audience: people
        schedule: {local: "2030-01-03T22:00", timezone: auto, fallback: UTC}
        """) + extra, encoding="utf-8")
    return root


def apply_earlier(ws: Path) -> None:
    """What apply of sendout `earlier` writes to the ledger: every entry accepted."""
    assert run(ws, "plan", "--target", "earlier", "--out", str(ws / "e.plan")).returncode == 0
    plan = read_plan(ws / "e.plan")
    ledger = LocalLedger(ws / ".declare" / "ledger.jsonl", business_id="biz-1")
    with ledger.lock("test apply"):
        for sendout, planned in plan.iter_sends():
            e = planned.entry
            ledger.append([
                Intent(batch_id=e.client, at="2029-12-30T09:00:00+00:00", sendout=sendout.name,
                       campaign=e.campaign, version=e.version, scope=e.scope,
                       options=sendout.options, entries=(IntentEntry(e.client, e.fingerprint),)),
                Outcome(batch_id=e.client, at="2029-12-30T09:00:01+00:00", status="accepted")])


@pytest.mark.slow  # several CLI subprocesses
def test_capped_and_timing_in_every_output(tmp_path: Path) -> None:
    ws = workspace(tmp_path / "ws")
    apply_earlier(ws)
    text = run(ws, "plan", "--details")
    assert text.returncode == 0, text.stderr
    assert "later (offer, allow_one): 4 capped" in text.stdout
    assert "local hour 00" in text.stdout and "UTC hour" in text.stdout
    assert "4 shifted by quiet hours, 0 held, 4 capped" in text.stdout
    assert "frequency cap 1 per 7d" in text.stdout and "+4915112345678" not in text.stdout
    assert "Plan: nothing to send" in text.stdout
    assert run(ws, "plan", "--detailed-exitcode").returncode == 0  # capped is not sendable
    md = run(ws, "plan", "--format", "markdown").stdout
    assert "| capped |" in md and "later: when (4 shifted by quiet hours" in md
    assert "| hour | local | UTC |" in md and "4 from the number" in md
    doc = json.loads(run(ws, "plan", "--format", "json").stdout)
    assert doc["totals"]["capped"] == 4 and doc["has_changes"] is False
    later = doc["sendouts"][1]
    assert later["timing"]["capped"] == 4 and later["timing"]["shifted"] == 4
    assert later["timing"]["zones"] == {"from_number": 4, "given": 0, "fallback": 0}
    assert {e["action"] for e in later["entries"]} == {"capped"}
    # byte for byte: the same plan twice, in every format and as a saved plan
    for fmt in ("text", "markdown", "json"):
        assert run(ws, "plan", "--format", fmt).stdout == run(ws, "plan", "--format", fmt).stdout
    run(ws, "plan", "--out", str(ws / "one.plan"))
    run(ws, "plan", "--out", str(ws / "two.plan"))
    assert (ws / "one.plan").read_bytes() == (ws / "two.plan").read_bytes()


@pytest.mark.slow
def test_detailed_exitcode_is_2_when_an_exempt_sendout_can_send(tmp_path: Path) -> None:
    ws = workspace(tmp_path / "ws", textwrap.dedent("""\
        ---
        kind: Sendout
        name: receipt
        campaign: news
        audience: {sources: [{inline: ['+4915112345679']}]}
        schedule: 2030-01-02T12:00:00+00:00
        exempt: true
        """))
    apply_earlier(ws)
    result = run(ws, "plan", "--detailed-exitcode")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "receipt (news, allow_one): 1 send" in result.stdout
    assert "4 capped" in result.stdout
    md = run(ws, "plan", "--format", "markdown").stdout
    # the receipt: 12:00 UTC is 13:00 in Berlin (quiet hours checked, not shifted)
    assert "| 12:00 | 0 | 1 |" in md and "| 13:00 | 1 | 0 |" in md


def _run_at(ws: Path, now: str, *args: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DECLARE_")}
    environ.update(NO_COLOR="1", DECLARE_TEST_NOW=now)
    return subprocess.run([sys.executable, "-m", "connectly_declare", "-C", str(ws), *args],
                          capture_output=True, text=True, env=environ, timeout=120)


@pytest.mark.slow
def test_capped_and_held_become_sends_later_with_an_injected_clock(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "declare.yaml").write_text(
        'version: 1\nbusiness_id: biz-1\nquiet_hours: {start: "21:00", end: "08:00"}\n'
        "frequency_cap: [{max: 1, per: 1d}]\n", encoding="utf-8")
    (ws / "manifests.yaml").write_text(textwrap.dedent("""\
        kind: Campaign
        name: news
        ---
        kind: Campaign
        name: offer
        ---
        kind: Sendout
        name: news
        campaign: news
        audience: {sources: [{inline: ['+4915112345678']}]}
        ---
        kind: Sendout
        name: offer
        campaign: offer
        audience: {sources: [{inline: ['+4915112345678']}]}
        """), encoding="utf-8")
    # news was delivered at 10:00 UTC (11:00 in Berlin)
    assert _run_at(ws, "2030-01-07T10:00:00+00:00", "plan", "--target", "news", "--out",
                   str(ws / "n.plan")).returncode == 0
    plan = read_plan(ws / "n.plan")
    ledger = LocalLedger(ws / ".declare" / "ledger.jsonl", business_id="biz-1")
    with ledger.lock("test apply"):
        for sendout, planned in plan.iter_sends():
            e = planned.entry
            ledger.append([
                Intent(batch_id="b1", at="2030-01-07T10:00:00+00:00", sendout=sendout.name,
                       campaign=e.campaign, version=e.version, scope=e.scope,
                       options=sendout.options, entries=(IntentEntry(e.client, e.fingerprint),)),
                Outcome(batch_id="b1", at="2030-01-07T10:00:01+00:00", status="accepted")])
    # an hour later: offer is capped (1 a day); nothing is sendable, so exit 0
    soon = _run_at(ws, "2030-01-07T11:00:00+00:00", "plan", "--detailed-exitcode")
    assert soon.returncode == 0, soon.stdout + soon.stderr
    assert "offer (offer, allow_one): 1 capped" in soon.stdout
    assert "DECLARE_TEST_NOW is set" in soon.stderr
    # the next day at 22:30 UTC (23:30 in Berlin) the cap has passed, but quiet hours hold it
    night = _run_at(ws, "2030-01-08T22:30:00+00:00", "plan", "--detailed-exitcode",
                    "--quiet-hours=hold")
    assert night.returncode == 0 and "offer (offer, allow_one): 1 held" in night.stdout
    shifted = _run_at(ws, "2030-01-08T22:30:00+00:00", "plan", "--details")
    assert "offer (offer, allow_one): 1 send" in shifted.stdout
    assert "at 2030-01-09T08:00:00+01:00" in shifted.stdout  # moved to the end of quiet hours
    # the next morning: sent
    morning = _run_at(ws, "2030-01-09T09:00:00+00:00", "plan", "--detailed-exitcode",
                      "--quiet-hours=hold")
    assert morning.returncode == 2 and "offer (offer, allow_one): 1 send" in morning.stdout
