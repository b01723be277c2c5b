"""Every data problem of a workspace in one run: missing data files, missing columns,
template fields a source does not have, invalid phone numbers.

`validate --data` runs :func:`check_data`; so does `plan` once reading the data has
failed, so the user fixes everything at once instead of one problem per run. Each
audience is read whole (its own sources, exclusions, nested audiences), then each
sendout's entries are made; an invalid number is recorded and its row skipped, any
other problem ends that audience or sendout and the check goes on with the next.
Problems found twice (an audience read again through a sendout) are reported once; at
most `limit` are kept, the rest only counted.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from connectly_declare.audience.resolve import AudienceStats, resolve_raw, workspace_inputs
from connectly_declare.audience.sources import SkipLog
from connectly_declare.entries.stream import iter_entries
from connectly_declare.errors import DeclareError, Location, Problem
from connectly_declare.workspace.load import Workspace

MAX_DATA_PROBLEMS = 50
_MAX_REMEMBERED = 100_000  # distinct problems remembered to report each once


@dataclass
class DataProblems:
    """The problems found (the first `limit`, distinct) and how many there were."""

    limit: int = MAX_DATA_PROBLEMS
    kept: list[Problem] = field(default_factory=list)
    count: int = 0
    _seen: set[Problem] = field(default_factory=set)

    def add(self, problem: Problem) -> None:
        if problem in self._seen:
            return
        if len(self._seen) < _MAX_REMEMBERED:
            self._seen.add(problem)
        self.count += 1
        if len(self.kept) < self.limit:
            self.kept.append(problem)

    @property
    def left_out(self) -> int:
        return self.count - len(self.kept)


def _stats(found: DataProblems) -> AudienceStats:
    return AudienceStats(skips=SkipLog(errors=found.add))


def check_data(ws: Workspace, *, sendouts: Iterable[str] | None = None,
               audiences: bool = True, environ: Mapping[str, str] = os.environ,
               limit: int = MAX_DATA_PROBLEMS) -> DataProblems:
    """Read every audience (unless `audiences` is false: only those the sendouts read)
    and make every entry of `sendouts` (default: all of them), collecting the problems
    (see the module docstring)."""
    found = DataProblems(limit=limit)
    inputs = workspace_inputs(ws)
    for name in ws.audiences if audiences else ():
        try:
            for _ in resolve_raw(inputs, name, stats=_stats(found)):
                pass
        except DeclareError as err:
            for problem in err.problems:
                found.add(problem)
    for name in (ws.sendouts if sendouts is None else sendouts):
        try:
            for _ in iter_entries(ws, ws.sendouts[name], environ=environ,
                                  stats=_stats(found)):
                pass
        except DeclareError as err:
            for problem in err.problems:
                found.add(problem)
    return found


class DataErrors(DeclareError):
    """Every data problem of a run (the first few, and how many more)."""

    def __init__(self, found: DataProblems) -> None:
        self._found = found
        noun = "problem" if found.count == 1 else "problems"
        super().__init__(f"{found.count:,} data {noun}")

    @property
    def problems(self) -> list[Problem]:
        shown = sorted(self._found.kept)
        if self._found.left_out:
            shown.append(Problem(Location(), (
                f"... and {self._found.left_out:,} more data problems "
                f"({self._found.count:,} in all; the first {len(shown):,} are shown)")))
        return shown


__all__ = ["MAX_DATA_PROBLEMS", "DataErrors", "DataProblems", "check_data"]
