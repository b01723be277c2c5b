"""GitHub Actions review: annotation escaping, the job summary, the plan comment marker,
and `validate` annotating a broken workspace when run as a real subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from connectly_declare.errors import Location, Problem
from connectly_declare.report.github import (
    COMMENT_LIMIT,
    annotation,
    append_step_summary,
    comment_body,
    comment_marker,
    escape_data,
    escape_property,
    in_github_actions,
    repo_path,
    write_comment,
)

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "campaigns"


def test_escaping_follows_the_runner_rules() -> None:
    assert escape_data("50% off\r\nnext") == "50%25 off%0D%0Anext"
    assert escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"


def test_an_annotation_names_file_line_col_and_cannot_inject_a_command() -> None:
    problem = Problem(Location("sendouts/a,b.yaml", 12, 3), "bad value\n::error::injected",
                      hint="use 100%")
    line = annotation(problem, title="connectly-declare", environ={})
    assert line == ("::error file=sendouts/a%2Cb.yaml,line=12,col=3,title=connectly-declare"
                    "::bad value%0A::error::injected (use 100%25)")
    assert "\n" not in line
    assert annotation(Problem(Location(), "no file"), environ={}) == "::error::no file"


def test_paths_are_made_relative_to_the_checkout(tmp_path: Path) -> None:
    workspace = tmp_path / "repo" / "campaigns"
    workspace.mkdir(parents=True)
    env = {"GITHUB_WORKSPACE": str(tmp_path / "repo")}
    assert repo_path("sendouts/x.yaml", workspace, env) == "campaigns/sendouts/x.yaml"
    assert repo_path("sendouts/x.yaml", workspace, {}) == "sendouts/x.yaml"
    assert in_github_actions({"GITHUB_ACTIONS": "true"})
    assert not in_github_actions({})


def test_the_step_summary_is_appended(tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("# earlier step\n", encoding="utf-8")
    assert append_step_summary("## Plan\nsend 3", {"GITHUB_STEP_SUMMARY": str(summary)})
    assert append_step_summary("## Plan\nsend 3", {}) is None
    assert summary.read_text(encoding="utf-8") == "# earlier step\n## Plan\nsend 3\n\n"


def test_the_comment_starts_with_a_stable_marker_and_stays_under_the_limit(
        tmp_path: Path) -> None:
    assert comment_marker("production") == "<!-- connectly-declare:plan:production -->"
    assert comment_marker(None) == "<!-- connectly-declare:plan:default -->"
    body = comment_body("x" * 200_000, "staging")
    assert body.startswith("<!-- connectly-declare:plan:staging -->\n")
    assert len(body) <= COMMENT_LIMIT and "truncated" in body
    out = write_comment(tmp_path / "comment.md", "## Plan", "staging")
    assert out.read_text(encoding="utf-8") == (
        "<!-- connectly-declare:plan:staging -->\n## Plan\n")
    assert [p.name for p in tmp_path.iterdir()] == ["comment.md"]


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    full.update(env)
    return subprocess.run([sys.executable, "-m", "connectly_declare", *args], cwd=cwd,
                          env=full, capture_output=True, text=True, timeout=120)


def test_validate_annotates_problems_in_github_actions(tmp_path: Path) -> None:
    workspace = tmp_path / "repo" / "campaigns"
    shutil.copytree(EXAMPLE, workspace, ignore=shutil.ignore_patterns(".declare"))
    broken = workspace / "sendouts" / "navidad.yaml"
    broken.write_text(broken.read_text(encoding="utf-8").replace(
        "audience: spanish-speakers", "audience: nobody-by-this-name"), encoding="utf-8")
    gha = {"GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(tmp_path / "repo")}
    result = _run(["validate"], workspace, gha)
    assert result.returncode == 1
    lines = [ln for ln in result.stdout.splitlines() if ln.startswith("::error ")]
    assert lines, result.stdout + result.stderr
    assert lines[0].startswith("::error file=campaigns/sendouts/navidad.yaml,line=")
    assert "nobody-by-this-name" in lines[0]
    # Outside GitHub Actions the same run prints no workflow commands.
    plain = _run(["validate"], workspace, {})
    assert plain.returncode == 1 and "::error" not in plain.stdout + plain.stderr


def test_other_errors_are_annotated_too(tmp_path: Path) -> None:
    result = _run(["validate"], tmp_path, {"GITHUB_ACTIONS": "true"})
    assert result.returncode == 1
    assert result.stdout.startswith("::error")
    assert "Traceback" not in result.stderr


def test_annotations_escape_controls_bidi_and_escape_sequences_like_stderr() -> None:
    # a regression: ESC, BEL and U+202E once reached `::error` lines raw
    problem = Problem(Location("m.yaml", 3, 1), "unknown field 'a\x1b[2J\x07\u202eb\x9b'",
                      hint="x\u2066y")
    line = annotation(problem, title="t\x1b]0;x\x07", environ={})
    assert line == ("::error file=m.yaml,line=3,col=1,title=t\\x1b]0;x\\x07"
                    "::unknown field 'a\\x1b[2J\\x07\\u202eb\\x9b' (x\\u2066y)")
    for raw in ("\x1b", "\x07", "\u202e", "\x9b", "\u2066"):
        assert raw not in line
