"""The README's requirements and shell completion, checked against the package and run
as written in a real bash."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text(encoding="utf-8")


def test_the_readme_states_the_python_the_package_requires() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["requires-python"] == ">=3.11"
    assert "Python 3.11 or later" in README and 'requires-python = ">=3.11"' in README


def test_the_readme_completion_line_completes_in_bash() -> None:
    (line,) = [line for line in README.splitlines()
               if line.startswith("eval") and "_CONNECTLY_DECLARE_COMPLETE=bash_source" in line]
    script = (f"{line}\n"
              "COMP_WORDS=(connectly-declare pl); COMP_CWORD=1\n"
              "_connectly_declare_completion connectly-declare\n"
              'printf "%s\\n" "${COMPREPLY[@]}"\n'
              "COMPREPLY=(); COMP_WORDS=(connectly-declare validate --d); COMP_CWORD=2\n"
              "_connectly_declare_completion connectly-declare\n"
              'printf "%s\\n" "${COMPREPLY[@]}"\n')
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(["bash", "--norc", "--noprofile", "-c", script], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert re.findall(r"^\S+$", done.stdout, flags=re.M) == ["plan", "--data"], done.stdout
