"""`connectly-declare init`: scaffold a small, working workspace in an empty folder.

The scaffold ships as package data (connectly_declare/data/init/); the JSON Schemas are
written fresh from the installed models, so an editor validates against exactly the
version that will run. Nothing is ever overwritten, and a failed scaffold leaves no
partial workspace behind.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

from connectly_declare.errors import DeclareError
from connectly_declare.workspace.config import CONFIG_FILE, SIM_LEDGER
from connectly_declare.workspace.schema import SCHEMA_FILES, dump


@dataclass(frozen=True)
class InitResult:
    """What `init` created and what to type next."""

    root: Path
    files: tuple[str, ...]  # relative to root, POSIX style
    next_steps: tuple[str, ...]


def _scaffold(node: Traversable, prefix: str = "") -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for child in sorted(node.iterdir(), key=lambda c: c.name):
        if child.name.startswith(("_", ".")):
            continue
        name = f"{prefix}{child.name}"
        if child.is_dir():
            out.update(_scaffold(child, f"{name}/"))
        else:
            out[name] = child.read_bytes()
    return out


# The local ledger itself is meant to be committed (a pull request that commits it shows
# exactly who was sent what); its writer lock and the simulator's ledger are not.
GITIGNORE = f"""\
# connectly-declare: the ledger's writer lock (the ledger itself is committed)
.declare/*.lock
.declare/*.lock.json
.declare/*.tmp
# runs against the local simulator (connectly-declare apply --sim)
{SIM_LEDGER.removesuffix(".jsonl")}*.jsonl*
"""


def scaffold_files() -> dict[str, bytes]:
    """Every file `init` writes, by relative path."""
    content = _scaffold(files("connectly_declare") / "data" / "init")
    # dot files are not package data (setuptools' globs skip them), so it is written here
    content[".gitignore"] = GITIGNORE.encode("utf-8")
    for kind, path in SCHEMA_FILES.items():
        content[path] = dump(kind).encode("utf-8")
    return dict(sorted(content.items()))


def next_steps(directory: Path) -> tuple[str, ...]:
    """The commands to type next (bash-safe: `connectly-declare`, never bare `declare`)."""
    where = "" if directory == Path(".") else f"-C {shlex.quote(str(directory))} "
    return (
        f"connectly-declare {where}validate          # check the manifests",
        f"connectly-declare {where}plan              # who would receive what (offline)",
        f"connectly-declare {where}apply --sim       # send it to the local simulator",
    )


def init_workspace(directory: Path) -> InitResult:
    """Scaffold the example workspace in `directory` (created if missing; must be empty)."""
    if (directory / CONFIG_FILE).exists():
        raise DeclareError(f"{directory / CONFIG_FILE} already exists; init never overwrites",
                           hint="edit it, or pick a new folder: connectly-declare init NEW-DIR")
    if directory.exists() and not directory.is_dir():
        raise DeclareError(f"{directory} is a file, not a folder")
    if directory.is_dir() and any(directory.iterdir()):
        raise DeclareError(f"{directory} is not empty; init only fills an empty folder",
                           hint="pick a new folder: connectly-declare init NEW-DIR")
    content = scaffold_files()
    created: list[Path] = []
    try:
        if not directory.exists():
            directory.mkdir(parents=True)
            created.append(directory)
        for name, data in content.items():
            path = directory / name
            for parent in reversed(path.relative_to(directory).parents[:-1]):
                folder = directory / parent
                if not folder.exists():
                    folder.mkdir()
                    created.append(folder)
            with open(path, "xb") as fh:  # "x": never overwrite, even in a race
                created.append(path)
                fh.write(data)
    except OSError as err:
        for path in reversed(created):  # leave nothing partial behind
            if path.is_dir():
                path.rmdir()
            else:
                path.unlink(missing_ok=True)
        raise DeclareError(f"cannot create the workspace in {directory}: {err.strerror}") \
            from None
    return InitResult(directory, tuple(content), next_steps(directory))


__all__ = ["InitResult", "init_workspace", "next_steps", "scaffold_files"]
