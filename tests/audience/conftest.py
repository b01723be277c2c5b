"""Fixtures for audiences, templates and entries: real files in a tmp workspace, models
built from plain dicts, and a locator that knows where each manifest node "is"."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from connectly_declare.audience.resolve import AudienceInputs
from connectly_declare.errors import Location
from connectly_declare.workspace.manifests import Audience, Sendout

MANIFEST = "audiences.yaml"


def locate(*path: Any) -> Location:
    """A stand-in for Workspace.location: every node on a line derived from its path, so a
    test can assert the exact manifest line an error names."""
    return Location(MANIFEST, 10 + len(path), 3)


def audience(name: str = "aud", **spec: Any) -> Audience:
    return Audience.model_validate({"kind": "Audience", "name": name, **spec})


def sendout(**fields: Any) -> Sendout:
    base: dict[str, Any] = {"kind": "Sendout", "name": "spring", "campaign": "spring sale",
                            "audience": "aud"}
    return Sendout.model_validate({**base, **fields})


@pytest.fixture
def root(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    (ws / "data").mkdir(parents=True)
    return ws


@pytest.fixture
def write(root: Path) -> Callable[[str, str | bytes], Path]:
    def _write(name: str, content: str | bytes) -> Path:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8", newline="")
        return path

    return _write


@pytest.fixture
def inputs(root: Path) -> Callable[..., AudienceInputs]:
    def _inputs(*audiences: Audience, region: str | None = "US") -> AudienceInputs:
        return AudienceInputs(root, region, {a.name: a for a in audiences}, locate)

    return _inputs
