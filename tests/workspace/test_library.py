"""The loader and models are a library: no click, plain arguments, plain data."""

from __future__ import annotations

import re
import subprocess
import sys

from .conftest import REPO


def test_only_cli_imports_click() -> None:
    importers = sorted(
        path.relative_to(REPO).as_posix()
        for path in (REPO / "connectly_declare").rglob("*.py")
        if re.search(r"^\s*(?:import click|from click\b)", path.read_text(encoding="utf-8"),
                     flags=re.M)
    )
    assert importers == ["connectly_declare/cli.py"]


def test_loading_a_workspace_does_not_import_click() -> None:
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from connectly_declare.workspace.load import load_workspace\n"
        "from connectly_declare.workspace.schema import dump\n"
        "from connectly_declare.commands.init import scaffold_files\n"
        f"ws = load_workspace(Path({str(REPO / 'campaigns')!r}))\n"
        "dump(); scaffold_files()\n"
        "assert 'click' not in sys.modules, 'click was imported'\n"
        "print(len(ws.sendouts))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=False, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "5"
