"""Benchmark: folding a large local ledger (default 10,000,000 keys) into the compact index.

    .venv/bin/python bench/bench_fold.py [--keys 10000000] [--batch 100] [--resent 0.01]
                                         [--scope ""|spring] [--in-flight 16]
                                         [--old] [--keep FILE]

Writes the ledger file directly as the local backend's records (ledger/codec.py: a header,
then per batch of ``--batch`` keys an intent line and its `accepted` outcome line, in the
order apply writes them with ``--in-flight`` requests at once (bench/apply_order.py: each
outcome after the next batches' intents; ``1`` puts each outcome right after its intent); a
``--resent`` fraction of the keys is sent a second time in later batches, with another
fingerprint, so the fold's replay path is exercised too). Then, in a child process of its
own (so its peak RSS is the fold's), `LocalLedger.read` folds it; prints keys, CPU and wall
time, peak RSS, and the bytes per key of the index's arrays. ``--old`` also folds it with
the plain Folder into a dict of KeyState (the layout before the index; at 10M keys that
needs ~3+ GiB: use it at 1-3M to compare). Target: 10M keys within 1.2 GiB peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from apply_order import IN_FLIGHT, in_flight_order

AT = "2026-11-01T00:00:00+00:00"


def write_ledger(path: Path, keys: int, batch: int, resent: float, scope: str,
                 in_flight: int = IN_FLIGHT) -> int:
    """The ledger file, line by line; returns the number of entries written."""
    entries = 0
    step = int(1 / resent) if resent > 0 else 0
    with open(path, "w", encoding="utf-8") as out:
        out.write(json.dumps({"type": "header", "format_version": 1, "lineage": "bench",
                              "created_at": AT, "environment": None, "business_id": None},
                             separators=(",", ":")) + "\n")

        def emit(number: int, clients: list[int], fp: str, sendout: str) -> tuple[str, str]:
            nonlocal entries
            batch_id = f"{sendout}-{number}"
            intent = json.dumps({
                "type": "intent", "batch_id": batch_id, "at": AT, "sendout": sendout,
                "campaign": "spring sale", "version": "v1", "scope": scope,
                "options": {"if_duplicate_check_unspecified":
                            "allow_multiple" if scope else "allow_one"},
                "entries": [[f"+1{c:010d}", f"{c:016x}{fp}"] for c in clients]},
                separators=(",", ":")) + "\n"
            outcome = json.dumps({
                "type": "outcome", "batch_id": batch_id, "at": AT, "status": "accepted",
                "accepted_count": len(clients), "rejected_count": 0, "sendout_id": "sid-1",
                "http_status": None, "error": None}, separators=(",", ":")) + "\n"
            entries += len(clients)
            return intent, outcome

        def pairs() -> Iterator[tuple[str, str]]:
            for number, start in enumerate(range(0, keys, batch)):
                yield emit(number, list(range(start, min(start + batch, keys))), "0" * 16,
                           "spring")
            if step:
                again = list(range(0, keys, step))
                for number, start in enumerate(range(0, len(again), batch)):
                    yield emit(number, again[start:start + batch], "1" * 16, "spring-again")

        out.writelines(in_flight_order(pairs(), in_flight))
    return entries


def child(path: Path, old: bool) -> dict[str, float]:
    from connectly_declare.ledger import local

    if old:  # the layout before the index: every key a KeyState in a dict
        from connectly_declare.ledger.fold import Folder

        class Plain(Folder):
            def add_intent(self, intent: Any, pairs: Any, raw: bytes | None = None) -> None:
                super().add_intent(intent, pairs)

        local.BulkFolder = Plain  # type: ignore[misc,assignment]
    start, wall = time.process_time(), time.perf_counter()
    state = local.LocalLedger(path).read()
    result: dict[str, float] = {"keys": len(state.keys),
                                "seconds": time.process_time() - start,
                                "wall": time.perf_counter() - wall,
                                "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
    index = state.keys
    if hasattr(index, "codes"):
        arrays = index.codes.nbytes + index.flags.nbytes + index.fp.nbytes + index.group.nbytes
        result["bytes_per_key"] = arrays / max(len(index.codes), 1)
        result["groups"] = len(index.groups)
        result["extra"] = len(index.extra)
    return result


def run_child(path: Path, old: bool) -> dict[str, float]:
    command = [sys.executable, __file__, "--child", str(path)] + (["--old"] if old else [])
    data: dict[str, float] = json.loads(subprocess.run(command, check=True, capture_output=True,
                                                       text=True).stdout)
    return data


def report(name: str, result: dict[str, float]) -> None:
    extra = (f"; arrays {result['bytes_per_key']:.0f} bytes/key, {result['groups']:,.0f} "
             f"groups, {result['extra']:,.0f} keys kept whole" if "bytes_per_key" in result
             else "")
    print(f"{name}: {result['keys']:,.0f} keys in {result['seconds']:.1f} s CPU "
          f"({result['wall']:.1f} s wall), peak RSS {result['rss'] / 2**30:.2f} GiB{extra}",
          flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keys", type=int, default=10_000_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--resent", type=float, default=0.01)
    parser.add_argument("--scope", default="")
    parser.add_argument("--in-flight", type=int, default=IN_FLIGHT,
                        help="requests in flight when the ledger was written (1: each outcome "
                        "right after its intent)")
    parser.add_argument("--old", action="store_true", help="also fold with the plain Folder")
    parser.add_argument("--keep", type=Path, help="write (or reuse) the ledger file here")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.old)))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "ledger.jsonl"
        if not path.exists():
            started = time.perf_counter()
            entries = write_ledger(path, args.keys, args.batch, args.resent, args.scope,
                                   args.in_flight)
            print(f"setup: {args.keys:,} keys, {entries:,} entries in batches of {args.batch}, "
                  f"{args.in_flight} in flight "
                  f"({path.stat().st_size / 2**20:,.0f} MiB, written in "
                  f"{time.perf_counter() - started:.0f} s)", flush=True)
        new = run_child(path, False)
        report("compact index (BulkFolder)", new)
        if args.old:
            report("dict of KeyState (Folder)", run_child(path, True))
        rss = new["rss"] / 2**30
        print(f"peak RSS of the fold = {rss:.2f} GiB (target <= 1.2 GiB): "
              f"{'ok' if rss <= 1.2 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
