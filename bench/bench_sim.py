"""How fast is the simulator on loopback? It must never be the bottleneck when a client is
measured against the vendor's 200 requests/s limit, so the target is 3x that: 600 requests/s
of 100-entry batches, faults off.

Starts `python -m connectly_declare sim --rate-limit 0` in its own process (so the client
does not share its interpreter), drives it from this process with async httpx over several
keep-alive connections, every request a distinct 100-entry batch, and prints requests/s,
entries/s and the ratio to the 200 requests/s limit.

    .venv/bin/python bench/bench_sim.py [--seconds 8] [--connections 8] [--batch 100]

Exits 1 when below --target requests/s (default 600).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

LIMIT = 200.0
CATALOG = {
    "businesses": [{
        "id": "bench",
        "api_keys": ["bench-key"],
        "campaigns": [{"name": "bench campaign",
                       "versions": [{"label": "v1", "variables": ["name", "coupon"]}]}],
    }]
}


def bodies(count: int, batch: int) -> list[bytes]:
    """`count` request bodies, each `batch` distinct clients (all accepted)."""
    out = []
    for r in range(count):
        entries = [{"client": f"+1{(r * batch + i) % 10**10:010d}",
                    "campaignName": "bench campaign",
                    "variables": {"name": f"Person {i}", "coupon": "SPRING24"}}
                   for i in range(batch)]
        # allow_multiple: bodies are reused when the run outlasts them
        out.append(json.dumps({"entries": entries, "options": {
            "if_duplicate_check_unspecified": "allow_multiple"}}).encode())
    return out


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) of a process so far, where /proc tells it (Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(catalog: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "connectly_declare", "sim", "--port", "0", "--rate-limit", "0",
         "--catalog", str(catalog)],
        stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    first = proc.stdout.readline()
    if "listening on " not in first:
        proc.kill()
        raise SystemExit(f"the simulator did not start: {first!r}")
    return proc, first.rsplit(" ", 1)[1].strip()


async def drive(url: str, payloads: list[bytes], seconds: float,
                connections: int) -> tuple[int, int, int, float]:
    """(requests answered 200, entries accepted, other answers, elapsed seconds)."""
    ok = other = 0
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    headers = {"X-API-Key": "bench-key", "Content-Type": "application/json"}
    path = f"{url}/v1/businesses/bench/send/campaigns"
    async with httpx.AsyncClient(limits=limits, headers=headers, timeout=30) as client:
        await client.post(path, content=payloads[0])  # warm up
        warm_up = (await client.get(f"{url}/_sim/stats")).json()["entries"]["accepted"]
        deadline = time.perf_counter() + seconds
        counter = iter(range(10**9))

        async def worker() -> None:
            nonlocal ok, other
            while time.perf_counter() < deadline:
                body = payloads[next(counter) % len(payloads)]
                response = await client.post(path, content=body)
                if response.status_code == 200:
                    ok += 1
                else:
                    other += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - start
        # The simulator's own count (parsing every answer here would slow the client).
        stats = (await client.get(f"{url}/_sim/stats")).json()
        accepted = stats["entries"]["accepted"] - warm_up
    return ok, accepted, other, elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--target", type=float, default=3 * LIMIT)
    args = parser.parse_args()

    payloads = bodies(2000, args.batch)
    with tempfile.TemporaryDirectory() as tmp:
        catalog = Path(tmp) / "catalog.json"
        catalog.write_text(json.dumps(CATALOG))
        proc, url = start_server(catalog)
        try:
            cpu_before, own_before = cpu_seconds(proc.pid), cpu_seconds(os.getpid())
            ok, accepted, other, elapsed = asyncio.run(
                drive(url, payloads, args.seconds, args.connections))
            cpu_after, own_after = cpu_seconds(proc.pid), cpu_seconds(os.getpid())
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    rps = ok / elapsed
    print(f"simulator on loopback, {args.connections} connections, "
          f"{args.batch}-entry batches, {elapsed:.1f} s")
    print(f"  requests/s: {rps:,.0f}   entries/s: {accepted / elapsed:,.0f}   "
          f"non-200 answers: {other}")
    if None not in (cpu_before, cpu_after, own_before, own_after):
        # A simulator below ~100 % of a core while the client is near it: the client (this
        # process) is what limits the figure, not the simulator.
        def share(before: float | None, after: float | None) -> str:
            return f"{((after or 0) - (before or 0)) / elapsed:.0%}"

        print(f"  CPU, share of one core: simulator {share(cpu_before, cpu_after)}, "
              f"client {share(own_before, own_after)}")
        per_request = ((cpu_after or 0) - (cpu_before or 0)) / max(ok + other, 1)
        # What one core of simulator could answer: unlike requests/s above, this figure
        # holds when the client, or anything else on the machine, is the bottleneck.
        print(f"  simulator CPU per request: {per_request * 1000:.2f} ms, i.e. capacity "
              f"~{1 / max(per_request, 1e-9):,.0f} requests/s on one core")
    print(f"  ratio to the 200 requests/s limit: {rps / LIMIT:.2f}x "
          f"(target {args.target / LIMIT:.0f}x = {args.target:.0f} requests/s): "
          f"{'ok' if rps >= args.target else 'BELOW TARGET'}")
    return 0 if rps >= args.target and not other else 1


if __name__ == "__main__":
    sys.exit(main())
