"""How close does apply get to the API's 200 requests/s limit, without a single 429?

Starts the simulator in its own process (`python -m connectly_declare sim`, rate limit 200
requests/s per key with its default burst of 200, 20 ms added latency), then in this
process runs the real apply engine (client, pacing, group-committed fsynced local ledger)
over 200,000 recipients in batches of 100 (2,000 requests), and in the same run a naive
baseline: one plain httpx request at a time, over a sample of batches.

Prints requests/s and its share of the 200 requests/s limit (target >= 95%), entries/s, the
simulator's 429 count (target 0: the client is alone), and the ratio to the baseline.

    .venv/bin/python bench/bench_apply.py [--recipients 200000] [--batch 100]
        [--latency-ms 20] [--baseline-requests 100]

Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from connectly_declare.apply.client import ClientSettings, ConnectlyClient, Secret  # noqa: E402
from connectly_declare.apply.engine import Engine, EngineSettings  # noqa: E402
from connectly_declare.entry import Entry, fingerprint  # noqa: E402
from connectly_declare.ledger.local import LocalLedger  # noqa: E402
from tests.support.e2e import catalog, new_api_key, sim_process  # noqa: E402

LIMIT = 200.0
BUSINESS = "bench-business"
CAMPAIGN = "bench campaign"


@dataclass(frozen=True)
class Sendout:
    name: str
    options: dict[str, str]
    allow_multiple: bool


@dataclass(frozen=True)
class Planned:
    action: str
    entry: Entry


def plan(recipients: int, offset: int = 0) -> list[tuple[Sendout, Planned]]:
    so = Sendout("bench", {"if_duplicate_check_unspecified": "allow_one"}, False)
    out = []
    for i in range(offset, offset + recipients):
        variables = {"name": f"Person {i}"}
        out.append((so, Planned("send", Entry("bench", CAMPAIGN, "v1", f"+1{i:010d}",
                                              variables, None, 1, False,
                                              fingerprint("v1", variables, None, 1)))))
    return out


async def apply_run(url: str, key: str, recipients: int, batch: int,
                    ledger_path: Path) -> tuple[float, int, int]:
    ledger = LocalLedger(ledger_path, business_id=BUSINESS)
    settings = ClientSettings(url, BUSINESS, Secret(key), requests_per_second=LIMIT,
                              concurrency=16, timeout_seconds=30)
    sends = plan(recipients)
    with ledger.lock("bench"):
        async with ConnectlyClient(settings) as client:
            engine = Engine(sends, ledger, client,
                            settings=EngineSettings(batch_size=batch, concurrency=16))
            started = time.perf_counter()
            cpu = time.process_time()
            result = await engine.run()
            elapsed = time.perf_counter() - started
            cpu = time.process_time() - cpu
    print(f"  (client process CPU during the run: {cpu:.1f} s of {elapsed:.1f} s wall)")
    return elapsed, result.requests, result.total("accepted")


async def baseline(url: str, key: str, requests: int, batch: int, offset: int) -> float:
    """One request at a time, no pool tuning, no pacing: the naive client."""
    endpoint = f"{url}/v1/businesses/{BUSINESS}/send/campaigns"
    people = plan(requests * batch, offset)
    started = time.perf_counter()
    async with httpx.AsyncClient(headers={"X-API-Key": key}) as client:
        for r in range(requests):
            chunk = people[r * batch:(r + 1) * batch]
            body = {"entries": [p.entry.to_api() for _, p in chunk],
                    "options": {"if_duplicate_check_unspecified": "allow_one"}}
            (await client.post(endpoint, content=json.dumps(body))).raise_for_status()
    return requests / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipients", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--baseline-requests", type=int, default=100)
    args = parser.parse_args()
    key = new_api_key()
    cat = catalog(key, business=BUSINESS, campaigns=((CAMPAIGN, (("v1", ("name",)),)),))
    with sim_process(cat, args=["--latency-ms", str(args.latency_ms), "--rate-limit",
                                str(LIMIT)], business=BUSINESS) as sim, \
            tempfile.TemporaryDirectory() as tmp:
        elapsed, requests, accepted = asyncio.run(
            apply_run(sim.url, key, args.recipients, args.batch, Path(tmp) / "ledger.jsonl"))
        stats = sim.stats()
        too_many = int(stats["tooManyRequests"])
        naive = asyncio.run(baseline(sim.url, key, args.baseline_requests, args.batch,
                                     offset=args.recipients))
    rps = (requests - too_many) / elapsed
    share = rps / LIMIT
    print(f"apply: {args.recipients} recipients in batches of {args.batch}, "
          f"{args.latency_ms:g} ms added latency")
    print(f"  {requests - too_many} requests in {elapsed:.2f} s = {rps:.1f} requests/s "
          f"= {share:.1%} of the {LIMIT:g}/s limit (target >= 95%)")
    print(f"  {accepted / elapsed:,.0f} entries/s; {accepted} accepted of {args.recipients}")
    print(f"  429 responses: {too_many} (target 0)")
    print(f"naive baseline (one request at a time, {args.baseline_requests} requests): "
          f"{naive:.1f} requests/s")
    print(f"ratio apply / baseline: {rps / naive:.1f}x")
    ok = share >= 0.95 and too_many == 0 and accepted == args.recipients
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
