"""Benchmark: the timing policy (recipient-local schedule + quiet hours + a 7-day frequency
cap) on 1,000,000 recipients across 30 countries against a 1,000,000-entry ledger history,
relative to the same plan without the policy, in the same run.

    .venv/bin/python bench/bench_policy.py [--rows 1000000] [--history 1000000] [--repeat 2]

Setup (in a child process): a CSV of ``--rows`` valid numbers of 30 countries (multi-zone
US, CA, BR, MX, RU, AU, ID, KZ among them; numbers varied from each country's example
numbers, every one checked valid), and a local ledger of ``--history`` accepted deliveries
of five earlier campaigns to those people over the last ten days (about 30% of them got
two, so the cap holds some back). Then, alternating, each in its own child process (so
peak RSS is its own):

  (a) the baseline: fold the ledger and plan the sendout with an instant schedule, no
      quiet hours, no cap;
  (b) the policy: the same, with `schedule: {local: ..., fallback: UTC}`, quiet hours
      21:00-08:00 and `frequency_cap: [{max: 2, per: 7d}]`.

It prints (b)/(a) of the best CPU time of each (the machine is shared: the best run is
the least disturbed), both peak RSS, the load average, and what the policy did. Target:
(b)/(a) <= 1.5.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

NOW = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
REGIONS = ["US", "CA", "BR", "MX", "RU", "AU", "ID", "KZ", "DE", "FR", "GB", "ES", "IT", "PT",
           "IN", "JP", "NG", "ZA", "AR", "CO", "EG", "TR", "PH", "KE", "SA", "AE", "PL", "NL",
           "CL", "VN"]
US_AREAS = ["212", "213", "305", "312", "415", "503", "602", "702", "808", "907", "617",
            "713", "303", "206", "404"]
PAST_CAMPAIGNS = ["winter-news", "feb-promo", "loyalty", "survey", "restock"]


def _seeds(region: str) -> list[str]:
    import phonenumbers
    from phonenumbers import PhoneNumberFormat, PhoneNumberType

    found = []
    for kind in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE):
        number = phonenumbers.example_number_for_type(region, kind)
        if number is not None:
            found.append(str(phonenumbers.format_number(number, PhoneNumberFormat.E164)))
    if region == "US":
        found = [f"+1{area}5550100" for area in US_AREAS]
    return found


def generate(folder: Path, rows: int, history: int) -> dict[str, float]:
    from connectly_declare.audience.phones import fast_e164, normalize
    from connectly_declare.ledger.base import Header, Intent, IntentEntry, Outcome, Record
    from connectly_declare.ledger.local import LocalLedger

    rng = random.Random(14)
    seeds = {r: _seeds(r) for r in REGIONS}
    numbers: list[str] = []
    seen: set[str] = set()
    for region in REGIONS:
        quota = rows // len(REGIONS) + (1 if len(numbers) < rows % len(REGIONS) else 0)
        made = 0
        for _ in range(quota * 50):  # bounded: most variants of an example number are valid
            if made == quota:
                break
            seed = rng.choice(seeds[region])
            tail = "".join(rng.choice("0123456789") for _ in range(5))
            candidate = seed[:-5] + tail
            if candidate in seen:
                continue
            try:
                valid = fast_e164(candidate) or normalize(candidate)
            except ValueError:
                continue
            seen.add(valid)
            numbers.append(valid)
            made += 1
    rng.shuffle(numbers)
    with (folder / "audience.csv").open("w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["phone", "first_name"])
        for n, phone in enumerate(numbers):
            out.writerow([phone, f"P{n}"])
    at0 = NOW - timedelta(days=10)
    records: list[Record] = [Header(lineage="bench", created_at=at0.isoformat())]
    # 70% of the people share the history: 3 in 7 of them got two messages
    people = [numbers[i % max(len(numbers) * 7 // 10, 1)] for i in range(history)]
    for start in range(0, len(people), 100):
        campaign = PAST_CAMPAIGNS[(start // 100) % len(PAST_CAMPAIGNS)]
        at = (at0 + timedelta(seconds=rng.randrange(10 * 86400 - 3600))).isoformat()
        batch = f"{campaign}-{start}"
        chunk = people[start:start + 100]
        records.append(Intent(batch, at, campaign, campaign, None, "", {},
                              tuple(IntentEntry(c, "0" * 32) for c in chunk)))
        records.append(Outcome(batch, at, "accepted", len(chunk), 0, "sid"))
    ledger = LocalLedger(folder / "ledger.jsonl")
    with ledger.lock("bench"):
        ledger.append(records)
    return {"rows": len(numbers), "history": len(people),
            "size": (folder / "ledger.jsonl").stat().st_size}


def _workspace(policy: bool) -> tuple[Any, Any, Any]:
    from connectly_declare.workspace.config import WorkspaceConfig
    from connectly_declare.workspace.manifests import Audience, Sendout

    audience = Audience.model_validate({"kind": "Audience", "name": "everyone",
                                        "sources": [{"csv": "audience.csv"}]})
    schedule: Any = ({"local": "2027-03-02T07:30", "fallback": "UTC"} if policy
                     else "2027-03-02T07:30:00+00:00")
    sendout = Sendout.model_validate({
        "kind": "Sendout", "name": "spring", "campaign": "spring sale",
        "audience": "everyone", "schedule": schedule,
        "variables": {"first_name": "{{ recipient.first_name }}"}})
    config = WorkspaceConfig.model_validate(
        {"quiet_hours": {"start": "21:00", "end": "08:00"},
         "frequency_cap": [{"max": 2, "per": "7d"}]} if policy else {})
    return audience, sendout, config


def child(kind: str, folder: Path) -> dict[str, float]:
    if kind == "build":
        return generate(folder, int(os.environ["BENCH_ROWS"]), int(os.environ["BENCH_HISTORY"]))
    from connectly_declare.entries.stream import iter_sendout_entries
    from connectly_declare.errors import Location
    from connectly_declare.ledger.local import LocalLedger
    from connectly_declare.plan.make import make_plan
    from connectly_declare.plan.model import DesiredSendout, PlanOptions, SendoutSpec
    from connectly_declare.policy.timing import sendout_timing

    policy = kind == "policy"
    audience, sendout, config = _workspace(policy)
    start, wall = time.process_time(), time.perf_counter()
    state = LocalLedger(folder / "ledger.jsonl").read()
    stream = iter_sendout_entries(folder, config, {"everyone": audience}, sendout,
                                  lambda *_: Location("bench.yaml", 1, 1), environ={}, now=NOW)
    timed = sendout_timing(sendout, config.quiet_hours, "shift", NOW) is not None
    options = PlanOptions(frequency_caps=tuple(c.as_tuple() for c in config.frequency_cap))
    plan = make_plan([DesiredSendout(SendoutSpec.of(sendout, timed=timed), stream)], state,
                     options, now=NOW)
    result: dict[str, float] = {"seconds": time.process_time() - start,
                                "wall": time.perf_counter() - wall,
                                "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                                "send": plan.total("send"), "capped": plan.total("capped")}
    timing = plan.sendouts[0].timing
    if timing:
        result.update(shifted=timing["shifted"], zones=timing["zone_count"],
                      **{f"zone_{k}": v for k, v in timing["zones"].items()})
    return result


def run_child(kind: str, folder: Path, **env: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--child", kind, "--folder", str(folder)],
                         check=True, capture_output=True, text=True,
                         env={**os.environ, **{k: str(v) for k, v in env.items()}}).stdout
    data: dict[str, float] = json.loads(out)
    return data


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--history", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--child", choices=["build", "baseline", "policy"],
                        help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.folder)))
        return 0
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"({os.cpu_count()} cores, shared)")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        built = run_child("build", folder, BENCH_ROWS=args.rows, BENCH_HISTORY=args.history)
        print(f"setup: {built['rows']:,.0f} recipients in {len(REGIONS)} countries, ledger of "
              f"{built['history']:,.0f} accepted deliveries ({built['size'] / 2**20:.0f} MiB)")
        bases, policies = [], []
        for n in range(max(args.repeat, 1)):
            bases.append(run_child("baseline", folder))
            policies.append(run_child("policy", folder))
            print(f"run {n + 1}: (a) {bases[-1]['seconds']:.2f} s, (b) "
                  f"{policies[-1]['seconds']:.2f} s CPU", flush=True)
    base = min(bases, key=lambda r: r["seconds"])
    pol = dict(min(policies, key=lambda r: r["seconds"]))
    print(f"(a) without policy: {base['seconds']:.2f} s CPU ({base['wall']:.2f} s wall), "
          f"peak RSS {max(r['rss'] for r in bases) / 2**20:.0f} MiB; "
          f"{base['send']:,.0f} send")
    print(f"(b) with policy:    {pol['seconds']:.2f} s CPU ({pol['wall']:.2f} s wall), "
          f"peak RSS {max(r['rss'] for r in policies) / 2**20:.0f} MiB; "
          f"{pol['send']:,.0f} send, {pol['capped']:,.0f} capped, {pol['shifted']:,.0f} "
          f"shifted by quiet hours; {pol['zones']:,.0f} zones ({pol['zone_from_number']:,.0f} "
          f"from the number, {pol['zone_fallback']:,.0f} fallback)")
    ratio = pol["seconds"] / base["seconds"]
    print(f"(b)/(a) = {ratio:.2f}x (target <= 1.5x): {'ok' if ratio <= 1.5 else 'MISSED'}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0 if ratio <= 1.5 else 1


if __name__ == "__main__":
    sys.exit(main())
