"""`connectly-declare init`: a working workspace in an empty folder, never an overwrite."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectly_declare.commands.init import init_workspace, scaffold_files
from connectly_declare.errors import DeclareError
from connectly_declare.workspace.load import load_workspace
from connectly_declare.workspace.schema import dump

from .conftest import RunCli


def test_init_scaffolds_a_valid_workspace(tmp_path: Path, run_cli: RunCli) -> None:
    result = run_cli("init", "new-workspace", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    root = tmp_path / "new-workspace"
    ws = load_workspace(root)
    assert list(ws.sendouts) == ["welcome-customers"]
    assert (root / "schema/manifests.schema.json").read_text(encoding="utf-8") == dump()
    assert "connectly-declare -C new-workspace validate" in result.stdout
    check = run_cli("validate", cwd=root)
    assert check.returncode == 0, check.stderr


def test_init_in_the_current_empty_folder(tmp_path: Path, run_cli: RunCli) -> None:
    result = run_cli("init", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "declare.yaml").is_file()
    assert "  connectly-declare validate" in result.stdout


def test_init_refuses_an_existing_workspace(tmp_path: Path, run_cli: RunCli) -> None:
    (tmp_path / "declare.yaml").write_text("business_id: mine\n", encoding="utf-8")
    result = run_cli("init", str(tmp_path))
    assert result.returncode == 1
    assert "already exists; init never overwrites" in result.stderr
    assert (tmp_path / "declare.yaml").read_text(encoding="utf-8") == "business_id: mine\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["declare.yaml"]


def test_init_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(DeclareError, match="not empty"):
        init_workspace(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_init_fails_cleanly_when_the_folder_cannot_be_made(tmp_path: Path) -> None:
    target = tmp_path / "ws"
    target.mkdir()
    blocker = tmp_path / "ws-blocked"
    blocker.mkdir()
    (blocker / "data").write_text("a file where a folder must go", encoding="utf-8")
    with pytest.raises(DeclareError):
        init_workspace(blocker / "data" / "inner")
    assert sorted(p.name for p in blocker.iterdir()) == ["data"]
    init_workspace(target)
    assert sorted(scaffold_files()) == sorted(
        p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file())


def test_init_honours_C(tmp_path: Path, run_cli: RunCli) -> None:
    result = run_cli("-C", "fresh", "init", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "fresh" / "declare.yaml").is_file()
    assert "connectly-declare -C fresh validate" in result.stdout


def test_init_ignores_the_lock_and_the_simulator_ledger_but_not_the_ledger(
    tmp_path: Path, run_cli: RunCli,
) -> None:
    import subprocess

    root = tmp_path / "ws"
    assert run_cli("init", str(root)).returncode == 0
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    state = root / ".declare"
    state.mkdir()
    names = ["ledger.jsonl", "ledger.jsonl.lock", "ledger.jsonl.lock.json",
             "sim-ledger.jsonl", "sim-ledger.jsonl.lock", "sim-ledger.staging.jsonl"]
    for name in names:
        (state / name).write_text("x\n", encoding="utf-8")
    ignored = subprocess.run(
        ["git", "-C", str(root), "check-ignore", *(f".declare/{n}" for n in names)],
        capture_output=True, text=True, check=False).stdout.split()
    assert ignored == [f".declare/{n}" for n in names[1:]]
