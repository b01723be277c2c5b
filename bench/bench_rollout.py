"""Benchmark: what a rollout costs the plan. One sendout of ``--rows`` recipients (default
300,000) against a ledger holding wave 1 as accepted, planned (a) without a rollout and
(b) with three waves (1%, 10% after 2h, 100% after 1d with approval). Best of 3 runs,
alternating, in this process. Prints (b)/(a): the rollout's price is a sha256 per
recipient and holding the sendout's entries in memory once (to count the waves before
diffing).

    .venv/bin/python bench/bench_rollout.py [--rows 300000]
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime

from connectly_declare.entry import Entry, fingerprint
from connectly_declare.ledger.base import Header, Intent, IntentEntry, Outcome
from connectly_declare.ledger.fold import fold
from connectly_declare.plan.make import make_plan
from connectly_declare.plan.model import DesiredSendout, PlanOptions, SendoutSpec
from connectly_declare.plan.rollout import WaveSpec, bucket

NOW = datetime(2027, 12, 20, 12, 0, tzinfo=UTC)
WAVES = (WaveSpec(percent=1), WaveSpec(percent=10, after="2h"),
         WaveSpec(percent=100, after="1d", approve=True))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=300_000)
    rows = parser.parse_args().rows
    fp = fingerprint("v1", {"name": "Ana"}, None, 1)
    entries = [Entry("spring", "Spring", "v1", f"+1415{2_000_000 + i:07d}", {"name": "Ana"},
                     None, 1, False, fp) for i in range(rows)]
    first = [e for e in entries if bucket("spring", e.client) < 100]
    state = fold([Header(lineage="L", created_at=NOW.isoformat()),
                  Intent("b1", "2027-12-20T09:00:00+00:00", "spring", "Spring", "v1", "", {},
                         tuple(IntentEntry(e.client, e.fingerprint) for e in first)),
                  Outcome("b1", "2027-12-20T09:00:00+00:00", "accepted")])

    def run(waves: tuple[WaveSpec, ...]) -> float:
        spec = SendoutSpec("spring", "Spring", "v1", rollout=waves)
        start = time.perf_counter()
        plan = make_plan([DesiredSendout(spec, iter(entries))], state, PlanOptions(), now=NOW)
        took = time.perf_counter() - start
        assert plan.sends == (len(entries) - len(first) if not waves else
                              sum(1 for e in entries if 100 <= bucket("spring", e.client)
                                  < 1000))
        return took

    plain, staged = [], []
    for _ in range(3):
        plain.append(run(()))
        staged.append(run(WAVES))
    a, b = min(plain), min(staged)
    print(f"{rows:,} recipients: (a) no rollout {a:.2f} s, (b) three waves {b:.2f} s, "
          f"(b)/(a) = {b / a:.2f}")


if __name__ == "__main__":
    main()
