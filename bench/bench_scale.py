"""Benchmark: plan, plan --out and apply --sim at 1M, 3M and 10M recipients, in one run.

    .venv/bin/python bench/bench_scale.py [--sizes 1000000,3000000,10000000]
        [--steps plan,plan-out,apply-off,apply-on] [--workdir DIR] [--repeat 1]
        [--timeout SECONDS] [--memory-limit GIB]

For each size it builds (once, cached under --workdir) a workspace: declare.yaml, a
Campaign with one version and two variables, an Audience over one CSV, a Sendout whose two
variables are templated from the CSV's columns, and the CSV itself: that many distinct
valid mobile numbers from nine countries in random order (E.164, with a first name and a
city), the ledger empty. Then, each step the real CLI in a fresh child process
(`python -m connectly_declare ...`), timed by wall clock:

  floor      a child reading the same CSV with csv.DictReader, touching every field: the
             floor of plan and plan --out, measured in the same round as they are;
  plan       `plan`;
  plan-out   `plan --out FILE` (the saved plan is deleted afterwards);
  apply-off  `apply --sim --auto-approve` with DECLARE_SIM_RATE_LIMIT=0: no rate limit and
             no pacing, the tool's own speed;
  apply-on   `apply --sim --auto-approve` at the API's 200 requests/s.

Both apply steps set DECLARE_SIM_PROCESS=always: the simulator is served from a child
process of the CLI (connectly_declare/sim/child.py, in a session of its own), as apply
chooses by itself from ~40,000 rows, so the smoke run measures the same arrangement as
the large sizes. The floor of apply is the API's: entries / (200 x batch_size) seconds.
The simulator's ledger is deleted before each apply, so every apply sends to everyone.

Whose memory. os.wait4's rusage of the CLI covers the whole process tree: on Linux its
ru_maxrss is the largest peak of the CLI and of every descendant it reaped, and its
ru_utime + ru_stime include theirs. So for apply it is max(apply, simulator), not apply's
own. While a step runs, the loop that waits for it (every 0.05 s) therefore also reads
VmHWM from /proc/PID/status for the CLI and for each of its direct children (found by the
ppid in /proc/*/stat; the simulator runs in a session of its own, so process groups would
miss it), keeping the last figure seen per process. VmHWM only grows, but it is a poll:
growth in a process's last 50 ms before it exits (or before it is reaped) can be missed.
The table shows, per step: the CLI's own peak ("CLI MiB"), its child's ("sim MiB": the
simulator of apply --sim, the largest if there were several; "-" where the CLI started
none, as plan does), the whole tree's from os.wait4 ("tree MiB") and the tree's CPU
seconds ("tree CPU s": for apply, the CLI's and the simulator's together).

It checks the issue's targets: 10M plan --out peak RSS <= 2 GiB (os.wait4: plan starts no
child, so the tree is the CLI, and nothing is missed at the end); 10M plan and plan --out
each <= 11x their 1M time; apply of 1M against the rate-limited simulator >= 95% of its
floor (ratio <= 1.053) with the CLI's own peak RSS <= 1 GiB (the tool's memory; the
simulator is a test double, its peak printed beside it; where /proc told nothing, the
os.wait4 figure, labelled so). A target whose sizes were not run is "not measured". A step
that runs past --timeout or --memory-limit (the CLI's own RSS) is killed and reported as
such; the run goes on. Exits 1 when a step failed or a measured target was missed.

`--sizes 20000` is a smoke run that finishes in well under a minute
(tests/commands/test_bench_scale.py runs it so this script cannot rot).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_entries import CITIES, FIRST

REPO = Path(__file__).resolve().parents[1]
COUNTRIES = ("US", "GB", "DE", "FR", "BR", "IN", "MX", "ID", "ZA")
GENERATOR = 1  # bump when the data changes: cached workspaces of another version are rebuilt
SUFFIX_DIGITS = 6  # each number: a checked prefix + this many random digits
PREFIX_SAMPLE = 2000  # random completions of a prefix phonenumbers must all accept
BATCH = 100
API_RATE = 200.0  # requests/s: the API's documented limit
STEPS = ("plan", "plan-out", "apply-off", "apply-on")
# Seconds per million entries on an otherwise idle 2-core machine (the table and
# this script's runs): the start-of-run estimate only, rescaled to the measured pace after
# each size. Steps also pay ~1.5 s of start-up each.
COST = {"generate": 10.0, "floor": 2.0, "plan": 6.0, "plan-out": 12.0, "apply-off": 40.0,
        "apply-on": 55.0}
GIB = 2**30
MIB = 2**20

# --- the data ----------------------------------------------------------------------------


def number_prefixes(region: str, count: int = 4) -> tuple[int, list[str]]:
    """Country code and up to `count` national-number prefixes of `region`'s example mobile
    number (its digits before the last SUFFIX_DIGITS + 1, then each next digit) for which
    phonenumbers accepts every one of PREFIX_SAMPLE random completions and both extremes."""
    import random

    import phonenumbers

    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    nsn = str(example.national_number)
    head = nsn[:-(SUFFIX_DIGITS + 1)]
    rng = random.Random(region)
    kept: list[str] = []
    for digit in (nsn[-(SUFFIX_DIGITS + 1)], *"0123456789"):
        prefix = head + digit
        if prefix in kept:
            continue
        tails = [0, 10**SUFFIX_DIGITS - 1,
                 *(rng.randrange(10**SUFFIX_DIGITS) for _ in range(PREFIX_SAMPLE))]
        if all(phonenumbers.is_valid_number(phonenumbers.PhoneNumber(
                country_code=example.country_code,
                national_number=int(f"{prefix}{tail:0{SUFFIX_DIGITS}d}"))) for tail in tails):
            kept.append(prefix)
            if len(kept) == count:
                break
    if not kept:
        raise SystemExit(f"no usable number prefix for {region}")
    return example.country_code, kept


def generate_csv(path: Path, rows: int, seed: int = 15) -> None:
    """`rows` distinct valid numbers, an even share from each of COUNTRIES, shuffled;
    columns phone, first_name, city. Held as numpy integers, written in chunks."""
    import numpy as np

    rng = np.random.default_rng(seed)
    codes, prefixes, suffixes = [], [], []
    for n, region in enumerate(COUNTRIES):
        share = rows // len(COUNTRIES) + (n < rows % len(COUNTRIES))
        code, kept = number_prefixes(region)
        if share > len(kept) * 10**SUFFIX_DIGITS:
            raise SystemExit(f"{rows:,} rows need more numbers than {region}'s prefixes hold")
        picks = rng.choice(len(kept) * 10**SUFFIX_DIGITS, size=share, replace=False)
        labels = np.array([f"+{code}{p}" for p in kept])
        codes.append(np.full(share, n, dtype=np.uint8))
        prefixes.append(labels[picks // 10**SUFFIX_DIGITS])
        suffixes.append(picks % 10**SUFFIX_DIGITS)
    order = rng.permutation(rows)
    heads = np.concatenate(prefixes)[order]
    tails = np.concatenate(suffixes)[order]
    names = rng.integers(len(FIRST), size=rows)
    cities = rng.integers(len(CITIES), size=rows)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as fh:
        fh.write("phone,first_name,city\n")
        for start in range(0, rows, 100_000):
            stop = min(start + 100_000, rows)
            fh.write("".join(
                f"{h}{t:0{SUFFIX_DIGITS}d},{FIRST[a]},{CITIES[c]}\n"
                for h, t, a, c in zip(heads[start:stop].tolist(), tails[start:stop].tolist(),
                                      names[start:stop].tolist(), cities[start:stop].tolist(),
                                      strict=True)))
    tmp.replace(path)


WORKSPACE = {
    "declare.yaml": """\
