"""docs/architecture.md matches the package: it names every module, draws every
DeclareError subclass (as errors.py's docstring does), and lists the layers in the order
tests/test_layering.py checks."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import connectly_declare
from connectly_declare import errors
from tests.test_layering import LAYERS

REPO = Path(__file__).resolve().parents[1]
DOC = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")


def test_every_module_is_named_in_the_package_map() -> None:
    package = REPO / "connectly_declare"
    modules = sorted(p.relative_to(package).as_posix() for p in package.rglob("*.py")
                     if p.name != "__init__.py" or p.parent == package)
    missing = [m for m in modules if f"`{m}`" not in DOC]
    assert missing == [], f"not in docs/architecture.md's package map: {missing}"
    folders = sorted(p.name for p in package.iterdir() if (p / "__init__.py").exists())
    assert [f for f in folders if f"`{f}/`" not in DOC] == []


def _declare_errors() -> set[str]:
    for info in pkgutil.walk_packages(connectly_declare.__path__, "connectly_declare."):
        importlib.import_module(info.name)
    found: set[str] = set()
    todo: list[type] = [errors.DeclareError]
    while todo:
        cls = todo.pop()
        found.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return found


def test_the_error_tree_names_every_declare_error() -> None:
    tree = DOC.split("## Errors", 1)[1]
    docstring = errors.__doc__ or ""
    for name in sorted(_declare_errors()):
        assert re.search(rf"[├└]── {name}\b|^{name}\b", tree, re.M), f"{name} not in the doc"
        assert re.search(rf"[├└]── {name}\b|^    {name}\b", docstring, re.M), \
            f"{name} not in errors.py's docstring"


def test_the_layers_are_listed_in_the_checked_order() -> None:
    section = DOC.split("## Layering", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^\d+\. (?:base|`(\w+)`)", section, re.M)
    assert ["base" if not name else name for name in listed] == list(LAYERS[:-1])
