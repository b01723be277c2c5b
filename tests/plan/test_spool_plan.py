"""The streamed plan is today's plan: the same workspace and ledger planned with every
entry to send kept in memory (the spool's threshold huge) and with every chunk on disk
(threshold 0, chunks of 3) give an equal Plan, the same entries field for field, a
byte-identical saved plan and the same output in every format, in-process and through
the real CLI. The workspace has what the post-passes touch: several sendouts and
countries, local schedules and quiet hours (zones, timing bits), a frequency cap that
caps some entries, `allow_multiple` resends and noops, retries from the ledger."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectly_declare.ledger.base import Intent, IntentEntry, Outcome
from connectly_declare.ledger.local import LocalLedger
from connectly_declare.plan.model import Plan, PlannedEntry
from connectly_declare.plan.planfile import plan_bytes, read_plan
from connectly_declare.plan.spool import CHUNK_ENV, MEMORY_ENV, Spool

NOW = datetime(2029, 12, 31, 12, 0, tzinfo=UTC)
IN_MEMORY = {MEMORY_ENV: "1000000000"}
ON_DISK = {MEMORY_ENV: "0", CHUNK_ENV: "3"}
CONFIG = """\
version: 1
business_id: biz-1
quiet_hours: {start: "21:00", end: "08:00"}
frequency_cap:
  - {max: 2, per: 7d}