version: 1
business_id: bench-business
batch_size: {batch}
requests_per_second: {rate:g}
manifests: ["manifests/*.yaml"]
""",
    "manifests/campaign.yaml": """\
kind: Campaign
name: scale bench
versions:
  - version: v1
    variables: [first_name, city]
""",
    "manifests/audience.yaml": """\
kind: Audience
name: everyone
sources:
  - csv: data/audience.csv
""",
    "manifests/sendout.yaml": """\
kind: Sendout
name: scale
campaign: scale bench
version: v1
audience: everyone
variables:
  first_name: "{{{{ recipient.first_name }}}}"
  city: "See you in {{{{ recipient.city }}}}!"
""",
}


def workspace(workdir: Path, rows: int, timeout: float) -> tuple[Path, float | None]:
    """The workspace for `rows` recipients, built unless cached: (its folder, seconds spent
    generating, None when cached)."""
    folder = workdir / f"ws-{rows}"
    stamp = folder / "generated.json"
    want = {"generator": GENERATOR, "rows": rows, "countries": list(COUNTRIES)}
    for name, text in WORKSPACE.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text.format(batch=BATCH, rate=API_RATE), encoding="utf-8")
    if stamp.exists() and json.loads(stamp.read_text()) == want \
            and (folder / "data" / "audience.csv").exists():
        return folder, None
    (folder / "data").mkdir(exist_ok=True)
    started = time.perf_counter()
    # in a child, so this process stays small while the numbers are held
    subprocess.run([sys.executable, __file__, "--generate", str(folder / "data" / "audience.csv"),
                    str(rows)], check=True, timeout=timeout)
    stamp.write_text(json.dumps(want))
    return folder, time.perf_counter() - started


def read_floor(path: Path) -> int:
    """The plan's floor, in its own child: every row read with csv.DictReader, every field
    touched."""
    touched = 0
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            for value in row.values():
                touched += len(value)
    return touched


# --- running one step --------------------------------------------------------------------


@dataclass
class Run:
    seconds: float
    rss: int  # bytes: os.wait4's ru_maxrss, the whole tree (the CLI and all it reaped)
    status: str  # "ok", "exit N", "timeout", "over memory limit", "..."
    output: str = ""
    cpu: float = 0.0  # user + system seconds of the whole tree (apply: the simulator's too)
    own_rss: int = 0  # bytes: the CLI's own VmHWM, last polled (0: /proc told nothing)
    child_rss: int | None = None  # bytes: its direct children's largest VmHWM (None: none)


def peak_rss_now(pid: int) -> int:
    """VmHWM of a running process, in bytes (0 where /proc does not tell)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def children_of(pid: int) -> list[int]:
    """The direct children of `pid`: every process whose ppid in /proc/*/stat is `pid`
    (by parent, not by process group: the simulator child runs in a session of its own)."""
    found = []
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                stat = fh.read()
            # "pid (comm) state ppid ...": comm may hold spaces and parentheses
            if int(stat[stat.rindex(b")") + 2:].split()[1]) == pid:
                found.append(int(name))
        except (OSError, ValueError, IndexError):
            continue
    return found


