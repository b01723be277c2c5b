"""JSON Schemas of the manifests and of `declare.yaml`, generated from the pydantic models.

The generated files are checked in under `schema/` so editors can validate manifests as
they are typed (`# yaml-language-server: $schema=../schema/manifests.schema.json`); a test
fails when they differ from a fresh generation. Regenerate with::

    connectly-declare schema > schema/manifests.schema.json
    connectly-declare schema --kind config > schema/declare.schema.json
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pydantic import TypeAdapter

from connectly_declare.workspace.config import WorkspaceConfig
from connectly_declare.workspace.manifests import Manifest

DIALECT = "https://json-schema.org/draft/2020-12/schema"


def manifests_schema() -> dict[str, Any]:
    """The schema one manifest document (Campaign, Audience or Sendout) must match."""
    body = TypeAdapter(Manifest).json_schema()
    return {
        "$schema": DIALECT,
        "title": "connectly-declare manifest",
        "description": "One document of a connectly-declare manifest file: a Campaign, "
                       "an Audience or a Sendout, chosen by `kind`.",
        **body,
    }


def config_schema() -> dict[str, Any]:
    """The schema of `declare.yaml`."""
    body = WorkspaceConfig.model_json_schema()
    return {"$schema": DIALECT, "title": "connectly-declare declare.yaml", **body}


SCHEMAS: dict[str, Callable[[], dict[str, Any]]] = {
    "manifests": manifests_schema,
    "config": config_schema,
}
# Where each schema is checked in, relative to the repository root.
SCHEMA_FILES = {"manifests": "schema/manifests.schema.json",
                "config": "schema/declare.schema.json"}


def dump(kind: str = "manifests") -> str:
    """The schema `kind` as the exact text of its checked-in file."""
    return json.dumps(SCHEMAS[kind](), indent=2, ensure_ascii=False) + "\n"


__all__ = ["SCHEMAS", "SCHEMA_FILES", "config_schema", "dump", "manifests_schema"]
