"""Good and bad example manifests side by side (tests/workspace/example-files): every bad
one is rejected with exactly its expected FILE:LINE:COL lines, every good one loads and
matches the checked-in JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from connectly_declare.errors import ManifestErrors
from connectly_declare.workspace.load import load_workspace
from connectly_declare.workspace.yamlmarks import parse

from .conftest import REPO, RunCli, expected_lines, materialise, negative_cases, positive_cases

NEGATIVE = negative_cases()
POSITIVE = positive_cases()
# Rejected through the real CLI as well: one case of each family (YAML, shape, references).
THROUGH_CLI = {"yaml-syntax.yaml", "alias-bomb.yaml", "not-utf8.yaml", "shape-errors.yaml",
               "duplicate-names", "variables-mismatch.yaml", "bad-config", "empty-file",
               "secret-in-env-name", "rollout-slips.yaml"}


def _schema(name: str) -> jsonschema.protocols.Validator:
    schema = json.loads((REPO / "schema" / name).read_text(encoding="utf-8"))
    validator_cls = jsonschema.validators.validator_for(schema)
    validator_cls.check_schema(schema)
    return validator_cls(schema)


def test_every_negative_case_has_an_expectation() -> None:
    assert len(NEGATIVE) >= 15
    for case in NEGATIVE:
        assert expected_lines(case), f"{case.name}: write its .expected file"


@pytest.mark.parametrize("case", NEGATIVE, ids=lambda p: p.name)
def test_negative_case_reports_exactly_its_problems(case: Path, tmp_path: Path) -> None:
    root = materialise(case, tmp_path / "ws")
    with pytest.raises(ManifestErrors) as caught:
        load_workspace(root)
    assert [str(p) for p in caught.value.problems] == expected_lines(case)


@pytest.mark.parametrize("case", sorted(c for c in NEGATIVE if c.name in THROUGH_CLI),
                         ids=lambda p: p.name)
def test_validate_command_rejects(case: Path, tmp_path: Path, run_cli: RunCli) -> None:
    root = materialise(case, tmp_path / "ws")
    result = run_cli("-C", str(root), "validate")
    expected = expected_lines(case)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.splitlines()
    assert lines[:-1] == expected
    assert lines[-1].startswith(f"{len(expected)} problem")
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_a_secret_in_declare_yaml_is_never_echoed(tmp_path: Path, run_cli: RunCli) -> None:
    case = next(c for c in NEGATIVE if c.name == "secret-in-env-name")
    result = run_cli("-C", str(materialise(case, tmp_path / "ws")), "validate")
    assert result.returncode == 1
    assert "api_key_env" in result.stderr
    assert "sk-live" not in result.stdout + result.stderr


def test_problems_are_sorted_by_file_and_line(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    for case in NEGATIVE:
        if case.is_file() and case.name not in ("not-utf8.yaml",):
            materialise(case, root)
    with pytest.raises(ManifestErrors) as caught:
        load_workspace(root)
    locations = [(p.location.file, p.location.line, p.location.col)
                 for p in caught.value.problems]
    assert locations == sorted(locations)
    assert len({loc[0] for loc in locations}) > 5  # all files reported in one run


@pytest.mark.parametrize("case", POSITIVE, ids=lambda p: p.name)
def test_positive_case_loads(case: Path) -> None:
    ws = load_workspace(case)
    assert ws.files
    assert ws.sendouts


def _documents(root: Path, files: tuple[str, ...]) -> list[tuple[str, object]]:
    out = []
    for name in files:
        docs, problems = parse((root / name).read_text(encoding="utf-8"), name)
        assert not problems
        out.extend((f"{name}#{d.index}", d.data) for d in docs)
    return out


@pytest.mark.parametrize("root", [*POSITIVE, REPO / "campaigns"], ids=lambda p: p.name)
def test_good_manifests_match_the_checked_in_schema(root: Path) -> None:
    """jsonschema is an independent validator: the models and the published schema agree."""
    manifests, config = _schema("manifests.schema.json"), _schema("declare.schema.json")
    ws = load_workspace(root)
    documents = _documents(root, ws.files)
    assert len(documents) == len(ws.campaigns) + len(ws.audiences) + len(ws.sendouts)
    for where, data in documents:
        errors = [e.message for e in manifests.iter_errors(data)]
        assert errors == [], where
    (config_doc,), _ = parse((root / "declare.yaml").read_text(encoding="utf-8"), "declare.yaml")
    assert [e.message for e in config.iter_errors(config_doc.data)] == []


def test_schema_rejects_what_the_models_reject() -> None:
    manifests = _schema("manifests.schema.json")
    bad = {"kind": "Sendout", "name": "x", "campaign": "c", "audience": "a",
           "options": {"if_duplicate_check_unspecified": "allow_many"}}
    assert list(manifests.iter_errors(bad))
    assert list(manifests.iter_errors({"kind": "Sendout", "name": "x", "campaign": "c",
                                       "audience": "a", "shedule": "2027-01-01"}))
