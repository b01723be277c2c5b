"""Benchmark: peak memory of `plan`, `plan --out` and `apply PLANFILE --sim` of
1,000,000 recipients, with the entries to send held as Python objects (before) and in
the disk-backed spool (after, connectly_declare/plan/spool.py).

    .venv/bin/python bench/bench_planfile_memory.py [--rows 1000000] [--before GITREV]

Builds a workspace in a temporary folder from the audience benchmark's generator
(bench/bench_entries.py: ``--rows`` CSV rows, 5% repeated numbers, a 10,000-row opt-out
list, 3 variables) and runs the real CLI, each command in its own process under
``/usr/bin/time -f %M`` (peak RSS of that process):

  plan                        the baseline every ratio is against (entries as objects)
  plan                        with the spool
  plan --sim --out P          entries as objects, then with the spool (same bytes: checked)
  apply P --sim --auto-approve   the saved plan read as objects, then into spools; the
                              in-process simulator without its rate limit
                              (DECLARE_SIM_RATE_LIMIT=0), the simulator's ledger emptied
                              before each apply so the plan is fresh

"Entries as objects" is this code with the spool's threshold set past the plan's size
(DECLARE_TEST_SPOOL_MEMORY, for tests and benchmarks), which keeps every entry as the
PlannedEntry objects the plan held before the spool. ``--before GITREV`` adds the same
commands run by the code of GITREV (exported with `git archive`, run from PYTHONPATH).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_entries import SCHEDULE, VARIABLES, VARS, generate

REPO = Path(__file__).resolve().parent.parent
OBJECTS = {"DECLARE_TEST_SPOOL_MEMORY": str(10**12)}
SPOOL: dict[str, str] = {}


def workspace(root: Path, rows: int) -> None:
    generate(root, rows)
    (root / "declare.yaml").write_text(yaml.safe_dump({
        "version": 1, "business_id": "bench", "manifests": ["manifests.yaml"]}),
        encoding="utf-8")
    docs = [
        {"kind": "Campaign", "name": "spring sale",
         "versions": [{"version": "v1", "variables": sorted(VARIABLES)}]},
        {"kind": "Audience", "name": "everyone", "sources": [{"csv": "audience.csv"}],
         "exclude": [{"csv": "optout.csv"}]},
        {"kind": "Sendout", "name": "spring", "campaign": "spring sale", "version": "v1",
         "audience": "everyone", "schedule": SCHEDULE.isoformat(), "vars": VARS,
         "variables": VARIABLES, "max_recipients": 10 * rows},
    ]
    (root / "manifests.yaml").write_text(yaml.safe_dump_all(docs, allow_unicode=True),
                                         encoding="utf-8")


def measure(ws: Path, env: dict[str, str], *args: str,
            pythonpath: Path | None = None) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, peak RSS in bytes) of `connectly-declare -C ws ARGS` in
    its own process (CPU: user + system; on a shared machine the wall clock also counts
    the neighbours)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DECLARE_")}
    environ.update(env, CONNECTLY_API_KEY="bench-key", DECLARE_SIM_RATE_LIMIT="0")
    if pythonpath is not None:
        environ["PYTHONPATH"] = str(pythonpath)
    rss_file = ws / ".rss"
    start = time.perf_counter()
    result = subprocess.run(["/usr/bin/time", "-f", "%M %U %S", "-o", str(rss_file), sys.executable,
                             "-m", "connectly_declare", "-C", str(ws), *args],
                            capture_output=True, text=True, env=environ, cwd=ws, check=False)
    seconds = time.perf_counter() - start
    if result.returncode not in (0, 2):
        sys.exit(f"{' '.join(args)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    rss, user, system = rss_file.read_text().split()[-3:]
    return seconds, float(user) + float(system), int(rss) * 1024


def reset_sim_ledger(ws: Path) -> None:
    for name in ("sim-ledger.jsonl", "sim-ledger.jsonl.lock"):
        (ws / ".declare" / name).unlink(missing_ok=True)


def export(rev: str, into: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "connectly_declare"],
                             capture_output=True, check=True).stdout
    target = into / "before"
    target.mkdir()
    tar_path = into / "before.tar"
    tar_path.write_bytes(archive)
    with tarfile.open(tar_path) as tar:
        tar.extractall(target, filter="data")
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--before", metavar="GITREV",
                        help="also run the code of this revision (e.g. the commit before "
                        "the spool landed)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-planfile-"))
    try:
        ws = folder / "ws"
        ws.mkdir()
        workspace(ws, args.rows)
        old = export(args.before, folder) if args.before else None
        results: list[tuple[str, float, int]] = []

        def row(label: str, env: dict[str, str], *cli: str, path: Path | None = None) -> None:
            seconds, cpu, rss = measure(ws, env, *cli, pythonpath=path)
            results.append((label, cpu, rss))
            print(f"  {label:<52} {seconds:7.1f} s {cpu:7.1f} s {rss / 2**20:8.0f} MiB",
                  flush=True)

        print(f"{args.rows:,} rows; each line: wall time, CPU time (user+sys), peak RSS")
        row("plan (entries as objects) [baseline]", OBJECTS, "plan")
        row("plan (spool)", SPOOL, "plan")
        variants: list[tuple[str, dict[str, str], Path | None]] = [
            ("objects", OBJECTS, None), ("spool", SPOOL, None)]
        if old is not None:
            variants.insert(0, (f"code of {args.before[:10]}", {}, old))
        for name, env, path in variants:
            row(f"plan --sim --out ({name})", env, "plan", "--sim", "--out",
                str(folder / f"{name}.plan.gz"), path=path)
        files = {name: (folder / f"{name}.plan.gz").read_bytes() for name, _, _ in variants}
        same = files["objects"] == files["spool"]
        for name, env, path in variants:
            reset_sim_ledger(ws)
            row(f"apply PLAN --sim --auto-approve ({name})", env, "apply",
                str(folder / f"{name}.plan.gz"), "--sim", "--auto-approve", path=path)
        base_cpu, base = results[0][1], results[0][2]
        print("\npeak RSS and CPU time as ratios to the baseline (plan, entries as objects):")
        for label, cpu, rss in results:
            print(f"  {label:<52} RSS {rss / base:5.2f}x  CPU {cpu / base_cpu:5.2f}x")
        by_label = {label: (cpu, rss) for label, cpu, rss in results}
        for what in ("plan --sim --out", "apply PLAN --sim --auto-approve"):
            (cpu0, before), (cpu1, after) = (by_label[f"{what} (objects)"],
                                             by_label[f"{what} (spool)"])
            print(f"{what}: spool / objects: peak RSS {after / before:.2f}x "
                  f"({before / 2**20:.0f} -> {after / 2**20:.0f} MiB), CPU {cpu1 / cpu0:.2f}x")
        print(f"saved plans byte-identical (objects vs spool): {same}")
        print(f"saved plan size: {len(files['spool']) / 2**20:.0f} MiB (gzip)")
        return 0 if same else 1
    finally:
        if args.keep:
            print(f"kept: {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
