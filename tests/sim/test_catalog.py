"""Reading the simulator's catalog, and building one from plain data or a workspace."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connectly_declare.errors import DeclareError, ManifestErrors
from connectly_declare.sim.catalog import catalog_from_campaigns, derived_id, load_catalog
from connectly_declare.sim.workspace import catalog_from_workspace
from connectly_declare.workspace.load import load_workspace
from tests.sim.conftest import PAGE_CATALOG

REPO = Path(__file__).resolve().parents[2]


def test_defaults_fill_ids_variables_and_a_version(tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text("""
businesses:
  - id: b
    api_keys: [k]
    campaigns:
      - name: two versions
        versions:
          - {label: v1, variables: [a]}
          - {label: v2, id: fixed-id, variables: [a, b]}
      - name: no versions
        variables: [x]
        state: draft
""")
    [business] = load_catalog(path).businesses
    two, bare = business.campaigns
    assert two.id == derived_id("campaign", "two versions")
    assert two.versions[0].id == derived_id("version", two.id, "v1")
    assert two.versions[1].id == "fixed-id"
    assert two.variables == ["a", "b"]  # the latest version's
    assert two.state == "finalized"
    assert [(v.label, v.variables) for v in bare.versions] == [("v1", ["x"])]
    assert bare.state == "draft"
    # the same file gives the same ids on every load
    assert load_catalog(path) == load_catalog(path)


def test_json_and_yaml_read_alike(tmp_path: Path) -> None:
    yaml_catalog = load_catalog(PAGE_CATALOG)
    as_json = tmp_path / "catalog.json"
    as_json.write_text(json.dumps(yaml_catalog.model_dump()))
    assert load_catalog(as_json) == yaml_catalog


@pytest.mark.parametrize(("text", "messages"), [
    ("businesses: [", ["catalog.yaml:1:", "not valid YAML"]),
    ("businesses:\n  - id: b\n", ["catalog.yaml: businesses.0.api_keys: Field required"]),
    ("businesses:\n  - {id: b, api_keys: [k], campaigns: [{name: c, state: live}]}\n",
     ["businesses.0.campaigns.0.state: Input should be 'finalized' or 'draft'"]),
    ("businesses:\n  - {id: b, api_keys: [k], campaigns: [{name: c}, {name: c}]}\n",
     ["campaign names listed twice in business 'b': ['c']"]),
    ("businesses:\n  - {id: b, api_keys: [k], campaigns: [{name: c, versions: "
     "[{label: v1}, {label: v1}]}]}\n", ["version 'v1' is listed twice in campaign 'c'"]),
    ("businesses:\n  - {id: b, api_keys: [k]}\n  - {id: b, api_keys: [k]}\n",
     ["business ids listed twice: ['b']"]),
])
def test_a_bad_catalog_names_the_file_and_the_problem(tmp_path: Path, text: str,
                                                      messages: list[str]) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(text)
    with pytest.raises(DeclareError) as raised:
        load_catalog(path)
    shown = "\n".join(str(p) for p in raised.value.problems)
    assert str(path) in shown
    for message in messages:
        assert message in shown.replace(str(tmp_path) + "/", "")


def test_bad_json_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "catalog.json"
    path.write_text('{"businesses":\n  [}')
    with pytest.raises(DeclareError, match=r"catalog.json:2:4: the simulator catalog is not"):
        load_catalog(path)


def test_a_missing_file_is_a_declare_error(tmp_path: Path) -> None:
    with pytest.raises(DeclareError, match="cannot read the simulator catalog"):
        load_catalog(tmp_path / "nope.yaml")


def test_catalog_from_plain_data() -> None:
    catalog = catalog_from_campaigns("biz", "key", [
        ("spring", [("v1", ["a"]), ("v2", ["a", "b"])], ["a"]),
        ("plain", [], []),
    ])
    [business] = catalog.businesses
    assert (business.id, business.api_keys) == ("biz", ["key"])
    spring, plain = business.campaigns
    assert [(v.label, v.variables) for v in spring.versions] == [("v1", ["a"]), ("v2", ["a", "b"])]
    assert spring.variables == ["a"]  # given, not the latest version's
    assert [v.label for v in plain.versions] == ["v1"]


def test_invalid_plain_data_is_refused() -> None:
    with pytest.raises(ManifestErrors, match="version 'v1' is listed twice in campaign 'c'"):
        catalog_from_campaigns("biz", "key", [("c", [("v1", []), ("v1", [])], [])])


def test_catalog_from_the_example_workspace() -> None:
    workspace = load_workspace(REPO / "campaigns")
    catalog = catalog_from_workspace(workspace, "demo-key", "ws-business")
    [business] = catalog.businesses
    assert business.id == "ws-business"
    assert business.api_keys == ["demo-key"]
    assert {c.name for c in business.campaigns} == set(workspace.campaigns)
    for campaign in business.campaigns:
        declared = workspace.campaigns[campaign.name]
        assert [(v.label, v.variables) for v in campaign.versions] == [
            (v.version, v.variables) for v in declared.versions]
        # the manifest's unversioned variables when it sets them, else the latest version's
        expected = (declared.variables if "variables" in declared.model_fields_set
                    else declared.versions[-1].variables)
        assert campaign.variables == expected == declared.variables_for(None)


def test_the_readme_catalog_example_loads(tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Simulator", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "sim-catalog.yaml"
    path.write_text(example, encoding="utf-8")
    [business] = load_catalog(path).businesses
    assert [c.name for c in business.campaigns] == ["spring sale 2027", "campaña navidad 2027"]
