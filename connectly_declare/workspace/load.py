"""The workspace: find `declare.yaml` (from a folder upward, like git), load every manifest
its globs select, and run all checks, reporting every problem of the run at once.

`validate`, `plan` and `apply` all start here: :func:`load_workspace` either returns a
:class:`Workspace` whose manifests are valid and consistent, or raises
:class:`ManifestErrors` with every problem sorted by file and line.
"""

from __future__ import annotations

import glob
import hashlib
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

from connectly_declare.errors import DeclareError, Location, ManifestErrors, Problem
from connectly_declare.gcpause import no_gc
from connectly_declare.workspace.config import CONFIG_FILE, DEFAULT_MANIFEST_GLOBS, WorkspaceConfig
from connectly_declare.workspace.loader import LoadedManifest, load_config, load_manifest_file
from connectly_declare.workspace.manifests import Audience, Campaign, Sendout
from connectly_declare.workspace.references import check_references
from connectly_declare.workspace.unicode_checks import check_manifest
from connectly_declare.workspace.yamlmarks import Document

_INIT_HINT = ("run `connectly-declare init` to create a workspace, "
              "or pass -C DIR to run in one")


@dataclass(frozen=True)
class Workspace:
    """A loaded, valid workspace."""

    root: Path
    config: WorkspaceConfig
    campaigns: dict[str, Campaign]  # by exact campaign name
    audiences: dict[str, Audience]
    sendouts: dict[str, Sendout]  # by file path, then position in the file
    files: tuple[str, ...]  # manifest paths relative to root, POSIX style, sorted
    digest: str  # sha256 over declare.yaml and every manifest file (path and bytes)
    manifests: tuple[LoadedManifest, ...] = field(default=(), repr=False)
    config_document: Document | None = field(default=None, repr=False)
    warnings: tuple[Problem, ...] = ()  # e.g. an invisible character in a description
    _index: dict[tuple[str, str], LoadedManifest] = field(
        default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        for m in self.manifests:
            self._index.setdefault((m.kind, m.name), m)

    def location(self, kind: str, name: str, *path: str | int) -> Location:
        """FILE:LINE:COL of a node inside a manifest, e.g.
        ``location("Sendout", "spring-vip", "variables", "first_name")`` or
        ``location("Audience", "vip", "sources", 0, "csv")``. When the node is absent, the
        location of its deepest ancestor that exists (at worst the document's start)."""
        manifest = self._index.get((kind, name))
        if manifest is None:
            return Location()
        return manifest.location(*path)

    def config_location(self, *path: str | int) -> Location:
        """FILE:LINE:COL of a setting in `declare.yaml` (the file itself when absent)."""
        doc = self.config_document
        if doc is None:
            return Location(CONFIG_FILE)
        return doc.location(doc.mark(path))


def find_workspace(start: Path) -> Path:
    """The folder holding `declare.yaml`: `start` or the nearest folder above it."""
    start = Path(start).absolute()
    if not start.exists():
        raise DeclareError(f"folder {start} does not exist", hint=_INIT_HINT)
    if not start.is_dir():
        start = start.parent
    for folder in (start, *start.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder
    raise DeclareError(f"no {CONFIG_FILE} in {start} or any folder above it", hint=_INIT_HINT)


def _hidden(relative: PurePosixPath) -> bool:
    # .git, .venv, .declare (the ledger) and editor folders never hold manifests.
    return any(part.startswith(".") for part in relative.parts[:-1])


def _glob(root: Path, patterns: Iterable[str], setting: str,
          config_location: Mapping[int, Location]) -> tuple[set[str], list[Problem]]:
    found: set[str] = set()
    problems: list[Problem] = []
    real_root = os.path.realpath(root)
    real_dirs: dict[str, str] = {}  # one realpath per folder, not per file
    for i, pattern in enumerate(patterns):
        pure = PurePosixPath(pattern)
        if not pattern or pure.is_absolute() or ".." in pure.parts:
            problems.append(Problem(config_location.get(i, Location(CONFIG_FILE)),
                                    f"{setting}[{i}]: {pattern!r} must be a relative glob "
                                    "inside the workspace, e.g. sendouts/**/*.yaml"))
            continue
        # glob.glob, not Path.glob: several times faster on thousands of files, and it
        # already skips hidden files and folders (.git, .venv, .declare), as intended.
        for name in glob.glob(pattern, root_dir=root, recursive=True):
            path = os.path.join(root, name)
            if not os.path.isfile(path):
                continue
            relative = name.replace(os.sep, "/")
            folder, base = os.path.split(path)
            if folder not in real_dirs:
                real_dirs[folder] = os.path.realpath(folder)
            real = os.path.realpath(path) if os.path.islink(path) \
                else os.path.join(real_dirs[folder], base)
            if os.path.commonpath([real, real_root]) != real_root:
                # A symlink to ../other-repo/secrets.yaml would otherwise be read and
                # echoed in errors (SECURITY.md, "What `plan` and `validate` may touch").
                problems.append(Problem(Location(relative), "this manifest is a symlink "
                                        "to a file outside the workspace; it was not read",
                                        "copy the file into the workspace instead"))
                continue
            found.add(relative)
    return found, problems


def discover(root: Path, config: WorkspaceConfig,
             config_doc: Document | None = None) -> tuple[list[str], list[Problem]]:
    """Manifest paths (relative, POSIX, sorted) selected by the config's globs."""

    def locations(setting: str) -> dict[int, Location]:
        if config_doc is None:
            return {}
        return {i: config_doc.location(config_doc.mark((setting, i)))
                for i in range(len(getattr(config, setting)))}

    included, problems = _glob(root, config.manifests, "manifests", locations("manifests"))
    excluded, more = _glob(root, config.exclude, "exclude", locations("exclude"))
    excluded.add(CONFIG_FILE)
    files = sorted(f for f in included - excluded if not _hidden(PurePosixPath(f)))
    return files, problems + more


def load_workspace(start: Path) -> Workspace:
    """Find, load and check the workspace at or above `start`.

    Raises :class:`ManifestErrors` with every problem of the run (declare.yaml, YAML,
    shapes, templates, references), sorted by file and line. Loading reads no environment
    variable, so a pull request can be validated without credentials."""
    root = find_workspace(start)
    with no_gc():
        return _load(root)


def _load(root: Path) -> Workspace:
    digest = hashlib.sha256()
    raw_config = _read(root, CONFIG_FILE)
    _digest_file(digest, CONFIG_FILE, raw_config)
    config, config_doc, problems = load_config(raw_config, CONFIG_FILE)
    files, glob_problems = discover(root, config or WorkspaceConfig(manifests=list(
        DEFAULT_MANIFEST_GLOBS)), config_doc if config is not None else None)
    problems += glob_problems
    manifests: list[LoadedManifest] = []
    config_errors, warnings = check_manifest(raw_config, CONFIG_FILE, ())
    problems += config_errors
    for name in files:
        try:
            with open(os.path.join(root, name), "rb") as fh:
                raw = fh.read()
        except OSError as err:
            problems.append(Problem(Location(name), f"cannot read file: {err.strerror}"))
            continue
        _digest_file(digest, name, raw)
        loaded, file_problems = load_manifest_file(raw, name)
        manifests.extend(loaded)
        problems.extend(file_problems)
        unicode_errors, unicode_warnings = check_manifest(raw, name, _exact_names(loaded))
        problems.extend(unicode_errors)
        warnings.extend(unicode_warnings)
    problems.extend(check_references(manifests))
    if problems or config is None:
        raise ManifestErrors(problems)
    ws = _build(root, config, config_doc, manifests, tuple(files), digest.hexdigest())
    return replace(ws, warnings=tuple(sorted(warnings)))


def load_config_only(start: Path) -> tuple[Path, WorkspaceConfig]:
    """The workspace root and its declare.yaml alone, no manifests: for commands that must
    not depend on them (applying a saved plan, `state`, `state migrate`)."""
    root = find_workspace(start)
    config, _doc, problems = load_config(_read(root, CONFIG_FILE), CONFIG_FILE)
    if problems or config is None:
        raise ManifestErrors(problems)
    return root, config


def _exact_names(loaded: Iterable[LoadedManifest]) -> Iterator[tuple[str, Location]]:
    """Strings matched exactly against the vendor's inbox, where a look-alike character
    would silently name another campaign or version (SECURITY.md, "Unicode tricks")."""
    for m in loaded:
        if isinstance(m.model, Campaign):
            yield m.model.name, m.location("name")
            for i, version in enumerate(m.model.versions):
                yield version.version, m.location("versions", i, "version")
        elif isinstance(m.model, Sendout) and m.model.version is not None:
            yield m.model.version, m.location("version")


def _build(root: Path, config: WorkspaceConfig, config_doc: Document | None,
           manifests: list[LoadedManifest], files: tuple[str, ...], digest: str) -> Workspace:
    campaigns: dict[str, Campaign] = {}
    audiences: dict[str, Audience] = {}
    sendouts: dict[str, Sendout] = {}
    for m in manifests:
        if isinstance(m.model, Campaign):
            campaigns.setdefault(m.name, m.model)
        elif isinstance(m.model, Audience):
            audiences.setdefault(m.name, m.model)
        else:
            sendouts.setdefault(m.name, m.model)
    return Workspace(root, config, campaigns, audiences, sendouts, files, digest,
                     tuple(manifests), config_doc)


def _read(root: Path, name: str) -> bytes:
    try:
        return (root / name).read_bytes()
    except OSError as err:
        raise DeclareError(f"cannot read {name}: {err.strerror}",
                           location=Location(name)) from None


def _digest_file(digest: hashlib._Hash, name: str, raw: bytes) -> None:
    # The path is hashed too, so moving a manifest to another file changes the digest.
    digest.update(f"{name}\0{len(raw)}\0".encode())
    digest.update(raw)


__all__ = ["Workspace", "discover", "find_workspace", "load_config_only", "load_workspace"]