@dataclass
class Peaks:
    """The last VmHWM seen of a process and of each of its direct children, per pid."""
    root: int
    seen: dict[int, int] = field(default_factory=dict)

    def poll(self) -> int:
        """Read them all now; the root's VmHWM (0 where /proc does not tell)."""
        for pid in (self.root, *children_of(self.root)):
            if hwm := peak_rss_now(pid):
                self.seen[pid] = max(self.seen.get(pid, 0), hwm)
        return self.seen.get(self.root, 0)

    @property
    def own(self) -> int:
        return self.seen.get(self.root, 0)

    @property
    def children(self) -> int | None:
        kids = [hwm for pid, hwm in self.seen.items() if pid != self.root]
        return max(kids) if kids else None


def run(cmd: list[str], *, env: dict[str, str], log: Path, timeout: float,
        memory_limit: int) -> Run:
    """`cmd` in a fresh child: wall seconds; the whole tree's peak RSS and CPU (os.wait4);
    the child's own and its children's peak RSS (VmHWM, polled every 0.05 s, so growth in
    a process's last 50 ms can be missed); killed past `timeout` seconds or `memory_limit`
    bytes of its own RSS."""
    with log.open("w", encoding="utf-8") as sink:
        started = time.perf_counter()
        child = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, env=env,
                                 start_new_session=True)
        peaks = Peaks(child.pid)
        killed = ""
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            elapsed = time.perf_counter() - started
            own = peaks.poll()
            if not killed and elapsed > timeout:
                killed = f"timeout (> {timeout:.0f} s)"
            elif not killed and own > memory_limit:
                killed = f"over memory limit (> {memory_limit / GIB:.1f} GiB)"
            if killed:
                os.killpg(child.pid, signal.SIGKILL)
                pid, status, usage = os.wait4(child.pid, 0)
                break
            time.sleep(0.05)
        seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    code = child.returncode
    output = log.read_text(encoding="utf-8", errors="replace")
    status_text = killed or ("ok" if code == 0 else f"exit {code}")
    return Run(seconds, usage.ru_maxrss * 1024, status_text, output,
               usage.ru_utime + usage.ru_stime, peaks.own, peaks.children)


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without the tool's own variables (a bench must not pick up an
    environment, endpoint, clock or rate from the shell), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DECLARE_")}
    env.pop("CONNECTLY_API_KEY", None)
    return {**env, "PYTHONPATH": str(REPO), **extra}


