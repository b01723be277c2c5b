"""The shipped pre-commit hook, run by the real pre-commit (it pip-installs this
repository's committed HEAD into its own environment, so these tests are slow): with
`try-repo` on a workspace at the repository root, and from a `.pre-commit-config.yaml`
with `args: [-C, campaigns]` on a workspace in a subfolder (try-repo cannot pass args)."""

from __future__ import annotations

import os
import re
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
    assert hook["id"] == HOOK and hook["entry"] == "connectly-declare validate --data"
    assert hook["language"] == "python" and hook["pass_filenames"] is False
    files = re.compile(hook["files"])
    for name in ("declare.yaml", "sendouts/a.yml", "data/c.csv", "data/x.jsonl"):
        assert files.search(name), name
    assert not files.search("README.md")


def _env(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"),
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid",
           "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    for name in ("GITHUB_ACTIONS", "DECLARE_ENV", "VIRTUAL_ENV"):
        env.pop(name, None)
    return env


def _git(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True,
                          text=True).stdout


def _sources(tmp_path: Path, env: dict[str, str]) -> Path:
    # pre-commit would also pick up this working tree's uncommitted changes: a clone holds
    # exactly the committed HEAD, which is what users install.
    source = tmp_path / "connectly-declare"
    _git(["clone", "--quiet", "--no-hardlinks", str(REPO), str(source)], tmp_path, env)
    return source


def _sendouts(tmp_path: Path, env: dict[str, str], subfolder: str) -> tuple[Path, Path]:
    """A sendouts repository holding the example workspace in `subfolder` ("" = root)."""
    repo = tmp_path / "sendouts"
    workspace = repo / subfolder if subfolder else repo
    shutil.copytree(EXAMPLE, workspace, ignore=shutil.ignore_patterns(".declare"))
    _git(["init", "--quiet", "-b", "main"], repo, env)
    _git(["add", "."], repo, env)
    _git(["commit", "--quiet", "-m", "sendouts"], repo, env)
    return repo, workspace


def _break_data(workspace: Path) -> None:
    """Two invalid numbers and a template field no row has: data problems only `--data`
    sees (the manifests stay valid)."""
    data = workspace / "data" / "customers.csv"
    text = data.read_text(encoding="utf-8")
    data.write_text(text.replace("(415) 555-0102", "call me", 1).replace(
        "212.555.0103", "n/a", 1), encoding="utf-8")
    vip = workspace / "sendouts" / "vip.yaml"
    vip.write_text(vip.read_text(encoding="utf-8").replace(
        "recipient.first_name", "recipient.nickname", 1), encoding="utf-8")


def _assert_data_problems_reported(result: subprocess.CompletedProcess[str]) -> None:
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "Failed" in out
    assert "data/customers.csv:3: invalid phone number" in out
    assert "data/customers.csv:4: invalid phone number" in out
    assert "sendouts/vip.yaml:" in out and "nickname" in out


@pytest.mark.slow
def test_pre_commit_try_repo_passes_a_valid_and_fails_an_invalid_workspace(
        tmp_path: Path) -> None:
    env = _env(tmp_path)
    source = _sources(tmp_path, env)
    sendouts, workspace = _sendouts(tmp_path, env, "")

    def try_repo() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "pre_commit", "try-repo", str(source),
                               HOOK, "--all-files", "--color", "never"], cwd=sendouts,
                              env=env, capture_output=True, text=True, timeout=900)

    good = try_repo()
    assert good.returncode == 0, good.stdout + good.stderr
    assert "connectly-declare validate" in good.stdout and "Passed" in good.stdout

    _break_data(workspace)
    _assert_data_problems_reported(try_repo())


@pytest.mark.slow
def test_the_hook_with_dash_c_checks_a_workspace_in_a_subfolder(tmp_path: Path) -> None:
    env = _env(tmp_path)
    source = _sources(tmp_path, env)
    sendouts, workspace = _sendouts(tmp_path, env, "campaigns")
    rev = _git(["rev-parse", "HEAD"], source, env).strip()
    config = {"repos": [{"repo": str(source), "rev": rev,
                         "hooks": [{"id": HOOK, "args": ["-C", "campaigns"]}]}]}
    (sendouts / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config),
                                                      encoding="utf-8")

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "pre_commit", "run", "--all-files",
                               "--color", "never"], cwd=sendouts, env=env,
                              capture_output=True, text=True, timeout=900)

    good = run()
    assert good.returncode == 0, good.stdout + good.stderr
    assert "Passed" in good.stdout

    broken = workspace / "sendouts" / "navidad.yaml"
    original = broken.read_text(encoding="utf-8")
    broken.write_text(original.replace("audience: spanish-speakers",
                                       "audience: nobody-by-this-name"), encoding="utf-8")
    bad = run()
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "sendouts/navidad.yaml:" in bad.stdout and "nobody-by-this-name" in bad.stdout

    broken.write_text(original, encoding="utf-8")
    _break_data(workspace)
    _assert_data_problems_reported(run())
