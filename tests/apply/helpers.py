"""Helpers of the apply tests: an in-memory ledger (the real fold, no file) and the real
simulator app, reached in-process through httpx.ASGITransport."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from connectly_declare.entry import Entry, fingerprint
from connectly_declare.ledger.base import Header, LedgerState, LockInfo, Record
from connectly_declare.ledger.fold import fold
from connectly_declare.sim import Simulator, catalog_from_campaigns

BUSINESS = "biz-1"
KEY = "sim-key-5d8a0c1e"
CAMPAIGN = "spring promo"


class MemoryLedger:
    """The Ledger protocol over a list; `fail_after` makes the n-th append raise."""

    environment: str | None = None
    business_id: str | None = None

    def __init__(self) -> None:
        self.items: list[Record] = []
        self.appends = 0
        self.fail_after: int | None = None
        self._lock = threading.Lock()

    def describe(self) -> str:
        return "memory"

    def read(self) -> LedgerState:
        return fold(self.items)

    def records(self) -> Iterator[Record]:
        return iter(list(self.items))

    def append(self, records: Sequence[Record]) -> int:
        with self._lock:
            if self.fail_after is not None and self.appends >= self.fail_after:
                raise OSError("disk full")
            self.appends += 1
            if not self.items:
                self.items.append(Header("lineage-1", "2026-01-01T00:00:00Z", None, BUSINESS))
            self.items.extend(records)
            return len(self.items)

    @contextmanager
    def lock(self, command: str, timeout: float = 0.0) -> Iterator[LockInfo]:
        yield LockInfo("l1", "me@here", 1, command, "now")

    def unlock(self, lock_id: str) -> None:
        pass

    def lock_holder(self) -> LockInfo | None:
        return None


def make_entry(i: int, *, sendout: str = "promo", campaign: str = CAMPAIGN,
               allow_multiple: bool = False, version: str | None = "v1") -> Entry:
    variables = {"name": f"n{i}"}
    return Entry(sendout, campaign, version, f"+1650555{i:04d}", variables, None, 1,
                 allow_multiple, fingerprint(version, variables, None, 1))


def make_simulator() -> Simulator:
    catalog = catalog_from_campaigns(BUSINESS, KEY, [(CAMPAIGN, [("v1", ["name"])], ["name"])])
    return Simulator(catalog, rate_limit=None, seed=7)


def deliveries(sim: Simulator) -> dict[str, int]:
    counts: dict[str, int] = {}
    for d in sim.state.deliveries:
        counts[d.client] = counts.get(d.client, 0) + 1
    return counts



@dataclass(frozen=True)
class SendoutStub:
    """The fields of plan.SendoutPlan that batching reads."""

    name: str
    options: dict[str, str]
    allow_multiple: bool = False


@dataclass(frozen=True)
class PlannedStub:
    action: str
    entry: Entry
    reason: str = ""


def sends(n: int, *, sendout: str = "promo", allow_multiple: bool = False, start: int = 0,
          action: str = "send") -> list[tuple[SendoutStub, PlannedStub]]:
    option = "allow_multiple" if allow_multiple else "allow_one"
    so = SendoutStub(sendout, {"if_duplicate_check_unspecified": option}, allow_multiple)
    return [(so, PlannedStub(action, make_entry(i, sendout=sendout,
                                                allow_multiple=allow_multiple)))
            for i in range(start, start + n)]
