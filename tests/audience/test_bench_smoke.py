"""The benchmark script still runs end to end (on a tiny file; no timing is asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_entries.py"


@pytest.mark.slow
def test_bench_entries_runs_and_prints_its_ratios() -> None:
    out = subprocess.run([sys.executable, str(BENCH), "--rows", "3000", "--naive-sample", "500"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode in (0, 1), out.stderr  # 1: targets missed, expected at 3,000 rows
    assert "(c)/(a) = " in out.stdout and "(c)/(b) = " in out.stdout
    assert "peak RSS of (c):" in out.stdout
    assert "extrapolated" in out.stdout  # (b) says it was measured on a sample
