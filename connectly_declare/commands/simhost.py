"""Where `apply --sim` serves its simulator: in a thread of its own process, or from a
child process (sim.child) for a large run.

In-process costs nothing to start and is what small runs (and the test suite's many
`apply --sim`) use; its request handling shares apply's core, about a third of a
million-entry apply's CPU time. A child process takes about a second to start and runs on
another core, so a large run keeps the API's pace. Large means at least
:data:`APART_ENTRIES` entries to send when the plan is made first, or audience files of at
least :data:`APART_BYTES` when apply plans while sending (the count is not known before).
`DECLARE_SIM_PROCESS=always` or `never` overrides the choice.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from connectly_declare.errors import DeclareError
from connectly_declare.workspace.load import Workspace
from connectly_declare.workspace.manifests import AudienceSpec, CsvSource, JsonlSource

SIM_PROCESS_ENV = "DECLARE_SIM_PROCESS"
APART_ENTRIES = 50_000  # ~4 s of sending at the API's pace: a second's start is worth it
APART_BYTES = 2 * 1024 * 1024  # audience files' bytes: ~40,000 rows of phone + two fields


def _choice(environ: Mapping[str, str]) -> str:
    text = environ.get(SIM_PROCESS_ENV, "").strip().lower() or "auto"
    if text not in ("auto", "always", "never"):
        raise DeclareError(f"{SIM_PROCESS_ENV} is {text!r}, not auto, always or never",
                           hint=f"unset {SIM_PROCESS_ENV} to let apply choose by size")
    return text


def apart_for_entries(environ: Mapping[str, str], entries: int) -> bool:
    """Serve the simulator from a child process for a plan of `entries` to send?"""
    choice = _choice(environ)
    return choice == "always" or (choice == "auto" and entries >= APART_ENTRIES)


def _data_files(ws: Workspace) -> Iterable[str]:
    specs: list[AudienceSpec] = list(ws.audiences.values())
    specs += [s.audience for s in ws.sendouts.values() if isinstance(s.audience, AudienceSpec)]
    for spec in specs:
        for source in (*spec.sources, *spec.exclude):
            if isinstance(source, CsvSource):
                yield source.csv
            elif isinstance(source, JsonlSource):
                yield source.jsonl


def audience_bytes(ws: Workspace) -> int:
    """The bytes of the workspace's audience files (each once; a size only, nothing read:
    planning itself checks and reports the paths)."""
    total = 0
    for name in set(_data_files(ws)):
        try:
            total += os.stat(ws.root / name).st_size
        except (OSError, ValueError):
            continue
    return total


def apart_for_workspace(environ: Mapping[str, str], ws: Workspace) -> bool:
    """Serve the simulator from a child process for a plan made while sending from `ws`?"""
    choice = _choice(environ)
    return choice == "always" or (choice == "auto" and audience_bytes(ws) >= APART_BYTES)


__all__ = ["APART_BYTES", "APART_ENTRIES", "SIM_PROCESS_ENV", "apart_for_entries",
           "apart_for_workspace", "audience_bytes"]
