"""What a user notices: plurals, one thousands format, no `version None`, the right words
when nothing is sent, the simulator's faults as flags, "did you mean" for sendouts and
recipient fields, one-line PostgreSQL errors, readable escaping in raw Markdown."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import cmarkgfm
import pytest
import yaml

from connectly_declare.apply.results import ApplyResult, SendoutSummary
from connectly_declare.apply.summary import summary_lines
from connectly_declare.report.escape import markdown_text
from connectly_declare.sim.catalog import load_catalog
from connectly_declare.sim.faults import FaultConfig
from connectly_declare.sim.run import SimOptions, describe, fault_flags
from connectly_declare.words import count
from tests.support.e2e import (
    CAMPAIGN,
    catalog,
    new_api_key,
    run_cli,
    sim_process,
    write_workspace,
)

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "campaigns"


def _cli(ws: Path, *args: str, env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess[str]:
    import os

    environ = {k: v for k, v in os.environ.items() if k not in ("DECLARE_ENV", "NO_COLOR")}
    environ.update(env or {})
    return subprocess.run([sys.executable, "-m", "connectly_declare", "-C", str(ws), *args],
                          capture_output=True, text=True, timeout=120, check=False,
                          env=environ)


@pytest.fixture()
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "campaigns"
    shutil.copytree(EXAMPLE, ws, ignore=shutil.ignore_patterns(".declare"))
    return ws


def test_counts_are_singular_for_one_and_use_thousands_separators() -> None:
    assert count(1, "entry", "entries") == "1 entry"
    assert count(0, "entry", "entries") == "0 entries"
    assert count(12345, "sendout") == "12,345 sendouts"


def test_render_says_1_entry(workspace: Path) -> None:
    done = _cli(workspace, "render", "spring-sale", "--limit", "1")
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith("1 entry shown (--limit)"), done.stderr


def test_the_apply_summary_uses_the_plans_thousands_format() -> None:
    big = SendoutSummary("promo", CAMPAIGN, planned=12345, sent=12345, accepted=12340,
                         rejected=5, partial=0, unknown=0, not_sent=0,
                         rejected_codes=(("ERROR_CODE_X", 5),))
    lines = summary_lines(ApplyResult((big,), requests=1235, throttled=1200))
    assert lines[0].startswith("Apply finished with problems: 12,340 accepted of 12,345 "
                               "planned in 1,235 requests (1,200 rate-limited")
    assert "sent 12,345, accepted 12,340, rejected 5" in lines[1]


def test_the_markdown_plan_says_1_sendout(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    write_workspace(ws, base_url="http://127.0.0.1:9", recipients=2)
    done = _cli(ws, "plan", "--format", "markdown")
    assert done.returncode == 0, done.stderr
    assert "across 1 sendout (" in done.stdout and "1 sendouts" not in done.stdout


def test_the_simulator_banner_names_faults_by_their_flags() -> None:
    faults = FaultConfig(error_500_rate=0.1, drop_after_accept_rate=0.05, seed=7)
    assert fault_flags(faults) == "--fail-rate 0.1 --drop-rate 0.05 --seed 7"
    cat = load_catalog_from(catalog("k"))
    lines = describe(cat, SimOptions(faults=faults), "http://127.0.0.1:1", "the catalog's")
    banner = "\n".join(lines)
    assert "faults: --fail-rate 0.1 --drop-rate 0.05 --seed 7" in banner
    assert "FaultConfig(" not in banner


def load_catalog_from(data: dict[str, object]) -> object:
    import json
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "catalog.json"
        path.write_text(json.dumps(data), encoding="utf-8")
        return load_catalog(path)


def test_render_suggests_the_sendout_meant(workspace: Path) -> None:
    done = _cli(workspace, "render", "spring-sal")
    assert done.returncode == 1
    assert "no sendout named 'spring-sal'" in done.stderr
    assert "did you mean 'spring-sale'?" in done.stderr


@pytest.mark.parametrize("template", ["{{ recipient.first_nam }}",          # plain lookup
                                      "{{ recipient.first_nam | upper }}"])  # Jinja
def test_a_misspelt_recipient_field_suggests_the_column(workspace: Path, template: str) -> None:
    sendout = workspace / "sendouts" / "spring-sale.yaml"
    text = sendout.read_text(encoding="utf-8")
    sendout.write_text(text.replace('"{{ recipient.first_name }}"', f'"{template}"', 1),
                       encoding="utf-8")
    done = _cli(workspace, "plan")
    assert done.returncode == 1
    assert "recipient has no field 'first_nam', did you mean 'first_name'?" in done.stderr


def test_a_postgres_error_is_one_readable_line(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    write_workspace(ws, base_url="http://127.0.0.1:9", recipients=1,
                    settings={"state": {"backend": "postgres"}})
    # Port 1 on loopback: nothing listens, libpq answers on two lines.
    done = _cli(ws, "state", "list",
                env={"DECLARE_PG_DSN": "postgresql://u:hunter2@127.0.0.1:1/db"})
    assert done.returncode == 1
    assert "Connection refused Is the server running" in done.stderr, done.stderr
    assert "\\n" not in done.stderr and "\\t" not in done.stderr
    assert "hunter2" not in done.stderr


def _html(markdown: str) -> str:
    # GitHub keeps <details>/<summary>: render raw HTML through, as it does.
    return cmarkgfm.github_flavored_markdown_to_html(
        markdown, options=cmarkgfm.cmark.Options.CMARK_OPT_UNSAFE)


TRICKY = ["spring-sale", "2027-03-01T09:00:00+01:00", "- not a list", "---", "-1. x",
          "GH-42 and gh-7", "a\\-b", "x <!-- y --> z", "| a - b |", "--- ---", "-\\-"]


@pytest.mark.parametrize("text", TRICKY)
def test_a_dash_is_a_backslash_escape_that_renders_as_the_reference_did(text: str) -> None:
    new, old = markdown_text(text), markdown_text(text, in_html=True)
    assert "&#45;" not in new and "&#45;" in old
    for wrap in ("{}\n", "- {}\n", "| a | b |\n| --- | --- |\n| {} | x |\n", "## {}\n"):
        assert _html(wrap.format(new)) == _html(wrap.format(old)), (wrap, new)
    assert "GH-42" not in _html(new)  # the zero-width space still parts GH from -42


def test_inside_an_html_block_the_dash_stays_a_reference() -> None:
    # <summary> is raw HTML: a backslash there would show.
    html = _html(f"<details><summary>{markdown_text('spring-sale', in_html=True)}"
                 "</summary>\n\n</details>\n")
    assert "\\" not in html and "spring&#45;sale" in html


@pytest.mark.slow
def test_state_show_and_nothing_to_send_say_what_is_true(tmp_path: Path) -> None:
    key = new_api_key()
    with sim_process(catalog(key)) as sim:
        ws = tmp_path / "ws"
        clients = write_workspace(ws, base_url=sim.url, recipients=3)
        manifest = ws / "manifests" / "promo.yaml"
        docs = list(yaml.safe_load_all(manifest.read_text(encoding="utf-8")))
        del docs[2]["version"]  # sent without a version: the campaign's own variables
        manifest.write_text(yaml.safe_dump_all(docs, sort_keys=False), encoding="utf-8")
        first = run_cli(ws, "apply", "--auto-approve", api_key=key)
        assert first.returncode == 0, first.stdout + first.stderr
        shown = run_cli(ws, "state", "show", clients[0])
        assert shown.returncode == 0, shown.stderr
        assert "version (none)" in shown.stdout and "None" not in shown.stdout

        again = run_cli(ws, "apply", "--auto-approve", api_key=key)
        assert "the ledger already holds every planned entry" in again.stdout
        # A template changed after sending: drift, never resent, and not "already held".
        docs[2]["variables"] = {"name": "Dear {{ recipient.name }}"}
        manifest.write_text(yaml.safe_dump_all(docs, sort_keys=False), encoding="utf-8")
        drift = run_cli(ws, "apply", "--auto-approve", api_key=key)
        assert drift.returncode == 0, drift.stdout + drift.stderr
        assert "Nothing to send now: 3 entries changed since sent" in drift.stdout
        assert "already holds every planned entry" not in drift.stdout
        assert sim.counts(CAMPAIGN) == dict.fromkeys(clients, 1)


def test_validate_says_1_campaign_not_1_campaigns(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    write_workspace(ws, base_url="http://127.0.0.1:9", recipients=1)
    done = _cli(ws, "validate")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "valid: 1 campaign, 1 audience, 1 sendout (0 disabled) in 1 file\n"
