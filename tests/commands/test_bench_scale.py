"""bench/bench_scale.py still runs: its smoke mode (--sizes 20000) end to end with the real
CLI, its data (valid, distinct numbers of nine countries), its step runner's limits and
its target checks. No timing is asserted."""

from __future__ import annotations

import csv
import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import phonenumbers
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_scale.py"


def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_scale", BENCH)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_scale"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_smoke_run_prints_every_step_and_the_targets(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, str(BENCH), "--sizes", "20000", "--workdir",
                          str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "estimated duration: ~" in out.stdout
    lines = out.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["size", "step"])
    assert lines[header].split() == ["size", "step", "seconds", "floor", "s", "ratio", "CLI",
                                     "MiB", "sim", "MiB", "tree", "MiB", "tree", "CPU", "s",
                                     "status"]
    assert "tree MiB = os.wait4's" in out.stdout and "(apply: the simulator's included)" \
        in out.stdout
    rows = [line.split() for line in lines[header + 1:header + 6]]
    assert [r[1] for r in rows] == ["floor", "plan", "plan-out", "apply-off", "apply-on"]
    number = re.compile(r"[\d,]+\.?\d*")
    for r in rows:
        assert r[0] == "20,000"
        assert all(number.fullmatch(v) for v in (*r[2:6], *r[7:9])), r
        assert r[9] == "ok" or r[9] == "ok,", r  # plan-out: "ok, N MiB plan file"
        cli, sim, tree = r[5], r[6], r[7]
        # the CLI's own (polled VmHWM) and the tree's (wait4) are different readings of
        # the same counters and may differ by a MiB: both are there, neither is compared
        assert int(cli) > 0 and int(tree) > 0, r
        if r[1].startswith("apply"):
            # the simulator's child process, seen apart from the CLI: a real figure
            assert number.fullmatch(sim) and int(sim) > 0, r
        else:
            assert sim == "-", r  # plan starts no child
    assert lines[header + 6] == "targets:"
    assert sum("not measured" in line for line in lines[header + 7:]) == 5

    # the data: 20,000 distinct numbers phonenumbers calls valid, from nine countries
    regions: dict[str, int] = {}
    phones = set()
    with (tmp_path / "ws-20000" / "data" / "audience.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            number = phonenumbers.parse(row["phone"])
            assert phonenumbers.is_valid_number(number), row["phone"]
            region = phonenumbers.region_code_for_number(number)
            regions[region] = regions.get(region, 0) + 1
            phones.add(row["phone"])
    assert len(phones) == 20_000
    assert len(regions) == 9 and min(regions.values()) >= 2000, regions

    # a second run uses the cached CSV
    again = subprocess.run([sys.executable, str(BENCH), "--sizes", "20000", "--steps", "plan",
                            "--workdir", str(tmp_path)], capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0 and "(cached)" in again.stdout, again.stdout + again.stderr


def test_a_step_past_its_timeout_or_memory_limit_is_killed_and_reported(tmp_path: Path) -> None:
    b = bench()
    env = b.clean_env()
    slow = b.run([sys.executable, "-c", "import time; time.sleep(60)"], env=env,
                 log=tmp_path / "slow.log", timeout=0.5, memory_limit=2**40)
    assert slow.status.startswith("timeout"), slow.status
    big = b.run([sys.executable, "-c", "import time; x = bytearray(400 * 2**20); "
                 "x[::4096] = b'1' * len(x[::4096]); time.sleep(60)"], env=env,
                log=tmp_path / "big.log", timeout=60, memory_limit=200 * 2**20)
    assert big.status.startswith("over memory limit"), big.status
    fine = b.run([sys.executable, "-c", "print('hi')"], env=env, log=tmp_path / "ok.log",
                 timeout=60, memory_limit=2**40)
    assert (fine.status, fine.output.strip()) == ("ok", "hi")
    assert fine.rss > 0
    failed = b.run([sys.executable, "-c", "raise SystemExit(3)"], env=env,
                   log=tmp_path / "f.log", timeout=60, memory_limit=2**40)
    assert failed.status == "exit 3"


def test_a_child_in_its_own_session_is_measured_apart_from_the_cli(tmp_path: Path) -> None:
    """As apply and its simulator: a small parent whose child, started in a session of its
    own, touches 300 MiB. os.wait4 gives the tree's peak (the child's); the poll tells them
    apart."""
    b = bench()
    child = ("import time; x = bytearray(300 * 2**20); x[::4096] = b'1' * len(x[::4096]); "
             "time.sleep(1.0)")
    parent = (f"import subprocess, sys; subprocess.run([sys.executable, '-c', {child!r}], "
              "start_new_session=True, check=True)")
    result = b.run([sys.executable, "-c", parent], env=b.clean_env(), log=tmp_path / "t.log",
                   timeout=60, memory_limit=2**40)
    assert result.status == "ok", result.output
    assert result.child_rss is not None and result.child_rss >= 300 * 2**20
    assert 0 < result.own_rss < 100 * 2**20  # the parent's own, not the child's
    assert result.rss >= 300 * 2**20  # wait4: the largest of the tree
    alone = b.run([sys.executable, "-c", "print('hi')"], env=b.clean_env(),
                  log=tmp_path / "a.log", timeout=60, memory_limit=2**40)
    assert alone.child_rss is None


def test_targets_are_checked_where_their_sizes_ran() -> None:
    b = bench()

    def row(size: int, step: str, seconds: float, rss_gib: float, floor: float) -> object:
        r = b.Row(size, step)
        r.runs.append(b.Run(seconds, int(rss_gib * 2**30), "ok"))
        r.floors.append(floor)
        return r

    rows = [row(1_000_000, "plan", 5.0, 0.3, 1.0), row(1_000_000, "plan-out", 10.0, 0.4, 1.0),
            row(1_000_000, "apply-on", 52.0, 0.9, 50.0),
            row(10_000_000, "plan", 54.0, 0.5, 10.0),
            row(10_000_000, "plan-out", 120.0, 2.5, 10.0)]
    lines, ok = b.targets(rows)
    text = "\n".join(lines)
    assert not ok
    assert "10M plan --out peak RSS <= 2 GiB: 2.50 GiB MISSED" in text
    assert "10M plan <= 11x the 1M time: 10.80x ok" in text
    assert "10M plan --out <= 11x the 1M time: 12.00x MISSED" in text
    assert "96.2% of the floor ok" in text
    # no figure from /proc: os.wait4's, labelled as the CLI and the simulator together
    assert "peak RSS <= 1 GiB: 0.90 GiB (os.wait4's, the CLI and the simulator together: " \
        "/proc told nothing) ok" in text
    rows[0].runs[0].cpu, rows[3].runs[0].cpu = 2.0, 21.0  # wall is the target, CPU shown
    assert "10M plan <= 11x the 1M time: 10.80x (CPU seconds 10.50x) ok" \
        in "\n".join(b.targets(rows)[0])
    # with /proc's figures the CLI's own is checked, the simulator's shown beside it
    apply_run = rows[2].runs[0]
    apply_run.rss, apply_run.own_rss, apply_run.child_rss = int(1.2 * 2**30), 2**28, 2**27
    text = "\n".join(b.targets(rows)[0])
    assert "peak RSS <= 1 GiB: 0.25 GiB (the CLI's own; simulator child 0.12 GiB) ok" in text
    apply_run.own_rss = int(1.1 * 2**30)
    assert "peak RSS <= 1 GiB: 1.10 GiB (the CLI's own; simulator child 0.12 GiB) MISSED" \
        in "\n".join(b.targets(rows)[0])
    lines, ok = b.targets(rows[:1])
    assert ok and sum("not measured" in line for line in lines) == 5


def test_a_run_is_failed_when_its_output_counts_other_than_every_recipient() -> None:
    b = bench()
    plan = "Plan: 20,000 to send (20,000 send, 0 resend, 0 retry); 0 noop"
    assert b.counted(b.Run(1.0, 1, "ok", plan), b.PLANNED, 20_000, "planned") == "ok"
    assert b.counted(b.Run(1.0, 1, "ok", plan), b.PLANNED, 30_000, "planned") \
        == "planned 20,000 of 30,000"
    applied = "Apply complete: 19,900 accepted of 20,000 planned in 200 requests"
    assert b.counted(b.Run(1.0, 1, "ok", applied), b.ACCEPTED, 20_000, "accepted") \
        == "accepted 19,900 of 20,000"
    assert b.counted(b.Run(1.0, 1, "exit 1", plan), b.PLANNED, 20_000, "planned") == "exit 1"
