"""`validate --data` and `plan` report every data problem of a run at once (missing files,
missing columns, template fields a source lacks, invalid phone numbers), capped with a
count; the real CLI, on a copy of the example workspace."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "campaigns"


def _cli(ws: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "connectly_declare", "-C", str(ws), *args],
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture()
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "campaigns"
    shutil.copytree(EXAMPLE, ws, ignore=shutil.ignore_patterns(".declare"))
    return ws


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _break_everything(ws: Path) -> None:
    (ws / "data" / "opt-out.csv").unlink()                                      # missing file
    _replace(ws / "data" / "customers.csv", "(415) 555-0102", "call me")        # invalid
    _replace(ws / "data" / "customers.csv", "212.555.0103", "n/a")              # invalid
    _replace(ws / "sendouts" / "vip.yaml", "recipient.first_name", "recipient.nickname")
    (ws / "data" / "no-phone.csv").write_text("name\nAda\n", encoding="utf-8")  # no column
    _replace(ws / "audiences.yaml", "  - csv: data/customers.csv",
             "  - csv: data/customers.csv\n  - csv: data/no-phone.csv")


EXPECTED = [
    "audiences.yaml:13:10: file 'data/opt-out.csv' does not exist",  # a line added above
    "data/customers.csv:3: invalid phone number: contains letters",
    "data/customers.csv:4: invalid phone number: contains letters",
    "data/no-phone.csv",
    "sendouts/vip.yaml:",
]


def test_the_example_passes_validate_data(workspace: Path) -> None:
    done = _cli(workspace, "validate", "--data")
    assert done.returncode == 0, done.stderr
    assert "data: 4 audiences read, entries made for 5 sendouts, no problems" in done.stdout


def test_validate_alone_does_not_read_data_and_validate_data_reports_every_problem(
        workspace: Path) -> None:
    _break_everything(workspace)
    assert _cli(workspace, "validate").returncode == 0  # the manifests are fine
    done = _cli(workspace, "validate", "--data")
    assert done.returncode == 1
    for expected in EXPECTED:
        assert expected in done.stderr, (expected, done.stderr)
    assert "nickname" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.rstrip().endswith("data problems found; fix them before a plan")


def test_plan_reports_every_data_problem_of_the_run_at_once(workspace: Path) -> None:
    _break_everything(workspace)
    done = _cli(workspace, "plan")
    assert done.returncode == 1
    for expected in EXPECTED:
        assert expected in done.stderr, (expected, done.stderr)
    assert not (workspace / ".declare" / "ledger.jsonl").exists()


def test_plan_with_one_problem_reports_it_as_before(workspace: Path) -> None:
    _replace(workspace / "data" / "customers.csv", "(415) 555-0102", "call me")
    done = _cli(workspace, "plan")
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("data/customers.csv:3: invalid phone")


def test_many_problems_are_capped_with_a_count(workspace: Path) -> None:
    rows = "".join(f"bad-{i},X{i},Y,gold,en\n" for i in range(120))
    with (workspace / "data" / "customers.csv").open("a", encoding="utf-8") as fh:
        fh.write(rows)
    done = _cli(workspace, "validate", "--data")
    assert done.returncode == 1
    problems = [line for line in done.stderr.splitlines() if "invalid phone number" in line]
    assert len(problems) == 50
    assert "... and 70 more data problems (120 in all; the first 50 are shown)" in done.stderr
    assert "120 data problems found" in done.stderr
    plan = _cli(workspace, "plan")
    assert plan.returncode == 1 and "(120 in all; the first 50 are shown)" in plan.stderr
