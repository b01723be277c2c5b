"""How fast is the simulator on loopback? It must never be the bottleneck when a client is
measured against the vendor's 200 requests/s limit, so the target is 3x that: 600 requests/s
of 100-entry batches, faults off.

Starts `python -m connectly_declare sim --rate-limit 0` in its own process, drives it from
client processes with async httpx over several keep-alive connections each, every request
a 100-entry batch of distinct clients, and prints requests/s, entries/s (as the simulator
counted them), the CPU the simulator spent per request, and the ratio to the 200
requests/s limit.

    .venv/bin/python bench/bench_sim.py [--seconds 8] [--processes 2] [--connections 6]

On a machine other work keeps busy, requests/s measures the share of CPU the bench got;
"simulator CPU per request" (and the capacity derived from it) does not depend on that.

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
from concurrent.futures import ProcessPoolExecutor
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


def bodies(count: int, batch: int, offset: int = 0) -> list[bytes]:
    """`count` request bodies, each `batch` distinct clients (all accepted)."""
    out = []
    for r in range(offset, offset + count):
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
                connections: int) -> tuple[int, int, float]:
    """(requests answered 200, other answers, elapsed seconds) of one client process."""
    ok = other = 0
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    headers = {"X-API-Key": "bench-key", "Content-Type": "application/json"}
    path = f"{url}/v1/businesses/bench/send/campaigns"
    async with httpx.AsyncClient(limits=limits, headers=headers, timeout=30) as client:
        deadline = time.perf_counter() + seconds
        counter = iter(range(10**9))

        async def worker() -> None:
            nonlocal ok, other
            while time.perf_counter() < deadline:
                body = payloads[next(counter) % len(payloads)]
                # Answers are not parsed (that would slow the client); the simulator's
                # own counters give the entries accepted.
                response = await client.post(path, content=body)
                if response.status_code == 200:
                    ok += 1
                else:
                    other += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - start
    return ok, other, elapsed


def client_process(url: str, seconds: float, connections: int, batch: int,
                   number: int) -> tuple[int, int, float, float]:
    """One client process: (200s, other answers, elapsed, its CPU seconds)."""
    payloads = bodies(1000, batch, offset=number * 1000)
    cpu = time.process_time()
    ok, other, elapsed = asyncio.run(drive(url, payloads, seconds, connections))
    return ok, other, elapsed, time.process_time() - cpu


def accepted_so_far(url: str) -> int:
    count: int = httpx.get(f"{url}/_sim/stats").json()["entries"]["accepted"]
    return count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--processes", type=int, default=2,
                        help="client processes (the httpx client costs more CPU per "
                             "request than the simulator does)")
    parser.add_argument("--connections", type=int, default=6, help="per client process")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--target", type=float, default=3 * LIMIT)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        catalog = Path(tmp) / "catalog.json"
        catalog.write_text(json.dumps(CATALOG))
        proc, url = start_server(catalog)
        try:
            httpx.post(f"{url}/v1/businesses/bench/send/campaigns",  # warm up
                       content=bodies(1, args.batch)[0], headers={"X-API-Key": "bench-key"})
            accepted_before, cpu_before = accepted_so_far(url), cpu_seconds(proc.pid)
            with ProcessPoolExecutor(args.processes) as pool:
                runs = list(pool.map(client_process, *zip(*[
                    (url, args.seconds, args.connections, args.batch, n)
                    for n in range(args.processes)], strict=True)))
            cpu_after, accepted = cpu_seconds(proc.pid), accepted_so_far(url) - accepted_before
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    ok, other = sum(r[0] for r in runs), sum(r[1] for r in runs)
    elapsed, client_cpu = max(r[2] for r in runs), sum(r[3] for r in runs)
    rps = ok / elapsed
    print(f"simulator on loopback: {args.processes} client processes x {args.connections} "
          f"connections, {args.batch}-entry batches, {elapsed:.1f} s, faults off")
    print(f"  requests/s: {rps:,.0f}   entries/s: {accepted / elapsed:,.0f}   "
          f"non-200 answers: {other}")
    if cpu_before is not None and cpu_after is not None:
        server_cpu = cpu_after - cpu_before
        per_request = server_cpu / max(ok + other, 1)
        # CPU per request holds even when the clients, or anything else running on the
        # machine, are what limits requests/s.
        print(f"  CPU, share of one core: simulator {server_cpu / elapsed:.0%}, "
              f"clients {client_cpu / elapsed:.0%}")
        print(f"  simulator CPU per request: {per_request * 1000:.2f} ms, i.e. capacity "
              f"~{1 / max(per_request, 1e-9):,.0f} requests/s on one core")
    print(f"  ratio to the 200 requests/s limit: {rps / LIMIT:.2f}x "
          f"(target {args.target / LIMIT:.0f}x = {args.target:.0f} requests/s): "
          f"{'ok' if rps >= args.target else 'BELOW TARGET'}")
    return 0 if rps >= args.target and not other else 1


if __name__ == "__main__":
    sys.exit(main())
