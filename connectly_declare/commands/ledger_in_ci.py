"""A local ledger written by a CI job is lost with the job's checkout unless the job
commits it back: the next run would then plan against a history that does not hold what
this run sent, and send it again. `apply` warns when the file is not tracked by Git.

The warning goes to stderr, and in GitHub Actions also as a `::warning` annotation
(stdout) and into the job summary, where a reviewer of the run sees it.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from connectly_declare.errors import Location, Problem
from connectly_declare.report import escape, github


def in_ci(environ: Mapping[str, str]) -> bool:
    """CI=true (set by GitHub Actions, GitLab, CircleCI...) or GITHUB_ACTIONS=true."""
    ci = environ.get("CI", "").strip().lower()
    return (bool(ci) and ci not in ("0", "false", "no")) or github.in_github_actions(environ)


def git_tracked(path: Path) -> bool | None:
    """Whether Git tracks `path` (None: not in a Git repository, or no git)."""
    try:
        inside = subprocess.run(["git", "rev-parse", "--is-inside-work-tree"],
                                cwd=path.parent, capture_output=True, text=True,
                                timeout=30, check=False)
        if inside.returncode != 0 or inside.stdout.strip() != "true":
            return None
        listed = subprocess.run(["git", "ls-files", "--error-unmatch", "--", path.name],
                                cwd=path.parent, capture_output=True, text=True, timeout=30,
                                check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return listed.returncode == 0


def _shown(path: Path) -> str:
    try:
        return path.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return str(path)


def untracked_ledger_warning(path: Path, environ: Mapping[str, str]) -> str | None:
    """The warning for a local ledger at `path` written in CI, or None when all is well."""
    if not in_ci(environ) or not path.exists():
        return None
    tracked = git_tracked(path)
    if tracked:
        return None
    why = "is not in a Git repository" if tracked is None else "is not tracked by Git"
    display = _shown(path)
    return (f"the local ledger {display} {why}: unless this job commits it back "
            f"(git add {display} && git commit && git push), the next run will not know "
            "what this one sent and will send it again; commit it back, or use the postgres "
            "ledger in CI")


def warn_untracked_ledger(path: Path, root: Path, environ: Mapping[str, str], *,
                          out: TextIO, err: TextIO) -> bool:
    """Say the warning everywhere it is seen; True when there was one. `path` is the
    ledger file, `root` the workspace's root."""
    text = untracked_ledger_warning(path, environ)
    if text is None:
        return False
    print(escape.terminal(f"warning: {text}"), file=err, flush=True)
    if github.in_github_actions(environ):
        try:
            file = path.relative_to(root).as_posix()
        except ValueError:
            file = str(path)
        problem = Problem(Location(file), text)
        print(github.annotation(problem, level="warning", title="connectly-declare",
                                workspace_root=root, environ=environ),
              file=out, flush=True)
        github.append_step_summary(f"> [!WARNING]\n> {escape.markdown_text(text)}", environ)
    return True


__all__ = ["git_tracked", "in_ci", "untracked_ledger_warning", "warn_untracked_ledger"]
