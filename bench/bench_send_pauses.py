"""Does apply's send loop stall on the garbage collector, with the plan and an in-process
simulator sharing its heap (as `apply --sim` runs)?

In one process: a plan of `--held` entries is built and kept alive (the heap a real plan
of that size leaves), then the real engine, client and fsynced local ledger send the first
`--recipients` of them to an in-process simulator (rate limit 200 requests/s), twice, each
time against a fresh simulator and ledger:

  before: the collector as it was (thresholds untouched, nothing frozen);
  after:  inside `gcpause.steady_gc()`, as `apply` now sends.

For each it prints the send phase's requests/s as a share of 200/s and the longest gap
between the starts of two consecutive requests (a full collection shows as a gap of about
a second at a million held entries; the pace alone gives ~5 ms), and the full collections
that ran during the phase.

    .venv/bin/python bench/bench_send_pauses.py [--held 1000000] [--recipients 200000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.bench_apply import BUSINESS, CAMPAIGN, LIMIT, plan  # noqa: E402
from connectly_declare.apply.client import (  # noqa: E402
    ClientSettings,
    ConnectlyClient,
    Secret,
    SendResult,
)
from connectly_declare.apply.engine import Engine, EngineSettings  # noqa: E402
from connectly_declare.gcpause import steady_gc  # noqa: E402
from connectly_declare.ledger.local import LocalLedger  # noqa: E402
from connectly_declare.sim import create_app, serve_in_thread  # noqa: E402
from connectly_declare.sim.catalog import Catalog  # noqa: E402
from tests.support.e2e import catalog, new_api_key  # noqa: E402


class Timed:
    """The client, noting when each request starts."""

    def __init__(self, inner: ConnectlyClient) -> None:
        self.inner = inner
        self.starts: list[float] = []

    @property
    def requests(self) -> int:
        return self.inner.requests

    @property
    def throttled(self) -> int:
        return self.inner.throttled

    async def send(self, entries: Sequence[Mapping[str, Any]], options: Mapping[str, str] | None,
                   *, before_request: Callable[[], Awaitable[None]] | None = None,
                   keep_trying: Callable[[], bool] | None = None) -> SendResult:
        async def noted() -> None:
            if before_request is not None:
                await before_request()
            self.starts.append(time.perf_counter())

        return await self.inner.send(entries, options, before_request=noted,
                                     keep_trying=keep_trying)


async def _send(url: str, key: str, sends: list[Any], ledger_path: Path) -> tuple[Timed, int]:
    ledger = LocalLedger(ledger_path, business_id=BUSINESS)
    settings = ClientSettings(url, BUSINESS, Secret(key), requests_per_second=LIMIT,
                              concurrency=16, timeout_seconds=30)
    with ledger.lock("bench"):
        async with ConnectlyClient(settings) as client:
            timed = Timed(client)
            result = await Engine(sends, ledger, timed,
                                  settings=EngineSettings(batch_size=100, concurrency=16)).run()
    return timed, result.total("accepted")


def run(label: str, steady: bool, cat: Catalog, key: str, sends: list[Any]) -> bool:
    full_before = gc.get_stats()[2]["collections"]
    with tempfile.TemporaryDirectory() as tmp, \
            serve_in_thread(create_app(cat, rate_limit=LIMIT), "127.0.0.1", 0) as url, \
            (steady_gc() if steady else nullcontext()):
        timed, accepted = asyncio.run(_send(url, key, sends, Path(tmp) / "ledger.jsonl"))
    full = gc.get_stats()[2]["collections"] - full_before
    starts = timed.starts
    span = starts[-1] - starts[0]
    rps = (len(starts) - 1) / span
    gap = max(b - a for a, b in itertools.pairwise(starts))
    print(f"{label:7} {len(starts)} requests in {span:.2f} s = {rps:.1f} requests/s = "
          f"{rps / LIMIT:.1%} of {LIMIT:g}/s; longest gap between requests {gap * 1000:.0f} ms; "
          f"full collections during the phase: {full}; accepted {accepted}")
    return accepted == len(sends)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--held", type=int, default=1_000_000)
    parser.add_argument("--recipients", type=int, default=200_000)
    args = parser.parse_args()
    key = new_api_key()
    cat = Catalog.model_validate(
        catalog(key, business=BUSINESS, campaigns=((CAMPAIGN, (("v1", ("name",)),)),)))
    started = time.perf_counter()
    held = plan(args.held)  # the plan's heap, kept alive through both runs
    print(f"plan of {len(held):,} entries held ({time.perf_counter() - started:.1f} s); "
          f"sending {args.recipients:,} of them twice, in-process simulator")
    ok = run("before", False, cat, key, held[:args.recipients])
    gc.collect()
    ok = run("after", True, cat, key, held[:args.recipients]) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
