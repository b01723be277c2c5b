"""`connectly-declare render`, run as a subprocess on a real workspace on disk."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

CONFIG = "version: 1\nbusiness_id: b1\ndefault_region: US\ntemplate_env: [STORE]\n"
MANIFESTS = """\
kind: Campaign
name: spring sale
versions:
  - version: v1
    variables: [first_name, code, store]
---
kind: Audience
name: customers
sources:
  - csv: data/customers.csv
    on_invalid: skip
exclude:
  - csv: data/optout.csv
---
kind: Sendout
name: spring
campaign: spring sale
version: v1
audience: customers
schedule: 2030-03-01T09:00:00+01:00
vars:
  prefix: SPRING
variables:
  first_name: "{{ recipient.first_name }}"
  code: "{{ vars.prefix }}-{{ recipient.client }}"
  store: "{{ env.STORE }}"
"""
CUSTOMERS = ("phone,first_name\n+16505551234,Ana\n(650) 555-1235,Bo\n+1 650 555 1234,Dup\n"
             "not a number,X\n+16505551236,Chen\n+16505551237,\u202eEvil\n")


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    (tmp_path / "declare.yaml").write_text(CONFIG)
    (tmp_path / "manifests.yaml").write_text(MANIFESTS)
    (tmp_path / "data" / "customers.csv").write_text(CUSTOMERS, encoding="utf-8")
    (tmp_path / "data" / "optout.csv").write_text("phone\n650-555-1236\n")
    return tmp_path


def run(workspace: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "connectly_declare", "-C", str(workspace), "render", *args],
        capture_output=True, text=True, encoding="utf-8", timeout=60,
        env={"STORE": "Main St", "PATH": "/usr/bin:/bin"},
    )


def test_render_prints_masked_json_lines_and_a_summary(workspace: Path) -> None:
    out = run(workspace, "spring", "--limit", "0")
    assert out.returncode == 0, out.stderr
    items = [json.loads(line) for line in out.stdout.splitlines()]
    assert [i["client"] for i in items] == ["+1650•••1234", "+1650•••1235", "+1650•••1237"]
    assert items[0]["variables"] == {"first_name": "Ana", "code": "SPRING-+1650•••1234",
                                     "store": "Main St"}
    assert items[0]["scheduledAt"] == "2030-03-01T09:00:00+01:00"
    assert items[0]["campaignName"] == "spring sale" and items[0]["campaignVersion"] == "v1"
    assert items[0]["source"] == "data/customers.csv:2"
    assert "6505551234" not in out.stdout and "6505551234" not in out.stderr
    assert "\u202e" not in out.stdout and "\\u202e" in out.stdout  # inert, still visible
    assert items[2]["variables"]["first_name"] == "\u202eEvil"  # same data once parsed
    assert "3 entries: 6 read, 1 duplicates dropped, 1 excluded" in out.stderr
    assert "skipped data/customers.csv:5: invalid phone number" in out.stderr


def test_show_recipients_and_limit(workspace: Path) -> None:
    out = run(workspace, "spring", "--limit", "1", "--show-recipients")
    assert out.returncode == 0, out.stderr
    (line,) = out.stdout.splitlines()
    assert json.loads(line)["client"] == "+16505551234"
    assert "not read to its end" in out.stderr


def test_a_bad_row_is_a_located_error_without_traceback(workspace: Path) -> None:
    manifests = (workspace / "manifests.yaml").read_text().replace("    on_invalid: skip\n", "")
    (workspace / "manifests.yaml").write_text(manifests)
    out = run(workspace, "spring", "--limit", "0")
    assert out.returncode == 1
    assert out.stderr.startswith("data/customers.csv:5: invalid phone number")
    assert "source at manifests.yaml:10:" in out.stderr and "on_invalid: skip" in out.stderr
    assert "Traceback" not in out.stderr
    # render streams: the entries made before the bad row were written, as whole lines
    sources = [json.loads(line)["source"] for line in out.stdout.splitlines()]
    assert sources == ["data/customers.csv:2", "data/customers.csv:3"]


def test_unknown_sendout_and_unlisted_env(workspace: Path) -> None:
    out = run(workspace, "autumn")
    assert out.returncode == 1 and "no sendout named 'autumn'" in out.stderr
    assert "known sendouts: spring" in out.stderr
    (workspace / "declare.yaml").write_text(CONFIG.replace("template_env: [STORE]\n", ""))
    out = run(workspace, "spring")
    # (the workspace loader may refuse it first; either way it is named at its line)
    assert out.returncode == 1 and "env.STORE is not" in out.stderr
    assert "template_env" in out.stderr
    assert out.stderr.startswith("manifests.yaml:26:") and "Traceback" not in out.stderr


def test_workspace_wrappers_on_a_loaded_workspace(workspace: Path) -> None:
    from connectly_declare.audience.resolve import AudienceStats, audience_recipients
    from connectly_declare.entries.stream import iter_entries
    from connectly_declare.workspace.load import load_workspace

    ws = load_workspace(workspace)
    stats = AudienceStats()
    clients = [r.client for r in audience_recipients(ws, "customers", stats=stats)]
    assert clients == ["+16505551234", "+16505551235", "+16505551237"]
    assert (stats.invalid_skipped, stats.excluded, stats.duplicates_dropped) == (1, 1, 1)
    entries = list(iter_entries(ws, ws.sendouts["spring"], environ={"STORE": "X"}))
    assert [e.variables["store"] for e in entries] == ["X", "X", "X"]
    assert entries[1].source == "data/customers.csv:3"


def test_sandbox_violation_names_the_template_line_and_the_row(workspace: Path) -> None:
    manifests = (workspace / "manifests.yaml").read_text().replace(
        '"{{ recipient.first_name }}"', '"{{ recipient.first_name.__class__.__mro__ }}"')
    (workspace / "manifests.yaml").write_text(manifests)
    out = run(workspace, "spring")
    assert out.returncode == 1
    assert out.stderr.startswith("manifests.yaml:24:")
    assert "unsafe" in out.stderr and "recipient at data/customers.csv:2" in out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""


def test_streamed_lines_equal_collected_ones_and_leave_as_they_are_made(
        workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`emit` gets each line before the next entry is even made, and nothing is kept;
    the lines are the ones `render` collects without it."""
    from connectly_declare.commands import render as render_module
    from connectly_declare.workspace.load import load_workspace

    ws = load_workspace(workspace)
    environ = {"STORE": "Main St"}
    collected = render_module.render(ws, "spring", limit=0, environ=environ)
    made: list[int] = [0]
    real_iter = render_module.iter_entries

    def counting(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        for entry in real_iter(*args, **kwargs):  # type: ignore[arg-type]
            made[0] += 1
            yield entry

    monkeypatch.setattr(render_module, "iter_entries", counting)
    seen: list[tuple[int, str]] = []
    streamed = render_module.render(ws, "spring", limit=0, environ=environ,
                                    emit=lambda line: seen.append((made[0], line)))
    assert [line for _, line in seen] == collected.lines and len(seen) == 3
    assert [n for n, _ in seen] == [1, 2, 3]  # line i out before entry i+1 is made
    assert streamed.lines == [] and streamed.shown == collected.shown == 3
    assert streamed.complete and collected.complete
    assert render_module.summary(streamed) == render_module.summary(collected)
