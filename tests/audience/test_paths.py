"""Data files are read only inside the workspace; every refusal names the manifest line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from connectly_declare.audience.paths import resolve_data_path
from connectly_declare.errors import DeclareError, Location

WHERE = Location("audiences.yaml", 7, 11)


def refused(root: Path, name: str) -> str:
    with pytest.raises(DeclareError) as info:
        resolve_data_path(root, name, WHERE)
    assert info.value.problem.location == WHERE
    return str(info.value)


def test_a_relative_file_inside_resolves(root: Path) -> None:
    (root / "data" / "vip.csv").write_text("phone\n")
    assert resolve_data_path(root, "data/vip.csv", WHERE) == (root / "data/vip.csv").resolve()
    assert resolve_data_path(root, "data\\vip.csv", WHERE) == (root / "data/vip.csv").resolve()
    assert resolve_data_path(root, "data/../data/vip.csv", WHERE).name == "vip.csv"


@pytest.mark.parametrize(("name", "says"), [
    ("/etc/passwd", "is absolute"),
    ("~/secrets.csv", "home folder"),
    ("~root/x.csv", "home folder"),
    ("C:\\Users\\me\\vip.csv", "Windows drive"),
    ("c:vip.csv", "Windows drive"),
    ("\\\\server\\share\\vip.csv", "Windows drive or network path"),
    ("../outside.csv", "leads outside the workspace with .."),
    ("data/../../outside.csv", "leads outside the workspace"),
    ("data/missing.csv", "does not exist"),
    ("data", "is not a regular file"),
    (" ", "empty file path"),
])
def test_paths_that_are_refused(root: Path, name: str, says: str) -> None:
    (root.parent / "outside.csv").write_text("phone\n")
    assert says in refused(root, name)


def test_a_symlink_leading_outside_is_refused(root: Path) -> None:
    secret = root.parent / "secret.csv"
    secret.write_text("phone\n+16505551234\n")
    (root / "data" / "link.csv").symlink_to(secret)
    assert "leads outside the workspace through a symlink" in refused(root, "data/link.csv")


def test_a_symlinked_folder_leading_outside_is_refused(root: Path) -> None:
    outside = root.parent / "elsewhere"
    outside.mkdir()
    (outside / "x.csv").write_text("phone\n")
    os.symlink(outside, root / "shared")
    assert "outside the workspace" in refused(root, "shared/x.csv")


def test_a_symlink_inside_the_workspace_is_fine(root: Path) -> None:
    (root / "data" / "real.csv").write_text("phone\n")
    (root / "data" / "alias.csv").symlink_to(root / "data" / "real.csv")
    assert resolve_data_path(root, "data/alias.csv", WHERE).name == "real.csv"
