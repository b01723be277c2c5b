"""Benchmark: `validate` on a workspace of 2,000 manifest files (target: under 2 s).

Generates the workspace in a temporary folder (a mix of Campaign, Audience and Sendout
files of realistic size, several documents per file; one template per sendout file is
unique, the others recur as they do in real workspaces), then times:

- baseline: plain `yaml.load_all` with libyaml's CSafeLoader over the same files,
- `load_workspace` in-process (YAML with marks, models, templates, cross-file checks),
- the CLI end to end: `python -m connectly_declare validate` as a subprocess (start-up
  and imports included: what a user and CI wait for).

Prints each time, the per-file cost and the ratios to the baseline measured in this run.

    .venv/bin/python bench/bench_validate.py [--files 2000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from connectly_declare.templates.check import clear_cache
from connectly_declare.workspace.load import load_workspace

CAMPAIGN = """\
# yaml-language-server: $schema=../schema/manifests.schema.json
kind: Campaign
name: "campaña {n} de temporada"
description: Seasonal campaign number {n}
versions:
  - version: v1
    variables: [first_name, code]
  - version: v2
    variables: [first_name, code, store]
---
kind: Campaign
name: follow-up {n}
variables: [first_name]
versions:
  - version: "2026-11"
    variables: [first_name]
"""

AUDIENCE = """\
kind: Audience
name: customers-{n}
description: Customers of region {n}, minus opt-outs
sources:
  - csv: data/customers-{n}.csv
    region: US
  - inline:
      - "+1650555{n4}"
      - client: "+1415555{n4}"
        first_name: Ada
        tier: gold
exclude:
  - csv: data/opt-out.csv
where: recipient.tier != "banned"
---
kind: Audience
name: vip-{n}
sources:
  - audience: customers-{n}
where: recipient.tier == "gold"
"""

SENDOUT = """\
kind: Sendout
name: spring-{n}
description: Spring sale to region {c}
campaign: "campaña {c} de temporada"
version: v2
audience: customers-{a}
schedule: 2027-03-01T09:00:00+01:00
max_recipients: 5000
vars:
  store: Main Street {n}
  discount: 15
variables:
  first_name: "{{{{ recipient.first_name | default('there') }}}}"
  code: "SPRING{n}-{{{{ recipient.client[-4:] }}}}"
  store: "{{{{ vars.store }}}}"
---
kind: Sendout
name: vip-{n}
campaign: "campaña {c} de temporada"
version: v1
audience: vip-{a}
options:
  if_duplicate_check_unspecified: allow_multiple
round: 2
variables:
  first_name: "{{{{ recipient.first_name }}}}"
  code: |
    VIP-{{{{ recipient.client[-4:] }}}}
"""


def generate(root: Path, files: int) -> None:
    (root / "declare.yaml").write_text("version: 1\nbusiness_id: bench\n", encoding="utf-8")
    campaigns = max(files // 10, 1)
    audiences = max(files * 3 // 10, 1)
    for sub in ("campaigns", "audiences", "sendouts", "data"):
        (root / sub).mkdir()
    # The data files the audiences name, so the workspace also plans.
    (root / "data/opt-out.csv").write_text("phone\n+16505550199\n", encoding="utf-8")
    for n in range(campaigns):
        (root / f"campaigns/c{n:05d}.yaml").write_text(CAMPAIGN.format(n=n), encoding="utf-8")
    for n in range(audiences):
        (root / f"data/customers-{n}.csv").write_text(
            f"phone,first_name,tier\n+1650555{n % 10000:04d},Ada,gold\n", encoding="utf-8")
        (root / f"audiences/a{n:05d}.yaml").write_text(
            AUDIENCE.format(n=n, n4=f"{n % 10000:04d}"), encoding="utf-8")
    for n in range(files - campaigns - audiences):
        (root / f"sendouts/s{n:05d}.yaml").write_text(
            SENDOUT.format(n=n, c=n % campaigns, a=n % audiences), encoding="utf-8")


def best(repeat: int, run: object) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        generate(root, args.files)
        paths = sorted(p for p in root.rglob("*.yaml") if p.name != "declare.yaml")
        assert len(paths) == args.files

        def baseline() -> None:
            for path in paths:
                list(yaml.load_all(path.read_bytes(), Loader=yaml.CSafeLoader))

        def in_process() -> None:
            clear_cache()  # as cold as a fresh `validate` process
            ws = load_workspace(root)
            assert len(ws.files) == args.files

        cpu: list[float] = []

        def cli() -> None:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            result = subprocess.run([sys.executable, "-m", "connectly_declare", "-C", str(root),
                                     "validate"], capture_output=True, text=True, check=False)
            assert result.returncode == 0, result.stderr[-2000:]
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)

        base = best(args.repeat, baseline)
        loaded = best(args.repeat, in_process)
        whole = best(args.repeat, cli)
        documents = sum(len(ws) for ws in (load_workspace(root).campaigns,
                                           load_workspace(root).audiences,
                                           load_workspace(root).sendouts))
    per = 1000 / args.files
    print(f"validate: {args.files} manifest files, {documents} documents (best of {args.repeat})")
    print(f"  baseline yaml.load_all (CSafeLoader): {base:6.3f} s  {base * per:.3f} ms/file")
    print(f"  load_workspace (in-process):          {loaded:6.3f} s  {loaded * per:.3f} ms/file"
          f"  {loaded / base:4.1f}x baseline")
    print(f"  connectly-declare validate (CLI):     {whole:6.3f} s  {whole * per:.3f} ms/file"
          f"  {whole / base:4.1f}x baseline  target < 2 s: "
          f"{'met' if whole < 2 else 'MISSED'}")
    # CPU time is what the machine's other load cannot inflate much (wall time can).
    print(f"  CLI CPU time (user+sys, best):        {min(cpu):6.3f} s  "
          f"{os.getloadavg()[0]:.1f} load average while measuring")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
