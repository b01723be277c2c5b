"""Sending a plan's entries (the caller holds the ledger lock): the client's settings,
the endpoint (the real one or a simulator started for this apply), the apply engine run
with signals handled, and the summary of what was sent."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO

from connectly_declare.apply.batching import PlannedLike, SendoutLike
from connectly_declare.apply.client import ClientSettings, ConnectlyClient
from connectly_declare.apply.engine import Engine, EngineSettings
from connectly_declare.apply.progress import Progress
from connectly_declare.apply.results import ApplyResult
from connectly_declare.apply.summary import EXIT_INTERRUPTED, failure_lines, summary_lines
from connectly_declare.commands.destination import Destination
from connectly_declare.gcpause import steady_gc
from connectly_declare.ledger.base import Ledger, LedgerState
from connectly_declare.ledger.keyview import keys_with_status
from connectly_declare.plan.model import Plan
from connectly_declare.report import escape, github
from connectly_declare.report.where import destination_text
from connectly_declare.workspace import environments

if TYPE_CHECKING:
    from connectly_declare.sim.catalog import Catalog


IN_DOUBT = ("unknown", "partial")
UNPACED = 1e6  # requests/s of a pacing that never waits (DECLARE_SIM_RATE_LIMIT=0)


def in_doubt_keys(state: LedgerState) -> frozenset[str]:
    return frozenset(keys_with_status(state.keys, IN_DOUBT))  # in bulk over a large ledger


def client_settings(dest: Destination, base_url: str) -> ClientSettings:
    c = dest.config
    rate = c.requests_per_second
    if dest.sim and dest.sim_rate_limit is not None:  # DECLARE_SIM_RATE_LIMIT (0: unpaced)
        rate = dest.sim_rate_limit or UNPACED
    return ClientSettings(base_url=base_url, business_id=dest.business_id,
                          api_key=dest.api_key, requests_per_second=rate,
                          concurrency=c.concurrency, timeout_seconds=c.timeout_seconds)


class _Signals:
    """First SIGINT/SIGTERM: stop gracefully. Second: exit at once (intents are on disk)."""

    def __init__(self, engine: Engine, err: TextIO, grace: float) -> None:
        self.engine = engine
        self.err = err
        self.grace = grace
        self.count = 0

    def __call__(self) -> None:
        self.count += 1
        if self.count == 1:
            print(f"\nStopping: no new requests; waiting up to {self.grace:g} s for those in "
                  "flight. Press Ctrl-C again to exit at once.", file=self.err, flush=True)
            self.engine.stop()
            return
        print("Exiting now. The ledger holds an intent for every request made; the next plan "
              "shows what is in doubt.", file=self.err, flush=True)
        os._exit(EXIT_INTERRUPTED)

    @contextmanager
    def installed(self, loop: asyncio.AbstractEventLoop) -> Iterator[None]:
        sigs = (signal.SIGINT, signal.SIGTERM)
        for sig in sigs:
            loop.add_signal_handler(sig, self)
        try:
            yield
        finally:
            for sig in sigs:
                loop.remove_signal_handler(sig)


def send_plan(plan: Plan, ledger: Ledger, dest: Destination, base_url: str, *,
              in_doubt: frozenset[str], batch_size: int, err: TextIO,
              settings: EngineSettings | None = None, total: int,
              handle_signals: bool = True,
              fixed_now: Callable[[], datetime] | None = None) -> ApplyResult:
    """Send every planned entry (the caller holds the lock); return the summary."""
    return send_entries(_sends_of(plan), ledger, dest, base_url, in_doubt=in_doubt,
                        batch_size=batch_size, err=err, settings=settings, total=total,
                        handle_signals=handle_signals, fixed_now=fixed_now)


def _sends_of(plan: Plan) -> Iterator[tuple[SendoutLike, PlannedLike]]:
    yield from plan.iter_sends()  # read once the engine starts


def send_entries(sends: Iterable[tuple[SendoutLike, PlannedLike] | None], ledger: Ledger,
                 dest: Destination, base_url: str, *, in_doubt: frozenset[str],
                 batch_size: int, err: TextIO, settings: EngineSettings | None = None,
                 total: int | None, handle_signals: bool = True,
                 fixed_now: Callable[[], datetime] | None = None,
                 on_engine: Callable[[Engine], None] | None = None) -> ApplyResult:
    """Send `sends` (a plan's, or a plan's being made: plan.stream; the caller holds the
    lock); return the summary. `on_engine` is told the engine before it runs."""
    engine_settings = settings or EngineSettings(batch_size=batch_size,
                                                 concurrency=dest.config.concurrency)

    async def go() -> ApplyResult:
        progress = Progress(total, err)
        client = ConnectlyClient(client_settings(dest, base_url))
        # DECLARE_TEST_NOW: the ledger's times follow the tests' clock too
        timed: dict[str, Any] = {} if fixed_now is None else {
            "now": lambda: fixed_now().isoformat(timespec="milliseconds")}
        engine = Engine(sends, ledger, client, settings=engine_settings, in_doubt=in_doubt,
                        progress=progress, **timed)
        if on_engine is not None:
            on_engine(engine)
        handler = _Signals(engine, err, engine_settings.grace_seconds)
        guard = handler.installed(asyncio.get_running_loop()) if handle_signals else nullcontext()
        try:
            with guard:
                async with client:
                    return await engine.run()
        finally:
            progress.close()

    # No pauses while sending: the plan and ledger state built so far are frozen out of
    # the collector's sight and full collections are put off (gcpause.steady_gc).
    with steady_gc():
        return asyncio.run(go())


@contextmanager
def sending_endpoint(dest: Destination, catalog: Catalog | None,
              apart: Callable[[], bool] = lambda: False) -> Iterator[str]:
    """The base URL to send to: the real one, a simulator running apart, or one started
    for this apply on loopback: in a thread, or from a child process when `apart()` says
    the run is large (commands.simhost)."""
    if catalog is None:  # not a --sim run that starts its own simulator
        yield dest.base_url
        return
    from connectly_declare.sim import create_app, serve_in_thread

    # DECLARE_SIM_RATE_LIMIT (0: off); unset, the simulator's default
    rate_limit = 200.0 if dest.sim_rate_limit is None else dest.sim_rate_limit or None
    if apart():
        from connectly_declare.sim.child import simulator_process

        with simulator_process(catalog, rate_limit) as url:
            yield url
        return
    with serve_in_thread(create_app(catalog, rate_limit=rate_limit), "127.0.0.1", 0) as url:
        yield url


def print_summary(result: ApplyResult, dest: Destination, out: TextIO, err: TextIO,
                  environ: Mapping[str, str], plan: Plan | None = None) -> None:
    lines = summary_lines(result)
    # Every output names the environment: pipelines applying several log into one place.
    lines[0] += f" Environment {environments.environment_label(dest.resolved.environment)}."
    if plan is not None:  # and where: endpoint, business, ledger, simulator or not
        lines.insert(1, "  " + destination_text(plan))
    for line in lines:
        print(escape.terminal(line), file=out)  # names and API errors quoted in it
    # In GitHub Actions, entries refused for good also become warning annotations (stderr:
    # the runner reads both streams).
    for line in github.failure_annotations(map(escape.terminal, failure_lines(result)),
                                           title="connectly-declare: failed entries",
                                           environ=environ):
        print(line, file=err)


__all__ = [
    "client_settings",
    "in_doubt_keys",
    "print_summary",
    "send_entries",
    "send_plan",
]
