"""Shared helpers for the ledger tests: records built directly, a ledger in tmp_path."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import count
from pathlib import Path

import pytest

from connectly_declare.ledger.base import Intent, IntentEntry, Outcome, OutcomeStatus
from connectly_declare.ledger.local import LocalLedger

AT = "2026-11-26T12:00:00+00:00"


def intent(batch: str, clients: list[str], *, fp: str = "f1", sendout: str = "welcome",
           campaign: str = "Welcome", scope: str = "", version: str | None = "v1") -> Intent:
    return Intent(batch_id=batch, at=AT, sendout=sendout, campaign=campaign, version=version,
                  scope=scope, options={}, entries=tuple(IntentEntry(c, fp) for c in clients))


def outcome(batch: str, status: OutcomeStatus, **kw: object) -> Outcome:
    return Outcome(batch_id=batch, at=AT, status=status, **kw)  # type: ignore[arg-type]


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[LocalLedger]:
    ids = count(1)
    yield LocalLedger(tmp_path / ".declare" / "ledger.jsonl", business_id="biz1",
                      display=".declare/ledger.jsonl",
                      clock=lambda: datetime(2026, 11, 26, tzinfo=UTC),
                      new_id=lambda: f"lineage{next(ids)}")