PLANNED = re.compile(r"Plan: ([\d,]+) to send")
ACCEPTED = re.compile(r"([\d,]+) accepted of ([\d,]+) planned")


def counted(result: Run, pattern: re.Pattern[str], rows: int, what: str) -> str:
    """A run's status, checked against the count its output gives: every recipient is
    planned (sent). Output that no longer says is noted, not failed."""
    if result.status != "ok":
        return result.status
    found = pattern.search(result.output)
    if not found:
        return f"ok (no count of {what} in its output)"
    count = int(found.group(1).replace(",", ""))
    return "ok" if count == rows else f"{what} {count:,} of {rows:,}"


def step(name: str, folder: Path, rows: int, *, timeout: float, memory_limit: int) -> Run:
    cli = [sys.executable, "-m", "connectly_declare", "-C", str(folder)]
    saved = folder / "bench.plan.gz"

    def go(cmd: list[str], **env: str) -> Run:
        return run(cmd, env=clean_env(**env), log=folder / f"{name}.log", timeout=timeout,
                   memory_limit=memory_limit)

    if name == "floor":
        return go([sys.executable, __file__, "--floor", str(folder / "data" / "audience.csv")])
    if name in ("plan", "plan-out"):
        result = go([*cli, "plan", *(["--out", str(saved)] if name == "plan-out" else [])])
        result.status = counted(result, PLANNED, rows, "planned")
        if name == "plan-out" and result.status.startswith("ok") and saved.exists():
            result.status += f", {saved.stat().st_size / MIB:,.0f} MiB plan file"
        saved.unlink(missing_ok=True)
        return result
    ledger = folder / ".declare" / "sim-ledger.jsonl"
    ledger.unlink(missing_ok=True)  # empty ledger: everyone is sent to
    rate = {"DECLARE_SIM_RATE_LIMIT": "0"} if name == "apply-off" else {}
    # the simulator in its own process at every size, as the CLI chooses from ~40,000 rows
    result = go([*cli, "apply", "--sim", "--auto-approve"], DECLARE_SIM_PROCESS="always",
                **rate)
    ledger.unlink(missing_ok=True)
    result.status = counted(result, ACCEPTED, rows, "accepted")
    return result


# --- the run -----------------------------------------------------------------------------


@dataclass
class Row:
    size: int
    step: str
    runs: list[Run] = field(default_factory=list)
    floors: list[float] = field(default_factory=list)  # paired floor seconds, per run

    @property
    def ok(self) -> bool:
        return bool(self.runs) and all(r.status.startswith("ok") for r in self.runs)

    @property
    def seconds(self) -> float:
        return statistics.median(r.seconds for r in self.runs)

    @property
    def cpu(self) -> float:
        return statistics.median(r.cpu for r in self.runs)

    @property
    def floor(self) -> float:
        return statistics.median(self.floors) if self.floors else float("nan")

    @property
    def ratio(self) -> float:
        return statistics.median(r.seconds / f for r, f in zip(self.runs, self.floors,
                                                                  strict=False))

    @property
    def rss(self) -> int:
        return max(r.rss for r in self.runs)

    @property
    def own_rss(self) -> int:
        return max(r.own_rss for r in self.runs)

    @property
    def child_rss(self) -> int | None:
        kids = [r.child_rss for r in self.runs if r.child_rss is not None]
        return max(kids) if kids else None

    @property
    def status(self) -> str:
        bad = [r.status for r in self.runs if not r.status.startswith("ok")]
        return bad[0] if bad else self.runs[-1].status


def estimate(sizes: list[int], steps: list[str], repeat: int, cached: set[int]) -> float:
    seconds = 0.0
    for size in sizes:
        millions = size / 1e6
        if size not in cached:
            seconds += COST["generate"] * millions + 2
        per_round = [*steps] + (["floor"] if {"plan", "plan-out"} & set(steps) else [])
        seconds += repeat * sum(COST[s] * millions + 1.5 for s in per_round)
    return seconds


def apply_floor(rows: int) -> float:
    return rows / (API_RATE * BATCH)


