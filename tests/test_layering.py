"""The package's layering, checked from the source: every module's imports (`import` and
`from ... import`, at any depth, lazy and TYPE_CHECKING ones included) are parsed with
`ast` and held against the rules of docs/architecture.md ("Layering"). A new package fails
here until it is placed in LAYERS (and in the docs).

Beside it: tests/workspace/test_library.py::test_only_cli_imports_click.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Set
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "connectly_declare"

# Modules that import nothing of ours above them: the shared vocabulary every layer uses.
BASE = frozenset({
    "connectly_declare", "connectly_declare.errors", "connectly_declare.entry",
    "connectly_declare.gcpause", "connectly_declare.clock",
    "connectly_declare.words",  # counts in words: `1 entry`, `12,345 entries`
    "connectly_declare.endpoint",  # a base URL's host and loopback-ness, for people
    "connectly_declare.seen",  # compact "seen before?" sets: audiences and the plan use them
    "connectly_declare.report.escape",  # text safety: the workspace's messages use it too
    "connectly_declare.policy.localtime",  # clock-time parsing: manifests validate with it
})
# Lowest first: a layer may import BASE, itself and the layers before it, never after.
LAYERS = ("base", "templates", "workspace", "ledger", "policy", "audience", "entries", "plan",
          "report", "apply", "sim", "commands", "cli", "__main__")
# (importer, imported) pairs refused outright, whatever the order says.
FORBIDDEN = {
    ("plan", "apply"): "plan never imports apply (the plan is data; apply reads it)",
    ("ledger", "plan"): "the ledger never imports the plan",
    ("ledger", "apply"): "the ledger never imports apply",
    ("ledger", "entries"): "the ledger never imports entries",
    ("workspace", "ledger"): "the workspace never imports the ledger",
    ("workspace", "plan"): "the workspace never imports the plan",
    ("sim", "apply"): "the simulator never imports the client (apply)",
    ("sim", "plan"): "the simulator never imports the plan",
    ("sim", "ledger"): "the simulator never imports the ledger",
}
ONLY_CLI_IMPORTS = {"commands": {"cli", "commands"}}


def module_name(path: Path, top: Path = REPO) -> str:
    """`top`/connectly_declare/plan/make.py -> connectly_declare.plan.make"""
    parts = list(path.relative_to(top).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, top: Path = REPO) -> set[str]:
    """Every name of the package `path` imports: X for `import X`, X and X.name for
    `from X import name` (relative imports resolved)."""
    name = module_name(path, top)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            found.add(source)
            found.update(f"{source}.{alias.name}" for alias in node.names)
    return {m for m in found if m == PACKAGE or m.startswith(PACKAGE + ".")}


def import_map(root: Path = REPO / PACKAGE) -> dict[str, set[str]]:
    """module -> the modules of ours it imports (only names that are modules)."""
    paths = sorted(root.rglob("*.py"))
    top = root.parent
    modules = {module_name(p, top) for p in paths}
    # `from connectly_declare.plan.make import Plan` names connectly_declare.plan.make.Plan:
    # keep the longest prefix that is a module.
    def known(name: str) -> str:
        while name not in modules and "." in name:
            name = name.rpartition(".")[0]
        return name
    return {module_name(p, top): {known(m) for m in imported_modules(p, top)}
            - {module_name(p, top)} for p in paths}


def layer(module: str) -> str:
    if module in BASE:
        return "base"
    return module.split(".")[1]


def violations(imports: Mapping[str, Set[str]]) -> list[str]:
    """Every import that breaks a rule, as "importer -> imported: why"."""
    found = []
    for importer, targets in sorted(imports.items()):
        mine = layer(importer)
        for imported in sorted(targets):
            theirs = layer(imported)
            if mine == theirs or theirs == "base":
                continue
            why = FORBIDDEN.get((mine, theirs))
            if why is None and theirs in ONLY_CLI_IMPORTS and mine not in ONLY_CLI_IMPORTS[theirs]:
                why = f"only {' and '.join(sorted(ONLY_CLI_IMPORTS[theirs]))} import {theirs}"
            if why is None and mine in LAYERS and theirs in LAYERS \
                    and LAYERS.index(theirs) > LAYERS.index(mine):
                why = f"{mine} is below {theirs} in the package order"
            if why is None and (mine not in LAYERS or theirs not in LAYERS):
                why = "a package not placed in LAYERS (tests/test_layering.py, " \
                      "docs/architecture.md)"
            if why is not None:
                found.append(f"{importer} -> {imported}: {why}")
    return found


def test_the_package_keeps_its_layering() -> None:
    imports = import_map()
    assert len(imports) > 50  # the parse found the package
    assert "connectly_declare.workspace.config" in imports["connectly_declare.plan.model"]
    assert violations(imports) == []


def test_every_package_is_placed() -> None:
    packages = {layer(m) for m in import_map()}
    assert packages <= set(LAYERS), sorted(packages - set(LAYERS))


def test_base_modules_import_only_base_modules() -> None:
    imports = import_map()
    for module in BASE:
        assert imports[module] <= BASE, (module, imports[module] - BASE)


@pytest.mark.parametrize(("importer", "imported", "why"), [
    ("connectly_declare.plan.make", "connectly_declare.apply.engine", "plan never imports apply"),
    ("connectly_declare.ledger.fold", "connectly_declare.plan.model", "the ledger never"),
    ("connectly_declare.ledger.local", "connectly_declare.entries.stream", "never imports entries"),
    ("connectly_declare.workspace.load", "connectly_declare.ledger.base", "the workspace never"),
    ("connectly_declare.workspace.load", "connectly_declare.plan.make", "the workspace never"),
    ("connectly_declare.report.format", "connectly_declare.commands.plan",
     "only cli and commands import commands"),
    ("connectly_declare.sim.app", "connectly_declare.apply.client", "never imports the client"),
    ("connectly_declare.sim.app", "connectly_declare.ledger.base", "simulator never imports"),
    ("connectly_declare.templates.check", "connectly_declare.workspace.config",
     "templates is below workspace"),
    ("connectly_declare.audience.resolve", "connectly_declare.report.format",
     "audience is below report"),
    ("connectly_declare.errors", "connectly_declare.workspace.config", "base is below"),
    ("connectly_declare.newthing.x", "connectly_declare.plan.make", "not placed in LAYERS"),
])
def test_the_checker_fails_a_broken_import(importer: str, imported: str, why: str) -> None:
    clean = {"connectly_declare.plan.make": {"connectly_declare.workspace.config",
                                             "connectly_declare.errors"},
             "connectly_declare.cli": {"connectly_declare.commands.apply"},
             "connectly_declare.report.format": {"connectly_declare.plan.make"}}
    assert violations(clean) == []
    broken = {**clean, importer: {imported}}
    [found] = violations(broken)
    assert found.startswith(f"{importer} -> {imported}: ") and why in found, found


def test_the_parse_sees_lazy_relative_and_type_checking_imports(tmp_path: Path) -> None:
    package = tmp_path / PACKAGE
    (package / "plan").mkdir(parents=True)
    (package / "apply").mkdir()
    for init in (package / "__init__.py", package / "plan" / "__init__.py",
                 package / "apply" / "__init__.py", package / "apply" / "engine.py"):
        init.write_text("")
    (package / "plan" / "make.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from ..apply import engine\n"
        "def f():\n    import connectly_declare.apply.engine\n")
    imports = import_map(package)
    assert imports["connectly_declare.plan.make"] == {"connectly_declare.apply",
                                                      "connectly_declare.apply.engine"}
    assert violations(imports) == [
        "connectly_declare.plan.make -> connectly_declare.apply: plan never imports apply "
        "(the plan is data; apply reads it)",
        "connectly_declare.plan.make -> connectly_declare.apply.engine: plan never imports "
        "apply (the plan is data; apply reads it)"]
