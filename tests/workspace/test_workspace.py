"""Finding and loading a workspace: upward search, -C, globs, the digest, locations."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from connectly_declare.errors import DeclareError, ManifestErrors
from connectly_declare.workspace.load import find_workspace, load_workspace
from connectly_declare.workspace.manifests import LocalSchedule

from .conftest import EXAMPLES, REPO, RunCli

MINIMAL = EXAMPLES / "positive" / "minimal"


@pytest.fixture
def example(tmp_path: Path) -> Path:
    root = tmp_path / "repo" / "campaigns"
    shutil.copytree(REPO / "campaigns", root)
    return root


def test_found_from_a_subfolder_like_git(example: Path) -> None:
    assert find_workspace(example / "sendouts") == example
    assert find_workspace(example / "data" / "customers.csv") == example
    assert load_workspace(example / "data").root == example


def test_no_workspace_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(DeclareError) as caught:
        find_workspace(tmp_path)
    assert "no declare.yaml in" in str(caught.value)
    assert "connectly-declare init" in caught.value.problem.hint


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DeclareError, match="does not exist"):
        find_workspace(tmp_path / "nope")


def test_example_workspace_contents() -> None:
    ws = load_workspace(REPO / "campaigns")
    assert ws.root == REPO / "campaigns"
    assert ws.config.business_id == "demo-business"
    assert ws.files == ("audiences.yaml", "campaigns.yaml", "sendouts/navidad.yaml",
                        "sendouts/spring-sale.yaml", "sendouts/vip.yaml")
    assert "campaña navidad 2027" in ws.campaigns
    # Sendouts in file order, then position in the file.
    assert list(ws.sendouts) == ["navidad-2027", "spring-sale", "spring-sale-staff-preview",
                                 "vip-early-access", "order-follow-up"]
    assert ws.sendouts["vip-early-access"].options.allow_multiple
    # a local-time schedule (10:00 in each recipient's zone), quiet hours and caps
    schedule = ws.sendouts["navidad-2027"].schedule
    assert isinstance(schedule, LocalSchedule) and schedule.local.hour == 10
    assert schedule.fallback == "Europe/Madrid"
    assert ws.config.quiet_hours is not None and ws.config.quiet_hours.start == "21:00"
    assert [c.as_tuple() for c in ws.config.frequency_cap] == [(1, 86400, "1 per 1d"),
                                                              (2, 604800, "2 per 7d")]
    assert ws.sendouts["order-follow-up"].exempt and ws.sendouts["vip-early-access"].priority


def test_location_of_nodes() -> None:
    ws = load_workspace(REPO / "campaigns")
    loc = ws.location("Sendout", "spring-sale", "variables", "first_name")
    text = (REPO / "campaigns" / loc.file).read_text(encoding="utf-8").splitlines()
    assert loc.file == "sendouts/spring-sale.yaml"
    assert text[loc.line - 1][loc.col - 1:].startswith('"{{ recipient.first_name }}"')
    csv = ws.location("Audience", "customers", "sources", 0, "csv")
    line = (REPO / "campaigns/audiences.yaml").read_text(encoding="utf-8").splitlines()
    assert line[csv.line - 1][csv.col - 1:].startswith("data/customers.csv")
    # Absent node: its deepest existing ancestor (here the document itself).
    start = ws.location("Sendout", "navidad-2027")
    assert ws.location("Sendout", "navidad-2027", "max_recipients") == start
    assert ws.location("Sendout", "no-such-sendout").file == ""
    assert ws.config_location("business_id").line > 1


def test_digest_covers_config_manifests_and_their_paths(example: Path) -> None:
    first = load_workspace(example).digest
    assert load_workspace(example).digest == first
    (example / "declare.yaml").write_text(
        (example / "declare.yaml").read_text(encoding="utf-8") + "\n", encoding="utf-8")
    second = load_workspace(example).digest
    assert second != first
    (example / "sendouts" / "vip.yaml").rename(example / "sendouts" / "vip2.yaml")
    assert load_workspace(example).digest != second


def test_globs_exclude_and_hidden_folders(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLES / "positive" / "all-features", tmp_path / "ws")
    ws = load_workspace(tmp_path / "ws")
    # drafts/ is excluded by declare.yaml, .scratch/ is hidden, .yml is globbed.
    assert ws.files == ("audiences/members.yaml", "campaigns.yml", "sendouts.yaml")


def test_manifest_globs_must_stay_inside(tmp_path: Path) -> None:
    shutil.copytree(MINIMAL, tmp_path, dirs_exist_ok=True)
    (tmp_path / "declare.yaml").write_text("manifests:\n  - '*.yaml'\n  - ../**/*.yaml\n",
                                           encoding="utf-8")
    with pytest.raises(ManifestErrors) as caught:
        load_workspace(tmp_path)
    assert [str(p) for p in caught.value.problems] == [
        "declare.yaml:3:5: manifests[1]: '../**/*.yaml' must be a relative glob inside the "
        "workspace, e.g. sendouts/**/*.yaml"]


def test_empty_declare_yaml_means_defaults(tmp_path: Path) -> None:
    shutil.copytree(MINIMAL, tmp_path, dirs_exist_ok=True)
    (tmp_path / "declare.yaml").write_text("# all defaults\n", encoding="utf-8")
    ws = load_workspace(tmp_path)
    assert ws.config.batch_size == 100
    assert ws.files == ("welcome.yaml",)


def test_validate_from_inside_and_with_C(example: Path, run_cli: RunCli) -> None:
    inside = run_cli("validate", cwd=example / "sendouts")
    assert inside.returncode == 0, inside.stderr
    assert inside.stdout == ("valid: 4 campaigns, 4 audiences, 5 sendouts (1 disabled) "
                             "in 5 files\n")
    outside = run_cli("-C", "campaigns", "validate", cwd=example.parent)
    assert (outside.returncode, outside.stdout) == (0, inside.stdout)


def test_validate_without_a_workspace(tmp_path: Path, run_cli: RunCli) -> None:
    result = run_cli("validate", cwd=tmp_path)
    assert result.returncode == 1
    assert "no declare.yaml" in result.stderr
    assert "connectly-declare init" in result.stderr
    assert "Traceback" not in result.stderr