def mib(value: int | None) -> str:
    """Bytes as MiB for the table; "-" for no such process (or /proc told nothing)."""
    return "-" if not value else f"{value / MIB:,.0f}"


LEGEND = (
    "peak RSS: CLI MiB = the CLI process's own (VmHWM, polled every 0.05 s);",
    "  sim MiB = its child process's, the simulator of apply --sim (-: none);",
    "  tree MiB = os.wait4's ru_maxrss, the largest of the CLI and every process it reaped;",
    "tree CPU s = user + system of the CLI and every process it reaped (apply: the "
    "simulator's included)",
)


def table(rows: list[Row]) -> list[str]:
    lines = [f"{'size':>10}  {'step':<9}  {'seconds':>8}  {'floor s':>8}  {'ratio':>6}  "
             f"{'CLI MiB':>8}  {'sim MiB':>8}  {'tree MiB':>8}  {'tree CPU s':>10}  status"]
    for row in rows:
        if not row.runs:
            continue
        lines.append(f"{row.size:>10,}  {row.step:<9}  {row.seconds:>8.1f}  {row.floor:>8.1f}  "
                     f"{row.ratio:>6.2f}  {mib(row.own_rss):>8}  {mib(row.child_rss):>8}  "
                     f"{row.rss / MIB:>8,.0f}  {row.cpu:>10.1f}  {row.status}")
    return lines


def apply_peak(row: Row) -> tuple[int, str]:
    """The apply target's peak RSS: the CLI's own (the simulator is a test double), shown
    with the simulator's beside it; os.wait4's whole tree, labelled so, where /proc told
    nothing."""
    if not row.own_rss:
        return row.rss, (f"{row.rss / GIB:.2f} GiB (os.wait4's, the CLI and the simulator "
                         "together: /proc told nothing)")
    sim = row.child_rss
    beside = f"simulator child {sim / GIB:.2f} GiB" if sim else "no simulator child seen"
    return row.own_rss, f"{row.own_rss / GIB:.2f} GiB (the CLI's own; {beside})"


