"""`declare` is a bash builtin that silently wins over the program: nothing a user copies
(README, init output, help texts, shipped examples) may start a command with it."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from connectly_declare.cli import cli

from .conftest import REPO, RunCli

BARE = re.compile(r"^\s*(?:\$\s*)?declare\s")


def _bash_blocks(markdown: str) -> list[str]:
    return re.findall(r"```(?:bash|sh|shell|console)\n(.*?)```", markdown, flags=re.S)


def _bare_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if BARE.match(line)]


def test_readme_code_blocks_never_start_with_bare_declare() -> None:
    blocks = _bash_blocks((REPO / "README.md").read_text(encoding="utf-8"))
    assert blocks, "README.md has bash blocks"
    assert [line for block in blocks for line in _bare_lines(block)] == []
    # The detector itself: it would catch the trap.
    assert _bare_lines("declare plan\n  $ declare apply --auto-approve\n") == [
        "declare plan", "  $ declare apply --auto-approve"]


def test_init_output_uses_the_safe_name(tmp_path: Path, run_cli: RunCli) -> None:
    result = run_cli("init", str(tmp_path / "ws"))
    assert result.returncode == 0, result.stderr
    steps = [line.strip() for line in result.stdout.splitlines() if "validate" in line
             or "plan" in line or "apply" in line]
    assert steps and all(s.startswith("connectly-declare ") for s in steps)
    for path in (tmp_path / "ws").rglob("*"):
        if path.is_file():
            assert _bare_lines(path.read_text(encoding="utf-8")) == [], path


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = [prefix]
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            out.extend(_commands(command, (*prefix, name)))
        else:
            out.append((*prefix, name))
    return out


@pytest.mark.parametrize("path", _commands(cli), ids=lambda p: " ".join(p) or "(root)")
def test_help_texts_use_the_safe_name(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"], prog_name="connectly-declare")
    assert result.exit_code == 0, result.output
    assert _bare_lines(result.output) == []
    assert re.findall(r"(?<![-\w])declare (?:plan|apply|validate|init|state|sim)\b",
                      result.output.replace("connectly-declare", "")) == []


def test_shipped_examples_use_the_safe_name() -> None:
    shipped = [*(REPO / "campaigns").rglob("*.yaml"),
               *(REPO / "connectly_declare" / "data").rglob("*.yaml")]
    assert shipped
    for path in shipped:
        text = path.read_text(encoding="utf-8").replace("connectly-declare", "")
        assert re.findall(r"(?<![-\w])declare (?:plan|apply|validate|init)\b", text) == [], path
