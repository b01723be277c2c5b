"""`connectly-declare validate`: declare.yaml and every manifest checked offline, and with
`--data` the data files read as a plan reads them. Every problem is printed at once as
FILE:LINE:COL: message; in a GitHub Actions job each is repeated as an annotation."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

from connectly_declare import words
from connectly_declare.errors import DeclareError, ManifestErrors, Problem
from connectly_declare.report import github
from connectly_declare.report.escape import terminal
from connectly_declare.report.mask import mask_numbers
from connectly_declare.workspace.load import Workspace, find_workspace, load_workspace

PROG = "connectly-declare"


def annotate(problems: Sequence[Problem], start: Path, out: TextIO,
             environ: Mapping[str, str] = os.environ) -> None:
    """In a GitHub Actions job, repeat problems as `::error file=…,line=…::` annotations
    (stdout), so a pull request shows them on the lines they are about."""
    if not github.in_github_actions(environ):
        return
    root: Path | None = None
    try:
        root = find_workspace(start)
    except DeclareError:
        pass
    for line in github.annotation_lines(problems, workspace_root=root, title=PROG):
        out.write(line + "\n")


def run_validate(start: Path, *, data: bool, out: TextIO, err: TextIO,
                 environ: Mapping[str, str] = os.environ) -> int:
    """0 when the workspace (and with `data`, its data) is valid, 1 when not."""
    try:
        ws = load_workspace(start)
    except ManifestErrors as errors:
        for problem in errors.problems:
            err.write(terminal(mask_numbers(str(problem))) + "\n")
        annotate(errors.problems, start, out, environ)
        count = len(errors.problems)
        err.write(f"{count} problem{'s' if count != 1 else ''} found; nothing is valid "
                  "until all are fixed\n")
        return 1
    for warning in ws.warnings:
        err.write(terminal(mask_numbers(f"warning: {warning}")) + "\n")
    disabled = sum(1 for s in ws.sendouts.values() if not s.enabled)
    # The exact wording is relied on by scripts and the security corpus: keep it stable
    # (singular for one: `1 campaign`).
    out.write(f"valid: {words.count(len(ws.campaigns), 'campaign')}, "
              f"{words.count(len(ws.audiences), 'audience')}, "
              f"{words.count(len(ws.sendouts), 'sendout')} ({disabled:,} disabled) in "
              f"{words.count(len(ws.files), 'file')}\n")
    return validate_data(ws, out=out, err=err, environ=environ) if data else 0


def validate_data(ws: Workspace, *, out: TextIO, err: TextIO,
                  environ: Mapping[str, str] = os.environ) -> int:
    """`validate --data`: every audience read and every sendout's entries made, every data
    problem reported at once (capped, with a count)."""
    from connectly_declare.entries.check import DataErrors, check_data

    found = check_data(ws)
    if not found.count:
        out.write(f"data: {words.count(len(ws.audiences), 'audience')} read, entries made "
                  f"for {words.count(len(ws.sendouts), 'sendout')}, no problems\n")
        return 0
    problems = DataErrors(found).problems
    for problem in problems:
        err.write(terminal(str(problem)) + "\n")
    annotate(problems, ws.root, out, environ)
    err.write(f"{words.count(found.count, 'data problem')} found; fix them before a plan\n")
    return 1
