"""Small record builders shared by the postgres tests."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from connectly_declare.ledger.base import Intent, IntentEntry, Ledger, Outcome, Record
from tests.support.e2e import start_cli


def intent(batch: str, *clients: str, campaign: str = "spring promo") -> Intent:
    return Intent(batch_id=batch, at="2026-11-26T10:00:00Z", sendout="spring",
                  campaign=campaign, version="v1", scope="",
                  options={"if_duplicate_check_unspecified": "allow_one"},
                  entries=tuple(IntentEntry(c, f"fp-{c}") for c in clients))


def outcome(batch: str, status: str = "accepted", accepted: int = 1) -> Outcome:
    return Outcome(batch_id=batch, at="2026-11-26T10:00:01Z", status=status,  # type: ignore[arg-type]
                   accepted_count=accepted, sendout_id="so-1", http_status=200)


def put(ledger: Ledger, records: Sequence[Record]) -> int:
    """Append under the writer lock, as every writer must."""
    with ledger.lock("test", timeout=30):
        return ledger.append(records)


def two_applies_at_once(ws: Path, key: str, env: dict[str, str],
                        wait: str) -> list[subprocess.CompletedProcess[str]]:
    """Start two `apply` processes at the same moment; their results."""
    args = ("apply", "--auto-approve", "--lock-timeout", wait)
    procs = [start_cli(ws, *args, api_key=key, env=env) for _ in range(2)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        results.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return results
