"""The checked-in JSON Schemas are exactly what the models generate today."""

from __future__ import annotations

import json

import pytest

from connectly_declare.workspace.schema import SCHEMA_FILES, dump

from .conftest import REPO, RunCli


@pytest.mark.parametrize("kind", sorted(SCHEMA_FILES))
def test_checked_in_schema_is_fresh(kind: str) -> None:
    path = REPO / SCHEMA_FILES[kind]
    flag = "" if kind == "manifests" else f" --kind {kind}"
    assert path.read_text(encoding="utf-8") == dump(kind), (
        f"{SCHEMA_FILES[kind]} is stale: regenerate it with "
        f"`connectly-declare schema{flag} > {SCHEMA_FILES[kind]}` and commit it"
    )


def test_schema_command_prints_the_manifest_schema(run_cli: RunCli) -> None:
    result = run_cli("schema")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (REPO / "schema/manifests.schema.json").read_text(encoding="utf-8")
    schema = json.loads(result.stdout)
    assert {ref["$ref"] for ref in schema["oneOf"]} == {
        "#/$defs/Campaign", "#/$defs/Audience", "#/$defs/Sendout"}


def test_schema_command_prints_the_config_schema(run_cli: RunCli) -> None:
    result = run_cli("schema", "--kind", "config")
    assert result.returncode == 0, result.stderr
    assert "api_key_env" in json.loads(result.stdout)["properties"]


def test_example_manifests_point_editors_at_the_schema() -> None:
    for path in sorted((REPO / "campaigns").rglob("*.yaml")):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema="), path
        target = (path.parent / first.split("$schema=", 1)[1]).resolve()
        assert target.is_file(), f"{path}: {target} does not exist"
