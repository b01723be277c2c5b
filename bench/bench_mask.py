"""Benchmark: what masking every phone number costs the outputs that list many entries.

    .venv/bin/python bench/bench_mask.py [--entries 50000]

`plan --format json` lists every entry to send and `render --limit 0` prints every entry;
both now search every variable, name and source for phone numbers in any spelling
(`report/mask.py`). In one run, over the same plan, it times:

  (a) the baseline: the JSON plan with `--show-recipients` (nothing searched, nothing
      masked);
  (b) the JSON plan masked, variables without numbers (names, amounts, dates) plus the
      recipient's own number copied by the template (the common case);
  (c) the same with a second, different number per row in another spelling
      (`(650) 555-0123` from a CSV column: each one judged by phonenumbers);
  (d) `render`'s per-entry sample, masked, for the rows of (c).

It prints each time per entry and the ratios (b)/(a), (c)/(a). Targets: (b)/(a) <= 2.5,
(c)/(a) <= 8. Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connectly_declare.commands.render import entry_sample
from connectly_declare.entry import Entry, fingerprint
from connectly_declare.ledger.base import LedgerState
from connectly_declare.plan.make import make_plan
from connectly_declare.plan.model import DesiredSendout, PlanOptions, SendoutSpec
from connectly_declare.report.format import FormatOptions, json_chunks

NOW = datetime(2026, 11, 30, tzinfo=UTC)


def _entries(count: int, *, other_number: bool) -> list[Entry]:
    out = []
    for i in range(count):
        client = f"+1650{2000000 + i:07d}"
        variables = {"name": f"Customer {i}", "amount": f"{i % 997}.50 USD",
                     "date": "2026-12-01", "me": client}
        if other_number:
            variables["other"] = f"call ({415 + i % 3}) {200 + i % 700:03d}-{i % 10000:04d}"
        out.append(Entry(sendout="spring", campaign="spring sale", version="v1",
                         client=client, variables=variables, scheduled_at=None, round=1,
                         allow_multiple=False,
                         fingerprint=fingerprint("v1", variables, None, 1),
                         source=f"data/audience.csv:{i + 2}"))
    return out


def _plan(entries: list[Entry]):  # type: ignore[no-untyped-def]
    spec = SendoutSpec(name="spring", campaign="spring sale", version="v1",
                       options={"if_duplicate_check_unspecified": "allow_one"})
    desired = DesiredSendout(spec, entries, {"recipients": len(entries)})
    return make_plan([desired], LedgerState(None, 0), PlanOptions(), now=NOW)


def _time_json(plan: object, show_recipients: bool) -> float:
    started = time.perf_counter()
    size = sum(len(c) for c in json_chunks(plan, FormatOptions(  # type: ignore[arg-type]
        show_recipients=show_recipients)))
    assert size > 0
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=50_000)
    args = parser.parse_args(argv)
    n = args.entries
    plain = _plan(_entries(n, other_number=False))
    other = _plan(_entries(n, other_number=True))
    baseline = _time_json(plain, show_recipients=True)
    common = _time_json(plain, show_recipients=False)
    numbers = _time_json(other, show_recipients=False)
    started = time.perf_counter()
    for e in _entries(n, other_number=True):
        entry_sample(e, show_recipients=False)
    render = time.perf_counter() - started
    per = 1e6 / n
    print(f"{n:,} entries")
    print(f"(a) JSON plan, --show-recipients       {baseline * per:7.1f} µs/entry")
    print(f"(b) JSON plan, masked, common case     {common * per:7.1f} µs/entry "
          f"ratio {common / baseline:.2f} (target <= 2.5)")
    print(f"(c) JSON plan, masked, another number  {numbers * per:7.1f} µs/entry "
          f"ratio {numbers / baseline:.2f} (target <= 8)")
    print(f"(d) render sample, masked, (c)'s rows  {render * per:7.1f} µs/entry")
    return 0 if common / baseline <= 2.5 and numbers / baseline <= 8 else 1


if __name__ == "__main__":
    raise SystemExit(main())
