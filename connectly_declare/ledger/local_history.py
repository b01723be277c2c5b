"""Which local ledgers of a workspace hold an environment's history: the postgres ledger
refuses to write while one of them is ahead of it (`state migrate` copies it first)."""

from __future__ import annotations

import json
from pathlib import Path

from connectly_declare.workspace.config import is_sim_ledger


def lines(path: Path) -> int:
    with path.open("rb") as fh:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))


def local_histories(root: Path, environment: str | None) -> list[tuple[str, str]]:
    """(path relative to `root`, lineage) of the local ledgers under `root`/.declare whose
    header names `environment` (the simulator's ledger excluded)."""
    found = []
    for path in sorted((root / ".declare").glob("*.jsonl")):
        if is_sim_ledger(path.name):  # never a real history
            continue
        try:
            with path.open("rb") as fh:
                first = json.loads(fh.readline() or b"null")
        except (OSError, ValueError):
            continue
        if isinstance(first, dict) and first.get("type") == "header" \
                and first.get("environment") == environment:
            found.append((path.relative_to(root).as_posix(), str(first.get("lineage"))))
    return found