"""
NAMES = ("Ana", "Bó \"x\"", "Zoë", "李", "Ωmega 🙂", "O'Brien", "", "Łukasz")


def clients() -> list[str]:
    """Valid mobile numbers of four countries, 30 each."""
    found = []
    for n in range(30):
        found += [f"+49151123{45000 + n:05d}", f"+551198765{4000 + n:04d}",
                  f"+628123456{7000 + n:04d}", f"+1650253{1000 + n:04d}"]
    return found


def workspace(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "declare.yaml").write_text(CONFIG, encoding="utf-8")
    people = clients()
    (root / "people.csv").write_text(
        "phone,name\n" + "".join(f"{c},{NAMES[i % len(NAMES)]!r}\n" for i, c in
                                 enumerate(people)), encoding="utf-8")
    (root / "vip.csv").write_text("phone,name\n" + "".join(
        f"{c},VIP {i}\n" for i, c in enumerate(people[::3])), encoding="utf-8")
    (root / "manifests.yaml").write_text(textwrap.dedent("""\
        kind: Campaign
        name: news
        versions: [{version: v1, variables: [name]}]
        ---
        kind: Campaign
        name: offer
        versions: [{version: v1, variables: [name]}]
        ---
        kind: Campaign
        name: promo
        versions: [{version: v1, variables: [name, n]}]
        ---
        kind: Audience
        name: people
        sources: [{csv: people.csv}]
        ---
        kind: Audience
        name: vip
        sources: [{csv: vip.csv}]
        ---
        kind: Sendout
        name: earlier
        campaign: news
        version: v1
        audience: vip
        schedule: 2030-01-01T10:00:00+00:00
        quiet_hours: none
        variables: {name: "{{ recipient.name }}"}
        ---
        kind: Sendout
        name: later
        campaign: offer
        version: v1
        audience: people
        schedule: {local: "2030-01-03T22:00", timezone: auto, fallback: UTC}
        variables: {name: "{{ recipient.name }}"}
        ---
        kind: Sendout
        name: again
        campaign: promo
        version: v1
        audience: people
        priority: 1
        schedule: 2030-01-02T12:00:00+00:00
        options: {if_duplicate_check_unspecified: allow_multiple}
        variables: {name: "{{ recipient.name }}", n: "{{ recipient.phone[-2:] }}"}
        """), encoding="utf-8")
    return root


def run(ws: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DECLARE_")}
    environ.update(env, NO_COLOR="1", DECLARE_TEST_NOW=NOW.isoformat())
    result = subprocess.run([sys.executable, "-m", "connectly_declare", "-C", str(ws), *args],
                            capture_output=True, text=True, env=environ, timeout=120)
    assert result.returncode in (0, 2), result.stderr
    return result


def with_history(ws: Path) -> Path:
    """A ledger where `again` was sent before to every other person (half of them with
    other content: resend; the rest: noop) and `later` was rejected for every fifth."""
    run(ws, IN_MEMORY, "plan", "--out", str(ws / "first.plan"))
    first = read_plan(ws / "first.plan")
    ledger = LocalLedger(ws / ".declare" / "ledger.jsonl", business_id="biz-1")
    with ledger.lock("test"):
        for n, (sendout, planned) in enumerate(first.iter_sends()):
            e = planned.entry
            if sendout.name == "again" and n % 2:
                status, fp = "accepted", e.fingerprint if n % 4 == 1 else "0" * 32
            elif sendout.name == "later" and n % 5 == 0:
                status, fp = "rejected", e.fingerprint
            else:
                continue
            batch = f"{sendout.name}-{n}"
            ledger.append([
                Intent(batch_id=batch, at="2029-12-20T09:00:00+00:00", sendout=sendout.name,
                       campaign=e.campaign, version=e.version, scope=e.scope,
                       options=sendout.options, entries=(IntentEntry(e.client, fp),)),
                Outcome(batch_id=batch, at="2029-12-20T09:00:01+00:00", status=status,
                        error=None if status == "accepted" else {"message": "busy"})])
    return ws


def full(p: PlannedEntry) -> tuple[object, ...]:
    e = p.entry
    return (p.action, p.reason, e.sendout, e.campaign, e.version, e.client,
            dict(e.variables), e.scheduled_at, e.round, e.allow_multiple, e.fingerprint,
            e.source, e.zone, e.timing)


def plan_in_process(ws: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Plan:
    from connectly_declare.commands.plan import PlanRequest, make_workspace_plan

    with monkeypatch.context() as m:
        for name, value in {MEMORY_ENV: "", CHUNK_ENV: "", **env}.items():
            m.setenv(name, value)
        return make_workspace_plan(PlanRequest(start=ws), environ={}, now=NOW)


def test_spooled_plan_equals_the_in_memory_plan(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from connectly_declare.report.format import format_json, format_text

    ws = with_history(workspace(tmp_path / "ws"))
    memory = plan_in_process(ws, IN_MEMORY, monkeypatch)
    disk = plan_in_process(ws, ON_DISK, monkeypatch)
    spools = [s.to_send for s in disk.sendouts]
    assert all(isinstance(s, Spool) for s in spools)
    assert all(s.on_disk >= len(s) - 2 for s in spools if isinstance(s, Spool))
    assert all(s.to_send.on_disk == 0 for s in memory.sendouts if isinstance(s.to_send, Spool))
    # what the plan holds covers the post-passes: caps, timing, resends, retries
    assert {a for a in ("send", "resend", "retry", "noop", "capped") if memory.total(a)} == \
        {"send", "resend", "retry", "noop", "capped"}
    assert any(p.entry.zone and p.entry.timing for p in memory.sendouts[2].to_send)

    assert disk == memory
    for a, b in zip(memory.sendouts, disk.sendouts, strict=True):
        assert [full(p) for p in a.to_send] == [full(p) for p in b.to_send]
        assert [full(p) for p in a.samples] == [full(p) for p in b.samples]
        assert (a.counts, a.timing, a.notes) == (b.counts, b.timing, b.notes)
    assert plan_bytes(disk, compress=True) == plan_bytes(memory, compress=True)
    for show in (False, True):
        assert format_json(disk, show_recipients=show) == format_json(memory,
                                                                      show_recipients=show)
        assert format_text(disk, show_recipients=show) == format_text(memory,
                                                                      show_recipients=show)

    # read back into spools on disk: the same Plan, the same entries
    (tmp_path / "p.plan.gz").write_bytes(plan_bytes(memory, compress=True))
    with monkeypatch.context() as m:
        m.setenv(MEMORY_ENV, "0")
        m.setenv(CHUNK_ENV, "2")
        back = read_plan(tmp_path / "p.plan.gz")
    assert back == memory
    assert all(isinstance(s.to_send, Spool) and s.to_send.on_disk for s in back.sendouts
               if len(s.to_send) > 2)
    assert [(s.name, p.entry.to_api()) for s, p in back.iter_sends()] == \
        [(s.name, p.entry.to_api()) for s, p in memory.iter_sends()]


@pytest.mark.slow  # CLI subprocesses
def test_the_cli_writes_and_shows_the_same_bytes_either_way(tmp_path: Path) -> None:
    ws = with_history(workspace(tmp_path / "ws"))
    outputs = {}
    for label, env in (("memory", IN_MEMORY), ("disk", ON_DISK)):
        plan_file = tmp_path / f"{label}.plan.gz"
        run(ws, env, "plan", "--out", str(plan_file))
        outputs[label] = [
            plan_file.read_bytes(),
            run(ws, env, "plan", "--format", "json", "--show-recipients").stdout,
            run(ws, env, "plan", "--details", "--show-recipients").stdout,
            run(ws, env, "plan", "--format", "markdown").stdout,
            run(ws, env, "show", str(plan_file), "--details").stdout,
        ]
    assert outputs["disk"] == outputs["memory"]
    saved = read_plan(tmp_path / "disk.plan.gz")
    assert saved.total("capped") > 0 and saved.total("resend") > 0 and saved.sends > 100
    assert "frequency cap 2 per 7d" in outputs["disk"][2]
