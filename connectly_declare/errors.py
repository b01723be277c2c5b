"""The project's errors. Every user-facing failure is a :class:`DeclareError`.

The tree (docs/architecture.md, "Errors", draws it too; a test keeps both complete)::

    DeclareError              exit 1, printed as "FILE:LINE:COL: message" lines, no traceback
    ├── ManifestErrors        every located problem in the manifests of a run
    ├── DataErrors            (entries/check.py) every data problem of a run
    ├── TemplateRenderError   (templates/compiled.py) a template failed for one recipient
    ├── LedgerError           the ledger cannot be read or written safely
    │   ├── LedgerCorrupt     a damaged record that is not the final line
    │   ├── LedgerLocked      another writer holds the lock (names the holder)
    │   └── StalePlan         a saved plan no longer matches the ledger
    ├── PlanError             the plan is refused (guards, conflicts, past schedules)
    │   └── PlanRefused       (plan/model.py) every reason a plan is refused, at once
    └── ApiError              the API answered in a way apply cannot continue from

Anything else that escapes is a bug: the CLI maps it to exit 3 and writes a crash log.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True, order=True)
class Location:
    """Where a problem is: a file (relative to the workspace when possible), 1-based line and
    column (0 when unknown), or a data row (CSV row / JSON line number)."""

    file: str = ""
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        if not self.file:
            return ""
        if self.line and self.col:
            return f"{self.file}:{self.line}:{self.col}"
        if self.line:
            return f"{self.file}:{self.line}"
        return self.file


@dataclass(frozen=True, order=True)
class Problem:
    """One located problem: ``FILE:LINE:COL: message`` (sorted by location)."""

    location: Location
    message: str
    hint: str = field(default="", compare=False)

    def __str__(self) -> str:
        where = str(self.location)
        text = f"{where}: {self.message}" if where else self.message
        if self.hint:
            text += f" ({self.hint})"
        return text


class DeclareError(Exception):
    """Root of every error a user can cause; the CLI prints it and exits 1."""

    exit_code = 1

    def __init__(self, message: str, *, location: Location | None = None, hint: str = "") -> None:
        self.problem = Problem(location or Location(), message, hint)
        super().__init__(str(self.problem))

    @property
    def problems(self) -> list[Problem]:
        return [self.problem]


class ManifestErrors(DeclareError):
    """All located problems of one run, sorted by file and line."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self._problems = sorted(set(problems))
        count = len(self._problems)
        first = str(self._problems[0]) if self._problems else "no problems"
        super().__init__(first if count == 1 else f"{count} problems, first: {first}")

    @property
    def problems(self) -> list[Problem]:
        return list(self._problems)


class LedgerError(DeclareError):
    """The ledger cannot be used safely."""


class LedgerCorrupt(LedgerError):
    """A damaged ledger record that is not the torn final line."""


class LedgerLocked(LedgerError):
    """Another writer holds the ledger lock."""


class StalePlan(LedgerError):
    """A saved plan was made against a ledger lineage/serial that has moved on."""


class PlanError(DeclareError):
    """The plan is refused by a guard (max recipients, conflicts, past schedule...)."""


class ApiError(DeclareError):
    """The API answered in a way that apply cannot continue from (e.g. 401)."""


__all__ = [
    "ApiError",
    "DeclareError",
    "LedgerCorrupt",
    "LedgerError",
    "LedgerLocked",
    "Location",
    "ManifestErrors",
    "PlanError",
    "Problem",
    "StalePlan",
]
