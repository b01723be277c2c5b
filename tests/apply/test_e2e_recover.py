"""`apply --recover-in-doubt` end to end: an allow_multiple apply crashed (SIGKILL) and
faulted (timeouts, dropped answers, 500s) leaves keys in doubt; recovery re-sends, one per
request under allow_one, exactly those the ledger has no other delivery for. The real CLI
as a subprocess, the real simulator in its own process; who received what comes from the
simulator's /_sim/deliveries."""

from __future__ import annotations

import json
import signal
from collections import Counter
from pathlib import Path

import pytest

from connectly_declare.entry import split_key
from connectly_declare.ledger.base import Intent, Outcome
from connectly_declare.ledger.local import LocalLedger
from tests.apply.test_e2e_apply import kill_when, plan_actions
from tests.support.e2e import (
    CAMPAIGN,
    SimProcess,
    catalog,
    edit_sendout,
    new_api_key,
    run_cli,
    sim_process,
    start_cli,
    write_workspace,
)

FAULTS = ["--timeout-rate", "0.06", "--drop-rate", "0.06", "--fail-rate", "0.06",
          "--hang-seconds", "2", "--latency-ms", "2", "--seed", "41"]
SETTINGS = {"batch_size": 50, "requests_per_second": 150, "concurrency": 8,
            "timeout_seconds": 0.5}


def apply_until_nothing(ws: Path, key: str, *args: str, runs: int = 6) -> list[str]:
    outputs = []
    for _ in range(runs):
        done = run_cli(ws, "apply", "--auto-approve", *args, api_key=key, timeout=180)
        outputs.append(done.stdout + done.stderr)
        assert done.returncode in (0, 1), outputs[-1]
        if "Nothing to send" in done.stdout:
            return outputs
    raise AssertionError("apply did not converge:\n" + "\n".join(outputs))


def delivered(sim: SimProcess, greeting: str) -> Counter[str]:
    """client -> deliveries of the campaign whose `name` variable starts with `greeting`."""
    return Counter(d["client"] for d in sim.deliveries(campaign=CAMPAIGN)
                   if str((d["variables"] or {}).get("name", "")).startswith(greeting))


def keys(ws: Path) -> dict[str, str]:
    state = LocalLedger(ws / ".declare" / "ledger.jsonl").read()
    return {split_key(k)[1]: s.status for k, s in state.keys.items()}


def in_doubt_listed(ws: Path) -> set[str]:
    found = set()
    for status in ("unknown", "partial"):
        listing = run_cli(ws, "state", "list", "--status", status, "--show-recipients")
        assert listing.returncode == 0, listing.stderr
        found |= {line.split()[1] for line in listing.stdout.splitlines()
                  if line.startswith(status)}
    return found


def set_greeting(ws: Path, greeting: str) -> None:
    """Change what the sendout sends (its `name` variable): allow_multiple resends it."""
    edit_sendout(ws, variables={"name": greeting + " {{ recipient.name }}"})


@pytest.mark.slow
@pytest.mark.parametrize("repeat_style", ["page", "silent"])
def test_recover_in_doubt_after_a_crash_sends_nobody_twice_and_misses_nobody(
        tmp_path: Path, repeat_style: str) -> None:
    # page: a repeat is answered with ERROR_CODE_CAMPAIGN_ENTRY_INVALID (the vendor's page);
    # silent: rejected without an error. Both must read as "received before".
    key = new_api_key()
    ws = tmp_path / "ws"
    with sim_process(catalog(key), args=[*FAULTS, "--repeat-style", repeat_style]) as sim:
        clients = write_workspace(ws, base_url=sim.url, recipients=1_000, allow_multiple=True,
                                  settings=SETTINGS)
        set_greeting(ws, "Hi")
        process = start_cli(ws, "apply", "--auto-approve", api_key=key)
        kill_when(sim, process, 6)
        assert process.returncode == -signal.SIGKILL
        apply_until_nothing(ws, key)  # without recovery: converges with keys blocked
        before = delivered(sim, "Hi")
        statuses = keys(ws)
        in_doubt = {c for c, s in statuses.items() if s in ("unknown", "partial")}
        assert set(before.values()) == {1}  # nobody twice
        assert in_doubt and in_doubt == set(clients) - {c for c, s in statuses.items()
                                                          if s == "accepted"}
        assert in_doubt_listed(ws) == in_doubt  # nobody silently missed: listed
        lost = in_doubt - set(before)  # in doubt and in fact never delivered
        assert lost and in_doubt & set(before)  # both kinds, or the test proves little

        # the plan counts them as recoverable (no other delivery anywhere), sends nothing
        planned = run_cli(ws, "plan", "--format", "json", api_key=key)
        assert planned.returncode == 0, planned.stderr
        notes = [n for s in json.loads(planned.stdout)["sendouts"] for n in s["notes"]]
        assert any(n.startswith(f"recoverable: {len(in_doubt):,} of the blocked") for n in notes)
        assert plan_actions(ws, key)["blocked"] == len(in_doubt)

        outputs = apply_until_nothing(ws, key, "--recover-in-doubt")
        after = delivered(sim, "Hi")
        assert after == Counter(dict.fromkeys(clients, 1))  # everyone, exactly once
        assert set(after) - set(before) == lost  # recovery delivered exactly the lost ones
        assert set(keys(ws).values()) == {"accepted"}
        assert "recover" in outputs[0]
        inferred = recovery_requests(ws, delivered_before=in_doubt & set(before),
                                     in_doubt=in_doubt)
        shown = run_cli(ws, "state", "show", sorted(inferred)[0])
        assert shown.stdout.startswith("accepted") and "inferred: already received" in \
            shown.stdout, shown.stdout

        # Round 2 (new content) under the same faults: its in-doubt keys have a delivery
        # (round 1) in the ledger, so nothing can prove a re-send safe: they stay blocked.
        set_greeting(ws, "Hello again")
        apply_until_nothing(ws, key, "--recover-in-doubt")
        second = delivered(sim, "Hello again")
        assert set(second.values()) <= {1}
        doubtful = in_doubt_listed(ws)
        assert doubtful  # 6% timeouts + 6% drops + 6% 500s leave some
        assert set(clients) - set(second) <= doubtful  # every undelivered one is listed
        actions = plan_actions(ws, key)
        assert actions["blocked"] == len(doubtful) and actions.get("recover", 0) == 0
        assert delivered(sim, "Hi") == Counter(dict.fromkeys(clients, 1))


def recovery_requests(ws: Path, *, delivered_before: set[str],
                      in_doubt: set[str]) -> set[str]:
    """Every recovery request held one entry under allow_one, for a key in doubt; each one
    delivered before the recovery was rejected as a repeat and recorded accepted with the
    reason (so were recoveries whose own answer was lost, once re-sent)."""
    outcomes: dict[str, Outcome] = {}
    recoveries: list[Intent] = []
    for record in LocalLedger(ws / ".declare" / "ledger.jsonl").records():
        if isinstance(record, Intent) and \
                record.options.get("if_duplicate_check_unspecified") == "allow_one":
            recoveries.append(record)
        elif isinstance(record, Outcome):
            outcomes[record.batch_id] = record
    assert recoveries and all(len(i.entries) == 1 and i.scope == "spring-promo"
                              for i in recoveries)
    inferred = {i.entries[0].client for i in recoveries
                if i.batch_id in outcomes and outcomes[i.batch_id].status == "accepted"
                and outcomes[i.batch_id].error}
    assert {i.entries[0].client for i in recoveries} == in_doubt
    assert delivered_before <= inferred <= in_doubt
    return inferred
