"""The README's first commands, run exactly as written: a fresh checkout, a fresh virtual
environment, `pip install -e .` (from the package index), then the main job,
`connectly-declare -C campaigns apply --sim --auto-approve`, against the embedded
simulator. If the README changes to something that does not work, this fails."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import REPO

MAIN_JOB = "connectly-declare -C campaigns apply --sim --auto-approve"


def _bash_blocks() -> list[str]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```bash\n(.*?)```", readme, flags=re.S)


def _checkout(dest: Path) -> None:
    """The working tree as a fresh clone would have it (tracked and new, not ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)


def test_readme_opens_with_set_up_main_job_and_tests() -> None:
    first, second, *_ = _bash_blocks()
    assert "python3 -m venv .venv" in first and "pip install" in first
    assert MAIN_JOB in first
    assert second.strip() == "bash .ci/run"


@pytest.mark.slow
def test_readme_set_up_and_main_job_run_as_written(tmp_path: Path) -> None:
    command = _bash_blocks()[0].strip()
    repo = tmp_path / "checkout"
    repo.mkdir()
    _checkout(repo)
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "PYTHONPATH", "DECLARE_DEBUG", "DECLARE_ENV")}
    result = subprocess.run(["bash", "-c", command], cwd=repo, env=env, capture_output=True,
                            text=True, encoding="utf-8", timeout=900, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    # The tool's own words, not the shell's: the plan it made and what the simulator took.
    assert re.search(r"Apply complete: (\d+) accepted of \1 planned", output), output[-4000:]
    accepted = int(re.findall(r"Apply complete: (\d+) accepted", output)[0])
    assert accepted > 30, output[-4000:]  # the example's ~70 entries, not an empty plan
    ledger = repo / "campaigns" / ".declare" / "sim-ledger.jsonl"
    assert len(ledger.read_text(encoding="utf-8").splitlines()) > 2
    # The real ledger is untouched by a simulator run.
    assert not (repo / "campaigns" / ".declare" / "ledger.jsonl").exists()