def targets(rows: list[Row]) -> tuple[list[str], bool]:
    """The issue's targets: (lines, all measured ones met)."""
    by = {(r.size, r.step): r for r in rows if r.runs}
    lines, ok = [], True

    def check(text: str, row: Row | None, test: Any, *parts: Row | None) -> None:
        nonlocal ok
        if row is None or any(p is None for p in parts):
            lines.append(f"  {text}: not measured")
            return
        if not row.ok or not all(p is not None and p.ok for p in parts):
            lines.append(f"  {text}: MISSED (a step failed)")
            ok = False
            return
        met, shown = test(row)
        ok = ok and met
        lines.append(f"  {text}: {shown} {'ok' if met else 'MISSED'}")

    big, small = 10_000_000, 1_000_000
    check("10M plan --out peak RSS <= 2 GiB", by.get((big, "plan-out")),
          lambda r: (r.rss <= 2 * GIB, f"{r.rss / GIB:.2f} GiB"))
    for name, label in (("plan", "plan"), ("plan-out", "plan --out")):
        one = by.get((small, name))
        check(f"10M {label} <= 11x the 1M time", by.get((big, name)),
              lambda r, one=one: (r.seconds <= 11 * one.seconds,
                                  f"{r.seconds / one.seconds:.2f}x" + (
                                      f" (CPU seconds {r.cpu / one.cpu:.2f}x)" if one.cpu
                                      else "")), one)
    check("1M apply, rate limited, >= 95% of the API floor (ratio <= 1.053)",
          by.get((small, "apply-on")),
          lambda r: (r.ratio <= 1 / 0.95, f"{1 / r.ratio:.1%} of the floor"))
    check("1M apply, rate limited, peak RSS <= 1 GiB", by.get((small, "apply-on")),
          lambda r: (apply_peak(r)[0] <= GIB, apply_peak(r)[1]))
    return lines, ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000000,3000000,10000000",
                        help="recipients per run, comma-separated")
    parser.add_argument("--steps", default=",".join(STEPS),
                        help=f"comma-separated, of {', '.join(STEPS)} (plan steps bring "
                             "their csv.DictReader floor)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/declare-bench-scale"),
                        help="where the workspaces and generated CSVs are kept between runs")
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds per size (median seconds and ratio, largest RSS)")
    parser.add_argument("--timeout", type=float, default=0,
                        help="seconds per step before it is killed (0: 120 s + 150 s per "
                             "million recipients)")
    parser.add_argument("--memory-limit", type=float, default=0,
                        help="GiB of RSS per step before it is killed (0: 80%% of this "
                             "machine's memory)")
    parser.add_argument("--generate", nargs=2, metavar=("CSV", "ROWS"), help=argparse.SUPPRESS)
    parser.add_argument("--floor", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        generate_csv(Path(args.generate[0]), int(args.generate[1]))
        return 0
    if args.floor:
        print(read_floor(args.floor))
        return 0
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    steps = [s.strip() for s in args.steps.split(",") if s.strip()]
    if unknown := set(steps) - set(STEPS):
        parser.error(f"unknown steps: {', '.join(sorted(unknown))}")
    steps = [s for s in STEPS if s in steps]  # always in this order
    repeat = max(args.repeat, 1)
    memory = int(args.memory_limit * GIB) if args.memory_limit else \
        int(0.8 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    args.workdir.mkdir(parents=True, exist_ok=True)
    cached = {n for n in sizes if (args.workdir / f"ws-{n}" / "generated.json").exists()}
    guess = estimate(sizes, steps, repeat, cached)
    print(f"bench_scale: sizes {', '.join(f'{n:,}' for n in sizes)}; steps {', '.join(steps)}; "
          f"{repeat} round(s); workdir {args.workdir}")
    print(f"estimated duration: ~{guess / 60:.0f} min on a 2-core machine "
          f"(generating the CSVs of {len(set(sizes) - cached)} uncached size(s) included)",
          flush=True)
    rows: list[Row] = []
    begun = time.perf_counter()
    modelled = 0.0  # the estimate of the sizes done so far, to rescale the rest's
    for n, size in enumerate(sizes):
        timeout = args.timeout or 120 + 150 * size / 1e6
        folder, generated = workspace(args.workdir, size, timeout=max(timeout, 600.0))
        csv_size = (folder / "data" / "audience.csv").stat().st_size / MIB
        print(f"{size:,} recipients: {folder}, CSV {csv_size:,.0f} MiB"
              + (f" (generated in {generated:.0f} s)" if generated is not None else " (cached)"),
              flush=True)
        mine = {name: Row(size, name) for name in ("floor", *steps)}
        for _ in range(repeat):
            floor_run = None
            if {"plan", "plan-out"} & set(steps):
                floor_run = step("floor", folder, size, timeout=timeout, memory_limit=memory)
                mine["floor"].runs.append(floor_run)
                mine["floor"].floors.append(floor_run.seconds)
            for name in steps:
                result = step(name, folder, size, timeout=timeout, memory_limit=memory)
                mine[name].runs.append(result)
                mine[name].floors.append(floor_run.seconds if name.startswith("plan")
                                         and floor_run else apply_floor(size))
                print(f"  {name:<9} {result.seconds:8.1f} s  CLI {mib(result.own_rss):>6} MiB  "
                      f"sim {mib(result.child_rss):>6} MiB  tree {result.rss / MIB:6,.0f} MiB  "
                      f"tree CPU {result.cpu:6.1f} s  {result.status}", flush=True)
                if not result.status.startswith("ok"):
                    tail = result.output.strip().splitlines()[-3:]
                    print("    " + "\n    ".join(tail), flush=True)
        rows.extend(mine[name] for name in ("floor", *steps))
        modelled += estimate([size], steps, repeat, cached)
        if n + 1 < len(sizes):
            left = estimate(sizes[n + 1:], steps, repeat, cached) \
                * (time.perf_counter() - begun) / modelled
            print(f"estimated time left, from this machine's pace so far: ~{left / 60:.0f} min",
                  flush=True)
    print()
    print(f"scale benchmark ({time.perf_counter() - begun:.0f} s in all); seconds are wall "
          f"clock, medians of {repeat} round(s); floor: csv.DictReader over the same CSV for "
          f"plan, entries / ({API_RATE:g} x {BATCH}) s for apply; ratio = seconds / floor")
    for line in LEGEND:
        print(line)
    for line in table(rows):
        print(line)
    lines, ok = targets(rows)
    print("targets:")
    for line in lines:
        print(line)
    failed = [f"{r.size:,} {r.step}" for r in rows if r.runs and not r.ok]
    if failed:
        print(f"failed steps: {', '.join(failed)}")
    return 0 if ok and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
