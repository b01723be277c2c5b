"""The shipped pre-commit hook, run by the real `pre-commit try-repo` (it pip-installs this
repository's committed HEAD into its own environment, so this test is slow)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "campaigns"
HOOK = "connectly-declare-validate"


def test_the_hook_definition_is_what_the_docs_promise() -> None:
    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    (hook,) = hooks
    assert hook["id"] == HOOK and hook["entry"] == "connectly-declare validate"
    assert hook["language"] == "python" and hook["pass_filenames"] is False
    import re

    files = re.compile(hook["files"])
    for name in ("declare.yaml", "sendouts/a.yml", "data/c.csv", "data/x.jsonl"):
        assert files.search(name), name
    assert not files.search("README.md")


def _git(args: list[str], cwd: Path, env: dict[str, str]) -> None:
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


@pytest.mark.slow
def test_pre_commit_try_repo_passes_a_valid_and_fails_an_invalid_workspace(
        tmp_path: Path) -> None:
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"),
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid",
           "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    env.pop("GITHUB_ACTIONS", None)
    # try-repo would also pick up this working tree's uncommitted changes: a clone holds
    # exactly the committed HEAD, which is what users install.
    source = tmp_path / "connectly-declare"
    _git(["clone", "--quiet", "--no-hardlinks", str(REPO), str(source)], tmp_path, env)
    sendouts = tmp_path / "sendouts"
    shutil.copytree(EXAMPLE, sendouts, ignore=shutil.ignore_patterns(".declare"))
    _git(["init", "--quiet", "-b", "main"], sendouts, env)
    _git(["add", "."], sendouts, env)
    _git(["commit", "--quiet", "-m", "sendouts"], sendouts, env)

    def try_repo() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "pre_commit", "try-repo", str(source),
                               HOOK, "--all-files", "--color", "never"], cwd=sendouts,
                              env=env, capture_output=True, text=True, timeout=900)

    good = try_repo()
    assert good.returncode == 0, good.stdout + good.stderr
    assert "connectly-declare validate" in good.stdout and "Passed" in good.stdout

    broken = sendouts / "sendouts" / "navidad.yaml"
    broken.write_text(broken.read_text(encoding="utf-8").replace(
        "audience: spanish-speakers", "audience: nobody-by-this-name"), encoding="utf-8")
    bad = try_repo()
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "Failed" in bad.stdout
    assert "sendouts/navidad.yaml:" in bad.stdout and "nobody-by-this-name" in bad.stdout
