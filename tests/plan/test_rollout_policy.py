"""Waves compose with the timing policies (issue 14): a per-recipient local schedule and
quiet hours apply to each wave's entries as the wave opens, and the next wave's `after:`
counts from the previous wave's delivery (its scheduledAt), not from the API call. Real
workspace on disk, real loader, real phonenumbers time zones, real local ledger."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from connectly_declare.ledger.base import Intent, IntentEntry, Outcome
from connectly_declare.ledger.local import LocalLedger
from connectly_declare.plan.make import build_plan
from connectly_declare.plan.model import Plan, PlanOptions
from connectly_declare.plan.rollout import bucket, short_time
from connectly_declare.workspace.load import load_workspace

SENDOUT = "night-owls"
NEW_YORK = [f"+1212{2_000_000 + i:07d}" for i in range(15)]
LOS_ANGELES = [f"+1415{2_000_000 + i:07d}" for i in range(15)]
CLIENTS = NEW_YORK + LOS_ANGELES
T0 = datetime(2027, 12, 20, 12, 0, tzinfo=UTC)


def workspace(root: Path) -> Path:
    root.mkdir()
    (root / "declare.yaml").write_text(textwrap.dedent("""\
        version: 1
        business_id: biz
        quiet_hours: {start: "21:00", end: "08:00"}
        """), encoding="utf-8")
    people = "\n".join(f"      - '{c}'" for c in CLIENTS)
    (root / "manifests.yaml").write_text(textwrap.dedent("""\
        kind: Campaign
        name: Owls
        versions: [{version: v1}]
        ---
        kind: Audience
        name: people
        sources:
          - inline:
        """) + people + textwrap.dedent(f"""
        ---
        kind: Sendout
        name: {SENDOUT}
        campaign: Owls
        version: v1
        audience: people
        schedule: {{local: "2027-12-20T22:30"}}   # inside quiet hours everywhere
        rollout:
          - {{percent: 30}}
          - {{percent: 100, after: 2h}}
        """), encoding="utf-8")
    return root


def plan_at(root: Path, now: datetime) -> Plan:
    ws = load_workspace(root)
    ledger = LocalLedger(root / ".declare" / "ledger.jsonl", business_id="biz")
    return build_plan(ws, ledger, PlanOptions(), now=now)


def test_quiet_hours_and_local_schedules_apply_per_wave(tmp_path: Path) -> None:
    root = workspace(tmp_path / "ws")
    first_wave = {c for c in CLIENTS if bucket(SENDOUT, c) < 3000}
    assert first_wave & set(NEW_YORK) and first_wave & set(LOS_ANGELES)

    first = plan_at(root, T0)
    sends = {p.entry.client: p.entry for _, p in first.iter_sends()}
    assert set(sends) == first_wave
    assert first.sendouts[0].counts["waiting"] == len(CLIENTS) - len(first_wave)
    # 22:30 local is quiet: shifted to 08:00 local the next morning, in each one's zone
    for client, entry in sends.items():
        expected = "2027-12-21T08:00:00-05:00" if client in NEW_YORK else \
            "2027-12-21T08:00:00-08:00"
        assert entry.scheduled_at == expected, client

    ledger = LocalLedger(root / ".declare" / "ledger.jsonl", business_id="biz")
    with ledger.lock("test"):
        ledger.append([Intent(batch_id="b1", at=T0.isoformat(), sendout=SENDOUT,
                              campaign="Owls", version="v1", scope="", options={},
                              entries=tuple(IntentEntry(e.client, e.fingerprint)
                                            for e in sends.values()))])
        ledger.append([Outcome(batch_id="b1", at=T0.isoformat(), status="accepted")])

    # accepted at T0, delivered at 08:00 Los Angeles (16:00Z): wave 2 opens at 18:00Z
    delivered = datetime(2027, 12, 21, 16, 0, tzinfo=UTC)
    held = plan_at(root, delivered + timedelta(hours=1))
    assert held.sends == 0
    assert held.sendouts[0].waves[1].opens_at == short_time(delivered + timedelta(hours=2))

    # wave 2 opens later, when the first wave's schedule has passed: it is timed as "now"
    # under the same quiet hours, in each one's zone. At 03:00Z it is 22:00 in New York
    # (quiet: shifted to 08:00 there) and 19:00 in Los Angeles (not quiet: sent now)
    opened = plan_at(root, datetime(2027, 12, 22, 3, 0, tzinfo=UTC))
    rest = {p.entry.client: p.entry for _, p in opened.iter_sends()}
    assert set(rest) == set(CLIENTS) - first_wave
    for client, entry in rest.items():
        expected = "2027-12-22T08:00:00-05:00" if client in NEW_YORK else None
        assert entry.scheduled_at == expected, client
    # only what is sent was re-timed, not the content: once accepted, nobody drifts
    with ledger.lock("test"):
        ledger.append([Intent(batch_id="b2", at=T0.isoformat(), sendout=SENDOUT,
                              campaign="Owls", version="v1", scope="", options={},
                              entries=tuple(IntentEntry(e.client, e.fingerprint)
                                            for e in rest.values()))])
        ledger.append([Outcome(batch_id="b2", at=T0.isoformat(), status="accepted")])
    settled = plan_at(root, datetime(2027, 12, 23, 3, 0, tzinfo=UTC)).sendouts[0]
    assert settled.counts["noop"] == len(CLIENTS)
    assert settled.counts["drift"] == settled.counts["send"] == 0


def _cli_plan(root: Path, now: datetime) -> dict[str, Any]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DECLARE_")}
    environ["DECLARE_TEST_NOW"] = now.isoformat()
    done = subprocess.run([sys.executable, "-m", "connectly_declare", "-C", str(root), "plan",
                           "--format", "json", "--show-recipients", "--target", SENDOUT],
                          capture_output=True, text=True, env=environ, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


def _accept(root: Path, batch: str, sendout: str, campaign: str, clients: Iterable[str],
            fingerprints: Mapping[str, str], at: datetime) -> None:
    ledger = LocalLedger(root / ".declare" / "ledger.jsonl", business_id="biz")
    with ledger.lock("test"):
        ledger.append([Intent(batch_id=batch, at=at.isoformat(), sendout=sendout,
                              campaign=campaign, version="v1", scope="", options={},
                              entries=tuple(IntentEntry(c, fingerprints[c])
                                            for c in sorted(clients)))])
        ledger.append([Outcome(batch_id=batch, at=at.isoformat(), status="accepted")])


@pytest.mark.slow  # five CLI runs
def test_waves_times_quiet_hours_times_a_frequency_cap(tmp_path: Path) -> None:
    """Caps count only what a wave sends now (waiting entries are neither capped nor
    counted); a capped member keeps their wave unfinished, so the next wave waits for
    them; and the next wave, once open, is capped and timed like any other send."""
    root = workspace(tmp_path / "ws")
    config = root / "declare.yaml"
    config.write_text(config.read_text(encoding="utf-8")
                      + "frequency_cap:\n  - {max: 1, per: 7d}\n", encoding="utf-8")
    manifests = root / "manifests.yaml"  # this sendout sends now: no schedule
    text = manifests.read_text(encoding="utf-8")
    manifests.write_text("\n".join(line for line in text.splitlines()
                                   if not line.startswith("schedule:")) + "\n",
                         encoding="utf-8")
    first_wave = {c for c in CLIENTS if bucket(SENDOUT, c) < 3000}
    second_wave = set(CLIENTS) - first_wave
    # another campaign reached two of wave 1 and two of wave 2 a day ago
    newsy = set(sorted(first_wave)[:2]) | set(sorted(second_wave)[:2])
    noon = datetime(2027, 12, 20, 17, 0, tzinfo=UTC)  # 12:00 New York, 09:00 Los Angeles
    _accept(root, "news", "news", "News", newsy, dict.fromkeys(newsy, "f" * 32),
            noon - timedelta(days=1))

    doc = _cli_plan(root, noon)
    owls = doc["sendouts"][0]
    assert owls["counts"]["capped"] == 2  # wave 1's two, not wave 2's: they wait
    assert owls["counts"]["send"] == len(first_wave) - 2
    assert owls["counts"]["waiting"] == len(second_wave)
    fingerprints = {e["client"]: e["fingerprint"] for e in owls["entries"]
                    if e["action"] == "send"}
    assert set(fingerprints) == first_wave - newsy
    _accept(root, "w1", SENDOUT, "Owls", set(fingerprints), fingerprints, noon)
    # 3h later: the 2h gate has passed, but wave 1 is unfinished (its capped two)
    held = _cli_plan(root, noon + timedelta(hours=3))["sendouts"][0]
    assert held["counts"]["capped"] == 2 and held["counts"]["send"] == 0
    assert held["waves"][1]["gate"].startswith("waits for wave 1 to finish (2 not sent")

    # a week on the cap lets the two through (at 12:00 New York: not quiet)
    week = noon + timedelta(days=7)
    late = _cli_plan(root, week)["sendouts"][0]
    rest = {e["client"]: e["fingerprint"] for e in late["entries"] if e["action"] == "send"}
    assert set(rest) == first_wave & newsy
    _accept(root, "w1b", SENDOUT, "Owls", set(rest), rest, week)
    # wave 2 opens 2h after them, at 14:00 New York / 11:00 Los Angeles; the cap's window
    # for wave 2's two has passed as well, so all of wave 2 goes, sent now (no schedule,
    # not quiet anywhere)
    opened = _cli_plan(root, week + timedelta(hours=2))["sendouts"][0]
    assert opened["counts"]["send"] == len(second_wave)
    assert opened["counts"]["capped"] == opened["counts"]["waiting"] == 0
    assert {e["scheduled_at"] for e in opened["entries"] if e["action"] == "send"} == {None}
    # and at 03:00Z (22:00 New York: quiet) New York's wave 2 would be shifted to 08:00
    night = _cli_plan(root, week + timedelta(hours=10))["sendouts"][0]
    shifted = {e["scheduled_at"] for e in night["entries"] if e["action"] == "send"}
    assert "2027-12-28T08:00:00-05:00" in shifted and None in shifted
