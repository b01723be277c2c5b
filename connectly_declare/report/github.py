"""Pull-request review on GitHub Actions: error annotations, the job summary and the plan
comment. Pure functions over plain data; `cli.py` decides when to call them.

- Annotations are workflow commands (``::error file=F,line=L,col=C,title=T::message``)
  printed on stdout; GitHub shows them on the pull request's changed lines. Their text is
  escaped by the runner's rules (actions/toolkit ``command.ts``): ``%``, CR and LF in the
  message, and also ``:`` and ``,`` in properties, or a crafted file name or message could
  end the command early and inject another one.
- ``$GITHUB_STEP_SUMMARY`` names a file; Markdown appended to it shows on the run's page.
- The plan comment starts with a hidden marker per environment, so a workflow can find
  its earlier comment and update it instead of adding one per push.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Literal

from connectly_declare.errors import Location, Problem
from connectly_declare.report.escape import terminal
from connectly_declare.report.mask import mask_numbers

Level = Literal["error", "warning", "notice"]
MARKER_PREFIX = "<!-- connectly-declare:plan:"
# GitHub refuses an issue comment over 65,536 characters and a step summary over 1 MiB.
COMMENT_LIMIT = 65_000
SUMMARY_LIMIT = 1_000_000
_NOT_LINE_BREAKS = re.compile(r"[^\r\n]+")
TRUNCATED = "\n\n_… truncated: the full plan is in the job log (`connectly-declare plan`)._\n"


def in_github_actions(environ: Mapping[str, str] = os.environ) -> bool:
    return environ.get("GITHUB_ACTIONS") == "true"


def escape_data(text: str) -> str:
    """`text` for a workflow command's message: controls, escape sequences, bidi and
    invisible characters shown visibly (as on stderr, `escape.terminal`), except CR and LF,
    which get the runner's own escapes like `%` (so nothing can end the command early;
    GitHub shows them as line breaks inside the annotation)."""
    text = _NOT_LINE_BREAKS.sub(lambda m: terminal(m.group(0)), text)
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def repo_path(file: str, workspace_root: Path | None, environ: Mapping[str, str]) -> str:
    """`file` (relative to the workspace) relative to the repository checkout, which is
    what GitHub matches against the pull request's files."""
    checkout = environ.get("GITHUB_WORKSPACE")
    if not file or workspace_root is None or not checkout:
        return file
    path = Path(file)
    absolute = path if path.is_absolute() else workspace_root / path
    try:
        return absolute.resolve().relative_to(Path(checkout).resolve()).as_posix()
    except ValueError:
        return file


def annotation(problem: Problem, *, level: Level = "error", title: str = "",
               workspace_root: Path | None = None,
               environ: Mapping[str, str] = os.environ) -> str:
    """One workflow command line for `problem`."""
    props = []
    loc = problem.location
    if loc.file:
        props.append(f"file={escape_property(repo_path(loc.file, workspace_root, environ))}")
        if loc.line:
            props.append(f"line={loc.line}")
            if loc.col:
                props.append(f"col={loc.col}")
    if title:
        props.append(f"title={escape_property(title)}")
    # Annotations show on the pull request: phone numbers are always masked there.
    message = mask_numbers(problem.message + (f" ({problem.hint})" if problem.hint else ""))
    head = f"::{level} {','.join(props)}" if props else f"::{level}"
    return f"{head}::{escape_data(message)}"


def failure_annotations(failures: Iterable[str], *, title: str,
                        environ: Mapping[str, str] = os.environ) -> list[str]:
    """`::warning` lines for entries refused for good (plan action `failed`), one per
    sendout, each with the server's code and message; none outside GitHub Actions."""
    if not in_github_actions(environ):
        return []
    return [annotation(Problem(Location(), text), level="warning", title=title)
            for text in failures]


def annotation_lines(problems: Iterable[Problem], *, level: Level = "error", title: str = "",
                workspace_root: Path | None = None,
                environ: Mapping[str, str] = os.environ) -> list[str]:
    return [annotation(p, level=level, title=title, workspace_root=workspace_root,
                       environ=environ) for p in problems]


def _cap(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - len(TRUNCATED)] + TRUNCATED


def append_step_summary(markdown: str, environ: Mapping[str, str] = os.environ) -> Path | None:
    """Append `markdown` to the job summary; None when not in a GitHub Actions job."""
    summary_file = environ.get("GITHUB_STEP_SUMMARY")
    if not summary_file:
        return None
    path = Path(summary_file)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(_cap(markdown, SUMMARY_LIMIT).rstrip("\n") + "\n\n")
    return path


def comment_marker(environment: str | None) -> str:
    """The hidden first line of the plan comment of `environment` ("default": none)."""
    name = (environment or "default").replace("--", "-").replace(">", "")
    return f"{MARKER_PREFIX}{name} -->"


def comment_body(markdown: str, environment: str | None) -> str:
    marker = comment_marker(environment)
    return marker + "\n" + _cap(markdown, COMMENT_LIMIT - len(marker) - 1).rstrip("\n") + "\n"


def write_comment(path: Path, markdown: str, environment: str | None) -> Path:
    """Write the comment body whole (temp file + rename: a bot never posts half of it)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(comment_body(markdown, environment), encoding="utf-8")
    tmp.replace(path)
    return path


__all__ = [
    "COMMENT_LIMIT",
    "MARKER_PREFIX",
    "annotation",
    "annotation_lines",
    "append_step_summary",
    "comment_body",
    "comment_marker",
    "escape_data",
    "escape_property",
    "in_github_actions",
    "repo_path",
    "write_comment",
]
