"""Shared helpers for the workspace tests: example cases materialised as workspaces, and
the real CLI run as a subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

HERE = Path(__file__).parent
EXAMPLES = HERE / "example-files"
REPO = HERE.parent.parent
DEFAULT_CONFIG = "version: 1\nbusiness_id: test-business\n"

RunCli = Callable[..., subprocess.CompletedProcess[str]]


def negative_cases() -> list[Path]:
    """Every bad example: a file or a folder, each with `<name>.expected` beside it."""
    return sorted(p for p in (EXAMPLES / "negative").iterdir() if p.suffix != ".expected")


def positive_cases() -> list[Path]:
    return sorted(p for p in (EXAMPLES / "positive").iterdir() if p.is_dir())


def expected_lines(case: Path) -> list[str]:
    path = case.parent / f"{case.name.removesuffix('.yaml')}.expected"
    return path.read_text(encoding="utf-8").splitlines()


def materialise(case: Path, dest: Path) -> Path:
    """A workspace in `dest` holding the case (a default declare.yaml when it has none)."""
    dest.mkdir(parents=True, exist_ok=True)
    if case.is_dir():
        shutil.copytree(case, dest, dirs_exist_ok=True)
    else:
        shutil.copy(case, dest / case.name)
    if not (dest / "declare.yaml").exists():
        (dest / "declare.yaml").write_text(DEFAULT_CONFIG, encoding="utf-8")
    return dest


@pytest.fixture
def run_cli() -> RunCli:
    """Run `python -m connectly_declare ARGS...` for real, in `cwd`, with text output."""

    def run(*args: str, cwd: Path | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        merged = {**os.environ, "PYTHONUTF8": "1", **(env or {})}
        merged.pop("DECLARE_DEBUG", None)
        merged.pop("DECLARE_ENV", None)
        command: Sequence[str] = [sys.executable, "-m", "connectly_declare", *args]
        return subprocess.run(command, cwd=cwd, env=merged, capture_output=True,
                              text=True, encoding="utf-8", timeout=120, check=False)

    return run
