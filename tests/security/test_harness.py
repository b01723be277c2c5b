"""The harness notices what it promises to notice: a probe standing in for the CLI does
one forbidden thing at a time."""

from __future__ import annotations

from pathlib import Path

import pytest

from .harness import Outcome, _snapshot, run_cli


def _workspace(tmp_path: Path) -> Path:
    workspace = tmp_path / "ws"
    if not workspace.exists():
        workspace.mkdir()
        (workspace / "data.csv").write_text("phone\n", encoding="utf-8")
        (workspace / "link").symlink_to("/etc/hostname")
    return workspace


def _probe(tmp_path: Path, action: str, *, timeout: float = 20, memory_mb: int = 256) -> Outcome:
    workspace = _workspace(tmp_path)
    return run_cli([action], workspace, tmp_path, env={}, timeout=timeout,
                   memory_mb=memory_mb, module="declare_probe")


@pytest.mark.parametrize(
    ("action", "recorded"),
    [
        ("network", "network socket.connect"),
        ("read-outside", "read outside the workspace: /etc/hostname"),
        ("symlink-out", "read outside the workspace: /etc/hostname"),
        ("process", "process subprocess.Popen"),
    ],
)
def test_forbidden_access_is_recorded(tmp_path: Path, action: str, recorded: str) -> None:
    outcome = _probe(tmp_path, action)
    assert outcome.exit == 0
    assert any(line.startswith(recorded) for line in outcome.audit), outcome.audit


def test_reading_inside_the_workspace_is_not_recorded(tmp_path: Path) -> None:
    outcome = _probe(tmp_path, "read-inside")
    assert (outcome.exit, outcome.audit) == (0, [])


def test_a_written_file_shows_in_the_snapshot(tmp_path: Path) -> None:
    workspace = _workspace(tmp_path)
    before = _snapshot(workspace)
    assert _probe(tmp_path, "write").exit == 0
    assert set(_snapshot(workspace)) - set(before) == {"written.txt"}


def test_a_run_past_its_time_is_killed(tmp_path: Path) -> None:
    outcome = _probe(tmp_path, "spin", timeout=1)
    assert outcome.exit is None


def test_a_run_past_its_memory_fails_within_the_bound(tmp_path: Path) -> None:
    outcome = _probe(tmp_path, "eat", memory_mb=200)
    assert outcome.exit not in (0, None)
    assert "MemoryError" in outcome.stderr  # stopped by the address-space limit...
    assert outcome.max_rss_mb > 200  # ...and measured past the bound, which check_run fails


def test_a_traceback_is_visible_to_the_checks(tmp_path: Path) -> None:
    outcome = _probe(tmp_path, "traceback")
    assert "Traceback (most recent call last)" in outcome.stderr
