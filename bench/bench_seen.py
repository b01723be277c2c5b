"""Benchmark: `seen.SeenSet` against Python sets, alone and where the plan uses it.

    .venv/bin/python bench/bench_seen.py [--sizes 1000000,10000000] [--rows 1000000]
                                         [--repeat 3] [--skip-entries] [--skip-plan]

Every figure comes from its own child process (its peak RSS is its own), and every
comparison is against a baseline measured in the same run:

  (1) the structure: N E.164 strings (every 20th repeating an earlier one) made on the
      fly and fed to a Python set of the strings, a Python set of the ledger-key strings
      the plan used to hold for a sendout's duplicate check (`campaign␟client␟`), and
      a SeenSet, as the audience uses it (`first_occurrences`, order kept) and as the
      plan does (`add`, repeats counted). Memory held = RSS after - RSS before; time =
      CPU seconds less making the strings alone; best of --repeat runs, alternating.
  (2) producing the entries of a --rows CSV (bench/bench_entries.py's audience and
      sendout): the audience's `seen` as a plain set (SeenSet with its threshold out of
      reach) against the compact one; best of --repeat runs each, alternating.
  (3) `make_plan` of the same entries against an empty ledger (every recipient `send`,
      so the audience's `seen` and the sendout's sending keys both hold ~1M clients),
      plain against compact: peak RSS and CPU time.
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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_entries import generate, project

NOW = datetime(2026, 11, 26, tzinfo=UTC)
KINDS = ("none", "set", "set-keys", "seen-filter", "seen-add")
PLAIN = 10**18  # a threshold never reached: SeenSet stays a plain set of strings


def numbers(count: int) -> Iterator[str]:
    """`count` E.164 strings, every 20th a repeat of an earlier one (distinct otherwise:
    multiplying by a prime below the modulus is a bijection)."""
    for i in range(count):
        j = i // 2 if i % 20 == 19 else i
        yield f"+1{2_000_000_000 + (j * 2_654_435_761) % 7_999_999_999}"


def rss_now() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def structure(kind: str, count: int) -> dict[str, float]:
    import numpy  # noqa: F401  (imported before measuring, as a plan has it already)

    from connectly_declare.seen import SeenSet

    before, start = rss_now(), time.process_time()
    held: object = None
    repeats = 0
    if kind == "none":
        for _ in numbers(count):
            pass
    elif kind in ("set", "set-keys"):
        plain: set[str] = set()
        prefix, suffix = ("spring sale\x1f", "\x1f") if kind == "set-keys" else ("", "")
        for value in numbers(count):
            key = prefix + value + suffix
            if key in plain:
                repeats += 1
            else:
                plain.add(key)
        held = plain
    elif kind == "seen-filter":
        seen = SeenSet()
        dropped = [0]

        def repeated(_value: str) -> None:
            dropped[0] += 1

        for _ in seen.first_occurrences(numbers(count), str, repeated):
            pass
        repeats, held = dropped[0], seen
    else:
        seen = SeenSet()
        add = seen.add
        for value in numbers(count):
            add(value)
        repeats, held = seen.repeats, seen
    seconds = time.process_time() - start
    after = rss_now()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    del held
    return {"seconds": seconds, "held": after - before, "peak": peak - before,
            "repeats": repeats}


def plan_child(folder: Path) -> dict[str, float]:
    from bench_plan import entries

    from connectly_declare.ledger.base import LedgerState
    from connectly_declare.plan.make import make_plan
    from connectly_declare.plan.model import DesiredSendout, PlanOptions, SendoutSpec

    start, wall = time.process_time(), time.perf_counter()
    spec, stream = entries(folder, "allow_one")
    plan = make_plan([DesiredSendout(SendoutSpec.of(spec), stream)], LedgerState(None, 0),
                     PlanOptions(), now=NOW)
    return {"seconds": time.process_time() - start, "wall": time.perf_counter() - wall,
            "send": plan.total("send"),
            "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}


def child(args: argparse.Namespace) -> dict[str, Any]:
    from connectly_declare import seen

    if args.threshold is not None:
        seen.THRESHOLD = args.threshold
    if args.child == "structure":
        return structure(args.kind, args.count)
    if args.child == "entries":
        return project(args.folder)
    return plan_child(args.folder)


def run(*argv: str, threshold: int | None = None) -> dict[str, Any]:
    command = [sys.executable, __file__, *argv]
    if threshold is not None:
        command += ["--threshold", str(threshold)]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    result: dict[str, Any] = json.loads(out)
    return result


def mib(value: float) -> str:
    return f"{value / 2**20:7.0f} MiB"


def bench_structure(sizes: list[int], repeat: int) -> None:
    print(f"(1) the structure alone: memory held, peak over the start, CPU time less "
          f"making the strings (best of {repeat}, kinds alternating)")
    for count in sizes:
        tries: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
        for _ in range(repeat):
            for kind in KINDS:
                tries[kind].append(run("--child", "structure", "--kind", kind,
                                       "--count", str(count)))
        results = {kind: {k: min(r[k] for r in got) for k in got[0]}
                   for kind, got in tries.items()}
        base = results["none"]["seconds"]
        plain = results["set"]
        print(f"  {count:,} values ({count // 20:,} repeats); making the strings alone "
              f"{base:.2f} s")
        for kind in KINDS[1:]:
            r = results[kind]
            assert r["repeats"] == plain["repeats"], (kind, r["repeats"], plain["repeats"])
            print(f"    {kind:12} held {mib(r['held'])} ({r['held'] / plain['held']:5.2f}x set)"
                  f"  peak {mib(r['peak'])}  time {r['seconds'] - base:6.2f} s "
                  f"({(r['seconds'] - base) / (plain['seconds'] - base):5.2f}x set)")


def bench_entries(folder: Path, repeat: int) -> None:
    runs: dict[str, list[dict[str, Any]]] = {"plain": [], "compact": []}
    for _ in range(repeat):
        runs["plain"].append(run("--child", "entries", "--folder", str(folder),
                                 threshold=PLAIN))
        runs["compact"].append(run("--child", "entries", "--folder", str(folder)))
    best = {k: min(v, key=lambda r: r["seconds"]) for k, v in runs.items()}
    assert best["plain"]["entries"] == best["compact"]["entries"]
    assert best["plain"]["duplicates"] == best["compact"]["duplicates"]
    print(f"(2) producing {best['plain']['entries']:,} entries "
          f"({best['plain']['duplicates']:,} duplicates dropped), best of {repeat}, CPU:")
    for kind in ("plain", "compact"):
        r = best[kind]
        peak = max(x["rss"] for x in runs[kind])
        print(f"    {kind:8} {r['seconds']:6.2f} s  peak RSS {mib(peak)}")
    ratio = best["compact"]["seconds"] / best["plain"]["seconds"]
    print(f"    compact / plain time = {ratio:.3f}")


def bench_plan(folder: Path, repeat: int) -> None:
    runs: dict[str, list[dict[str, Any]]] = {"plain": [], "compact": []}
    for _ in range(repeat):
        runs["plain"].append(run("--child", "plan", "--folder", str(folder), threshold=PLAIN))
        runs["compact"].append(run("--child", "plan", "--folder", str(folder)))
    assert runs["plain"][0]["send"] == runs["compact"][0]["send"]
    print(f"(3) make_plan, empty ledger, {runs['plain'][0]['send']:,} to send; "
          f"best of {repeat}:")
    peaks, seconds = {}, {}
    for kind in ("plain", "compact"):
        seconds[kind] = min(r["seconds"] for r in runs[kind])
        peaks[kind] = min(r["rss"] for r in runs[kind])
        print(f"    {kind:8} {seconds[kind]:6.2f} s CPU  peak RSS {mib(peaks[kind])}")
    print(f"    compact / plain time = {seconds['compact'] / seconds['plain']:.3f}")
    print(f"    compact / plain peak RSS = {peaks['compact'] / peaks['plain']:.3f} "
          f"({(peaks['plain'] - peaks['compact']) / 2**20:.0f} MiB less)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-entries", action="store_true")
    parser.add_argument("--skip-plan", action="store_true")
    parser.add_argument("--child", choices=["structure", "entries", "plan"],
                        help=argparse.SUPPRESS)
    parser.add_argument("--kind", choices=KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--threshold", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return 0
    sizes = [int(s) for s in args.sizes.split(",") if s]
    if sizes:
        bench_structure(sizes, max(args.repeat, 1))
    if args.skip_entries and args.skip_plan:
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        generate(folder, args.rows)
        if not args.skip_entries:
            bench_entries(folder, max(args.repeat, 1))
        if not args.skip_plan:
            bench_plan(folder, max(args.repeat, 1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
