"""Publishing is one step away: CI builds the sdist and wheel and checks them as PyPI
would, with tools the test extra installs."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_ci_builds_and_twine_checks_the_sdist_and_wheel() -> None:
    script = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    build = re.search(r"^python -m build .*--outdir \"\$DIST\" \.$", script, flags=re.M)
    check = re.search(r"^python -m twine check --strict \"\$DIST\"/\*$", script, flags=re.M)
    tests = script.index("python -m pytest")
    assert build and check and build.start() < check.start() < tests, script


def test_the_test_extra_installs_build_and_twine_and_the_license_is_spdx() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    names = {re.split(r"[<>=\[ ]", spec, maxsplit=1)[0]
             for spec in project["project"]["optional-dependencies"]["test"]}
    assert {"build", "twine"} <= names
    # A table here makes setuptools warn on every build and stop building in 2027.
    assert project["project"]["license"] == "Apache-2.0"
