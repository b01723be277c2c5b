"""The apply engine against the real simulator app (in-process, httpx.ASGITransport) and
the real ledger fold: who received what, and what the ledger says about it."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from typing import Any

import httpx
import pytest

from connectly_declare.apply.client import ClientSettings, ConnectlyClient, Secret
from connectly_declare.apply.engine import Engine, EngineSettings
from connectly_declare.apply.results import ApplyResult
from connectly_declare.errors import LedgerError
from connectly_declare.ledger.base import Intent, Outcome
from connectly_declare.sim import FaultConfig, Simulator
from tests.apply.helpers import (
    BUSINESS,
    CAMPAIGN,
    KEY,
    MemoryLedger,
    deliveries,
    make_simulator,
    sends,
)


async def _nap(seconds: float) -> None:
    await asyncio.sleep(0)


def run(plan: Sequence[Any], ledger: MemoryLedger, sim: Simulator, *, key: str = KEY,
        in_doubt: frozenset[str] = frozenset(), stop_after: int | None = None,
        **settings: Any) -> ApplyResult:
    counter = itertools.count()

    async def go() -> ApplyResult:
        client = ConnectlyClient(
            ClientSettings("http://sim", BUSINESS, Secret(key), requests_per_second=10_000,
                           concurrency=4),
            transport=httpx.ASGITransport(app=sim.app), sleep=_nap)
        stop = asyncio.Event()

        class StopAfter:
            done = 0

            def advance(self, n: int) -> None:
                self.done += n
                if stop_after is not None and self.done >= stop_after:
                    stop.set()

        async with client:
            engine = Engine(plan, ledger, client, settings=EngineSettings(
                batch_size=settings.pop("batch_size", 50), concurrency=4, **settings),
                in_doubt=in_doubt, stop=stop, progress=StopAfter(), sleep=_nap,
                new_id=lambda: f"b{next(counter)}")
            return await engine.run()

    return asyncio.run(go())


def test_everything_accepted_is_recorded_and_summarised(ledger: MemoryLedger,
                                                        simulator: Simulator) -> None:
    plan = sends(520)
    result = run(plan, ledger, simulator)
    assert result.ok and not result.interrupted
    (summary,) = result.sendouts
    assert (summary.planned, summary.sent, summary.accepted, summary.rejected,
            summary.unknown, summary.not_sent) == (520, 520, 520, 0, 0, 0)
    assert summary.campaign == CAMPAIGN and len(summary.sendout_ids) == 1
    assert deliveries(simulator) == {p.entry.client: 1 for _, p in plan}
    state = ledger.read()
    assert {k: s.status for k, s in state.keys.items()} == {
        p.entry.key: "accepted" for _, p in plan}
    # Every outcome follows its own intent.
    order = [(type(r).__name__, r.batch_id) for r in ledger.items
             if isinstance(r, Intent | Outcome)]
    for i, (kind, batch_id) in enumerate(order):
        if kind == "Outcome":
            assert ("Intent", batch_id) in order[:i]
    assert result.requests == 11 and result.serial == len(ledger.items)


def test_allow_one_unknown_outcomes_are_resent_and_nobody_gets_two() -> None:
    sim = make_simulator_with(FaultConfig(error_500_rate=0.2, drop_after_accept_rate=0.2,
                                          seed=3))
    ledger = MemoryLedger()
    plan = sends(1000)
    result = run(plan, ledger, sim, batch_size=20, unknown_retry_rounds=12)
    assert sim.state.stats.injected_drops > 5 and sim.state.stats.injected_500 > 5
    assert deliveries(sim) == {p.entry.client: 1 for _, p in plan}
    assert {s.status for s in ledger.read().keys.values()} == {"accepted"}
    assert result.ok and result.sendouts[0].accepted == 1000


def test_allow_multiple_unknown_stays_unknown_and_nobody_gets_two() -> None:
    sim = make_simulator_with(FaultConfig(drop_after_accept_rate=0.3, error_500_rate=0.1,
                                          seed=5))
    ledger = MemoryLedger()
    plan = sends(600, allow_multiple=True)
    result = run(plan, ledger, sim, batch_size=20)
    got = deliveries(sim)
    assert set(got.values()) == {1}
    statuses = {k: s.status for k, s in ledger.read().keys.items()}
    by_client = {p.entry.client: p.entry.key for _, p in plan}
    unknown = {k for k, s in statuses.items() if s == "unknown"}
    accepted = {k for k, s in statuses.items() if s == "accepted"}
    assert unknown and accepted | unknown == set(by_client.values())
    # Delivered people are accepted or in doubt; accepted ones really were delivered.
    assert {by_client[c] for c in got} <= accepted | unknown
    assert accepted <= {by_client[c] for c in got}
    (summary,) = result.sendouts
    assert summary.unknown == len(unknown) and summary.accepted == len(accepted)
    assert not result.ok


@pytest.mark.parametrize("style", ["page", "silent"])
def test_resending_in_doubt_entries_from_an_earlier_run(ledger: MemoryLedger, style: str) -> None:
    """A crash after the server accepted, before the outcome was written: the next run
    re-sends each in-doubt entry alone; its rejection as a repeat (ENTRY_INVALID on the
    page's style, no error on the silent one) means delivered, and is recorded so."""
    simulator = Simulator(make_simulator().state.catalog, rate_limit=None, seed=7,
                          repeat_style=style)  # type: ignore[arg-type]
    first = sends(40)
    run(first[:30], MemoryLedger(), simulator)  # delivered, outcome "lost"
    doubt = frozenset(p.entry.key for _, p in first[:30])
    before = simulator.state.stats.requests
    result = run([(s, p) for s, p in first], ledger, simulator, in_doubt=doubt)
    assert deliveries(simulator) == {p.entry.client: 1 for _, p in first}
    assert simulator.state.stats.requests - before == 30 + 1  # 30 alone, 10 fresh together
    states = ledger.read().keys
    assert {s.status for s in states.values()} == {"accepted"}
    inferred = {k for k, s in states.items()
                if (s.error or "").startswith("inferred: already received")}
    assert inferred == doubt
    (summary,) = result.sendouts
    assert (summary.accepted, summary.inferred, summary.failed) == (40, 30, 0) and result.ok


def test_401_stops_all_requests_and_records_nothing_as_sent(ledger: MemoryLedger,
                                                            simulator: Simulator) -> None:
    result = run(sends(1000), ledger, simulator, key="wrong-key", batch_size=10)
    assert result.stopped_by is not None and "401" in result.stopped_by
    assert simulator.state.stats.requests <= 4  # at most the requests already in flight
    assert deliveries(simulator) == {}
    state = ledger.read()
    assert {s.status for s in state.keys.values()} == {"rejected"}
    assert len(state.keys) == 10 * simulator.state.stats.requests
    (summary,) = result.sendouts
    assert summary.not_sent == 1000 - len(state.keys) and summary.accepted == 0


def test_a_ledger_that_cannot_be_written_stops_sending(ledger: MemoryLedger,
                                                       simulator: Simulator) -> None:
    ledger.fail_after = 3
    with pytest.raises(LedgerError, match="cannot write the memory: disk full"):
        run(sends(500), ledger, simulator, batch_size=10)
    intended = {e.client for r in ledger.items if isinstance(r, Intent) for e in r.entries}
    assert set(deliveries(simulator)) <= intended  # nothing sent without a durable intent
    intents = sum(isinstance(r, Intent) for r in ledger.items)
    assert simulator.state.stats.requests == intents < 50  # and it stopped early


def test_stopping_finishes_in_flight_and_starts_nothing_new(ledger: MemoryLedger,
                                                            simulator: Simulator) -> None:
    result = run(sends(2000), ledger, simulator, batch_size=10, stop_after=200)
    assert result.interrupted and not result.ok
    (summary,) = result.sendouts
    delivered = deliveries(simulator)
    assert 200 <= len(delivered) < 2000
    assert summary.accepted == len(delivered) and summary.unknown == 0
    assert summary.not_sent == 2000 - len(delivered)
    state = ledger.read()
    assert {s.status for s in state.keys.values()} == {"accepted"}
    assert len(state.keys) == len(delivered)


def make_simulator_with(faults: FaultConfig) -> Simulator:
    base = make_simulator()
    return Simulator(base.state.catalog, faults=faults, rate_limit=None, seed=faults.seed)


def test_an_unreachable_server_stops_the_run_early(ledger: MemoryLedger) -> None:
    async def go() -> ApplyResult:
        client = ConnectlyClient(
            ClientSettings("http://127.0.0.1:9", BUSINESS, Secret(KEY),
                           requests_per_second=10_000, concurrency=1, max_connect_retries=1),
            sleep=_nap)
        async with client:
            return await Engine(sends(500), ledger, client, sleep=_nap, settings=EngineSettings(
                batch_size=10, concurrency=1)).run()

    result = asyncio.run(go())
    assert result.stopped_by is not None and "could not be reached" in result.stopped_by
    assert "127.0.0.1:9" in result.stopped_by  # the host, so the user can check it
    (summary,) = result.sendouts
    # Nothing reached the server: nothing counts as sent or rejected, all 500 not sent.
    assert (summary.sent, summary.rejected, summary.not_sent) == (0, 0, 500)
    [(reason, count)] = summary.not_sent_reasons
    assert count == 30 and reason.startswith("CLIENT_NOT_SENT: could not reach 127.0.0.1:9")
    assert {s.status for s in ledger.read().keys.values()} == {"rejected"}
