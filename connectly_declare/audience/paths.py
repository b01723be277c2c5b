"""Files named in manifests, resolved safely inside the workspace.

A manifest in a pull request may come from anyone, and `plan` runs on it in CI: it must
not be able to read `/etc/passwd`, `~/.ssh/id_rsa` or `../other-repo/secrets.csv` into a
rendered sample. So a data path must be relative, stay inside the workspace after `..`
and symlinks are resolved, and name a regular file.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath, PureWindowsPath

from connectly_declare.errors import DeclareError, Location

_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:")
_HINT = "give a path relative to the workspace root (the folder holding declare.yaml)"


def resolve_data_path(root: Path, name: str, where: Location) -> Path:
    """The real path of data file `name` (as written in a manifest at `where`) under the
    workspace `root`. Raises :class:`DeclareError` located at `where` when the path is
    absolute, starts with `~`, is a Windows drive or UNC path, escapes the workspace
    (through `..` or a symlink), or is not an existing regular file."""
    if not name.strip():
        raise DeclareError("empty file path", location=where, hint=_HINT)
    if "\x00" in name:
        raise DeclareError("file path contains a NUL byte", location=where, hint=_HINT)
    if name.startswith("~"):
        raise DeclareError(f"file path {name!r} starts with ~ (a home folder)",
                           location=where, hint=_HINT)
    if (_WINDOWS_DRIVE.match(name) or name.startswith(("\\", "//"))
            or PureWindowsPath(name).is_absolute()):
        raise DeclareError(f"file path {name!r} is a Windows drive or network path",
                           location=where, hint=_HINT)
    if PurePosixPath(name).is_absolute():
        raise DeclareError(f"file path {name!r} is absolute", location=where, hint=_HINT)
    real_root = root.resolve()
    # Backslashes are separators to whoever wrote the manifest on Windows; reading them as
    # such keeps `data\vip.csv` working and lets `..\..\x` be caught as an escape.
    candidate = real_root.joinpath(*PureWindowsPath(name).parts)
    try:
        real = candidate.resolve(strict=True)
    except FileNotFoundError:
        raise DeclareError(f"file {name!r} does not exist", location=where,
                           hint="check the path; it is relative to the workspace root") from None
    except (OSError, RuntimeError) as exc:  # symlink loops, permission on a parent
        raise DeclareError(f"cannot open file {name!r}: {exc}", location=where) from None
    if not real.is_relative_to(real_root):
        how = "through a symlink" if ".." not in PureWindowsPath(name).parts else "with .."
        raise DeclareError(f"file path {name!r} leads outside the workspace {how}",
                           location=where, hint=_HINT)
    if not real.is_file():
        raise DeclareError(f"{name!r} is not a regular file", location=where, hint=_HINT)
    return real


def display_path(root: Path, path: Path) -> str:
    """`path` relative to the workspace root, with `/`, for messages (`data/vip.csv`)."""
    try:
        return path.relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


__all__ = ["display_path", "resolve_data_path"]
