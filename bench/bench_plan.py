"""Benchmark: planning ~1,000,000 recipients against a 1,000,000-key ledger.

    .venv/bin/python bench/bench_plan.py [--rows 1000000] [--ledger-keys 1000000]
                                         [--mode allow_multiple|allow_one] [--in-flight 16]

Uses the audience benchmark's generator (bench/bench_entries.py: a CSV of ``--rows`` rows,
5% repeated numbers, a 10,000-row opt-out list, 3 variables of which 2 use recipient
fields). Builds a local ledger holding an accepted key for every entry, half of them with
a changed fingerprint, padded with keys of a retired sendout up to ``--ledger-keys``,
its records in the order apply writes them with ``--in-flight`` requests at once
(bench/apply_order.py; ``1``: each outcome right after its intent).
Then, each in its own child process (so peak RSS is its own), it measures:

  (a) the floor: producing every entry alone (`iter_sendout_entries`, counted);
  (b) folding the ledger alone (`LocalLedger.read`);
  (c) the plan as `connectly-declare plan` makes it (no --out, --format json or
      --details: its entries to send are counted, not kept; plan/counted.py): fold +
      `make_plan(keep=False)` over the same entry stream;
  (k) the plan kept, as `plan --out` and `apply` make it: fold + `make_plan` with its
      entries to send in a spool, then one walk of them (also printed without the walk);
  (d) keeping alone: producing the entries a chunk at a time (as the plan reads them),
      holding those the plan keeps to send as plain objects, the collector paused (as
      the plan pauses it), then walking them once (as (k) walks its entries to send): no
      ledger, no key compared, no spool, memory unbounded.

It prints (c)/(a), (k)/(a), their peak RSS and (b) on its own. Targets: (c)/(a) <= 1.5
(both modes), RSS < 1.5 GiB. It also prints ((d) + (b)) / (a): what any plan of these
entries costs before it compares a single key, a lower bound of (k)/(a) for a plan that
folds the ledger and keeps its entries to send. A ledger this large folds into the compact
KeyIndex (ledger/keyindex.py) and the plan looks its keys up a chunk at a time.
The default mode is allow_multiple, the heavier case: the changed half are `resend` and
kept in the plan (under allow_one they would be `drift`, only counted).
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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from apply_order import IN_FLIGHT, in_flight_order
from bench_entries import SCHEDULE, VARIABLES, VARS, generate

NOW = datetime(2026, 11, 26, tzinfo=UTC)
CHANGED = "0" * 32


def sendout(mode: str) -> Any:
    from connectly_declare.workspace.manifests import Audience, Sendout

    audience = Audience.model_validate({
        "kind": "Audience", "name": "everyone",
        "sources": [{"csv": "audience.csv"}], "exclude": [{"csv": "optout.csv"}],
    })
    spec = Sendout.model_validate({
        "kind": "Sendout", "name": "spring", "campaign": "spring sale", "audience": "everyone",
        "schedule": SCHEDULE.isoformat(), "vars": VARS, "variables": VARIABLES,
        "options": {"if_duplicate_check_unspecified": mode},
    })
    return audience, spec


def entries(folder: Path, mode: str) -> Any:
    from connectly_declare.entries.stream import iter_sendout_entries
    from connectly_declare.errors import Location
    from connectly_declare.workspace.config import WorkspaceConfig

    audience, spec = sendout(mode)
    return spec, iter_sendout_entries(folder, WorkspaceConfig(), {"everyone": audience}, spec,
                                      lambda *_: Location("bench.yaml", 1, 1), environ={})


def build_ledger(folder: Path, mode: str, keys: int, in_flight: int = IN_FLIGHT) -> int:
    """A ledger with every entry accepted (odd ones with another fingerprint), padded."""
    from connectly_declare.ledger.base import Header, Intent, IntentEntry, Outcome, Record
    from connectly_declare.ledger.local import LocalLedger

    ledger = LocalLedger(folder / "ledger.jsonl")
    _, stream = entries(folder, mode)
    at = "2026-11-01T00:00:00+00:00"
    pairs: list[tuple[str, str]] = [
        (e.client, CHANGED if n % 2 else e.fingerprint) for n, e in enumerate(stream)]
    scope = "spring" if mode == "allow_multiple" else ""
    batches: list[tuple[Record, Record]] = []

    def add(sendout: str, campaign: str, items: list[tuple[str, str]], scope: str) -> None:
        for start in range(0, len(items), 100):
            batch = f"{sendout}-{start}"
            batches.append((
                Intent(batch, at, sendout, campaign, None, scope, {},
                       tuple(IntentEntry(c, f) for c, f in items[start:start + 100])),
                Outcome(batch, at, "accepted", 100, 0, "sid-1")))

    add("spring", "spring sale", pairs, scope)
    padding = [(f"+1999{n:07d}", CHANGED) for n in range(max(keys - len(pairs), 0))]
    add("retired", "winter sale", padding, "")
    with ledger.lock("bench"):
        ledger.append([Header(lineage="bench", created_at=at),
                       *in_flight_order(batches, in_flight)])
    return len(pairs) + len(padding)


def child(kind: str, folder: Path, mode: str) -> dict[str, float]:
    from connectly_declare.ledger.local import LocalLedger
    from connectly_declare.plan.make import make_plan
    from connectly_declare.plan.model import DesiredSendout, PlanOptions, SendoutSpec

    if kind == "build":  # in a child too, so no measured child inherits its peak RSS
        generate(folder, int(os.environ["BENCH_ROWS"]))
        started = time.perf_counter()
        keys = build_ledger(folder, mode, int(os.environ["BENCH_KEYS"]),
                            int(os.environ["BENCH_IN_FLIGHT"]))
        return {"keys": keys, "seconds": time.perf_counter() - started,
                "size": (folder / "ledger.jsonl").stat().st_size}
    start, wall = time.process_time(), time.perf_counter()
    result: dict[str, float] = {}
    if kind == "entries":
        result["entries"] = sum(1 for _ in entries(folder, mode)[1])
    elif kind == "keep":
        kept = keep_alone(folder, mode)  # alive until timed, as (c)'s plan is
        result["kept"] = sum(1 for _ in kept)
    elif kind == "fold":
        result["keys"] = len(LocalLedger(folder / "ledger.jsonl").read().keys)
    else:  # "plan" (shown only: counted) or "kept" (kept and walked)
        state = LocalLedger(folder / "ledger.jsonl").read()
        result["fold_seconds"] = time.process_time() - start
        spec, stream = entries(folder, mode)
        plan = make_plan([DesiredSendout(SendoutSpec.of(spec), stream)], state, PlanOptions(),
                         now=NOW, keep=kind == "kept")
        for action in ("send", "noop", "resend", "drift"):
            result[action] = plan.total(action)
        result["orphan"] = sum(o.count for o in plan.orphans)
        result["planned_seconds"] = time.process_time() - start
        result["kept"] = sum(1 for _ in plan.iter_sends()) if kind == "kept" else 0
    result["seconds"] = time.process_time() - start
    result["wall"] = time.perf_counter() - wall
    result["rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return result


def keep_alone(folder: Path, mode: str) -> list[Any]:
    """(d): the entries the plan keeps to send, held and walked, nothing compared. Which
    it keeps is known from how build_ledger made the ledger: under allow_multiple the
    entries it gave another fingerprint (resend); under allow_one none (drift is only
    counted)."""
    from itertools import islice

    from connectly_declare.gcpause import no_gc

    kept: list[Any] = []
    stream = iter(entries(folder, mode)[1])
    with no_gc():
        position = 0
        while chunk := list(islice(stream, 4_096)):  # plan.sendout_diff's chunk
            if mode == "allow_multiple":
                kept.extend(chunk[1 - position % 2::2])  # odd positions: CHANGED
            position += len(chunk)
    return kept


def run_child(kind: str, folder: Path, mode: str, **env: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--child", kind, "--folder", str(folder),
                          "--mode", mode], check=True, capture_output=True, text=True,
                         env={**os.environ, **{k: str(v) for k, v in env.items()}}).stdout
    data: dict[str, float] = json.loads(out)
    return data


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--ledger-keys", type=int, default=1_000_000)
    parser.add_argument("--mode", choices=["allow_multiple", "allow_one"],
                        default="allow_multiple")
    parser.add_argument("--in-flight", type=int, default=IN_FLIGHT,
                        help="requests in flight when the ledger was written (1: each outcome "
                        "right after its intent)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of (a) and (c), alternating; the best of each is compared "
                        "(this machine is shared: the best run is the least disturbed)")
    parser.add_argument("--child", choices=["build", "entries", "fold", "plan", "kept", "keep"],
                        help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.folder, args.mode)))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        built = run_child("build", folder, args.mode, BENCH_ROWS=args.rows,
                          BENCH_KEYS=args.ledger_keys, BENCH_IN_FLIGHT=args.in_flight)
        print(f"setup: {args.rows:,} CSV rows, ledger of {built['keys']:,.0f} accepted keys "
              f"({built['size'] / 2**20:.0f} MiB, built in {built['seconds']:.1f} s, "
              f"{args.in_flight} in flight), "
              f"mode {args.mode}")
        fold = run_child("fold", folder, args.mode)
        floors, plans, kepts, keeps = [], [], [], []
        for n in range(max(args.repeat, 1)):
            floors.append(run_child("entries", folder, args.mode))
            plans.append(run_child("plan", folder, args.mode))
            kepts.append(run_child("kept", folder, args.mode))
            keeps.append(run_child("keep", folder, args.mode))
            print(f"run {n + 1}: (a) {floors[-1]['seconds']:.2f} s, (c) "
                  f"{plans[-1]['seconds']:.2f} s, (k) {kepts[-1]['seconds']:.2f} s, "
                  f"(d) {keeps[-1]['seconds']:.2f} s CPU", flush=True)
        floor = min(floors, key=lambda r: r["seconds"])
        keep = min(keeps, key=lambda r: r["seconds"])
        plan = dict(min(plans, key=lambda r: r["seconds"]))
        plan["rss"] = max(r["rss"] for r in plans)
        kept = dict(min(kepts, key=lambda r: r["seconds"]))
        kept["rss"] = max(r["rss"] for r in kepts)
    print(f"best of {max(args.repeat, 1)} runs each, CPU time of each phase's own process:")
    print(f"(a) entries alone: {floor['entries']:,.0f} entries in {floor['seconds']:.2f} s CPU "
          f"({floor['wall']:.2f} s wall), peak RSS {floor['rss'] / 2**20:.0f} MiB")
    print(f"(b) fold alone:    {fold['keys']:,.0f} keys in {fold['seconds']:.2f} s CPU "
          f"({fold['wall']:.2f} s wall), peak RSS {fold['rss'] / 2**20:.0f} MiB")
    print(f"(c) plan:          {plan['seconds']:.2f} s CPU ({plan['wall']:.2f} s wall; fold "
          f"{plan['fold_seconds']:.2f} s of it), peak RSS {plan['rss'] / 2**20:.0f} MiB; "
          + ", ".join(f"{a} {plan[a]:,.0f}" for a in ("send", "noop", "resend", "drift",
                                                        "orphan"))
          + "; entries to send counted, not kept (as `connectly-declare plan` shows a plan)")
    print(f"(k) plan kept:     {kept['seconds']:.2f} s CPU ({kept['wall']:.2f} s wall), peak "
          f"RSS {kept['rss'] / 2**20:.0f} MiB; {kept['kept']:,.0f} entries to send kept in "
          f"a spool and walked once (as `plan --out` and `apply`): "
          f"{kept['seconds'] / floor['seconds']:.2f}x (a)")
    planned = kept["planned_seconds"]
    print(f"    of (k), planning alone (before the walk of its entries to send): "
          f"{planned:.2f} s CPU = {planned / floor['seconds']:.2f}x")
    print(f"(d) keeping alone: {keep['kept']:,.0f} entries held and walked in "
          f"{keep['seconds']:.2f} s CPU, peak RSS {keep['rss'] / 2**20:.0f} MiB")
    ratio = plan["seconds"] / floor["seconds"]
    bound = (keep["seconds"] + fold["seconds"]) / floor["seconds"]
    print(f"((d) + (b)) / (a) = {bound:.2f}x: what folding the ledger and keeping the entries "
          "to send cost before any key is compared (a bound of (k), not of (c))")
    rss = max(plan["rss"], kept["rss"]) / 2**30
    print(f"(c)/(a) = {ratio:.2f}x (target <= 1.5x): {'ok' if ratio <= 1.5 else 'MISSED'}")
    print(f"peak RSS of (c) and (k) = {rss:.2f} GiB (target < 1.5 GiB): "
          f"{'ok' if rss < 1.5 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
