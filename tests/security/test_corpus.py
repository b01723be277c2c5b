"""The adversarial corpus: every case under corpus/ through the real CLI, within its bounds.

See harness.py for the case format and for what every run is checked for. The cases are
subprocesses waiting on their own work, so they run a few at a time (the selected cases
only), and each parametrized test reports its own case.
"""

from __future__ import annotations

import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .harness import CORPUS, Case, all_cases, check_run, materialise

CASES = all_cases()
WORKERS = 3


def _run_case(case: Case) -> str | None:
    """None when every run of the case meets its expectation, else the failure."""
    scratch = Path(tempfile.mkdtemp(prefix=f"declare-sec-{case.name}-"))
    try:
        workspace = materialise(case, scratch)
        for run in case.runs:
            check_run(case, run, workspace, scratch)
    except AssertionError as err:
        return str(err)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return None


@pytest.fixture(scope="module")
def results(request: pytest.FixtureRequest) -> dict[str, str | None]:
    selected = [item.callspec.params["case"] for item in request.session.items
                if getattr(item, "callspec", None) is not None
                and isinstance(item.callspec.params.get("case"), Case)]
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        outcomes = pool.map(_run_case, selected)
        return {case.name: outcome for case, outcome in zip(selected, outcomes, strict=True)}


def test_the_corpus_is_at_least_sixty_cases_each_with_an_exact_expectation() -> None:
    assert len(CASES) >= 60
    for case in CASES:
        for run in case.runs:
            assert (run.stderr is not None or run.stderr_lines or run.stdout_lines
                    or run.markdown_safe), case.name
            assert run.args[0] in ("validate", "plan"), case.name
        commands = {run.args[0] for run in case.runs}
        assert "plan" in commands, f"{case.name}: every case runs plan"


@pytest.mark.slow  # the fixture runs the whole corpus, ~1 min on 2 cores
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case(case: Case, results: dict[str, str | None]) -> None:
    failure = results[case.name]
    assert failure is None, failure


def test_corpus_folder_holds_no_big_files() -> None:
    # 50 MB inputs are generated at test time; the repository stays small.
    big = [p for p in CORPUS.rglob("*") if p.is_file() and not p.is_symlink()
           and p.stat().st_size > 64 * 1024]
    assert big == []


# Every attack SECURITY.md names has its case ("Defences, and what each covers").
REQUIRED = {
    "YAML alias bombs": ["yaml-billion-laughs", "yaml-bomb-in-declare-yaml", "yaml-merge-key"],
    "deeply nested documents": ["yaml-deep-flow-nesting", "yaml-deep-block-nesting",
                                "yaml-deep-flow-mappings", "jsonl-deep-nesting"],
    "50 MB single-line files": ["yaml-50mb-single-line", "yaml-50mb-declare-yaml",
                                "csv-50mb-single-line", "jsonl-50mb-single-line"],
    "CSV NUL, encodings, 100,000 columns, 10 MB field": [
        "csv-nul-byte", "csv-mixed-encodings", "csv-utf16", "csv-100k-columns",
        "csv-10mb-field"],
    "Jinja sandbox escapes": [
        "jinja-globals-walk", "jinja-subclasses", "jinja-format-string", "jinja-format-map",
        "jinja-self", "jinja-cycler", "jinja-joiner", "jinja-namespace", "jinja-lipsum"],
    "Jinja loops and huge strings": [
        "jinja-nested-for", "jinja-string-multiply", "jinja-recursive-macro",
        "jinja-exponential-macro", "jinja-range-huge", "jinja-loop-output"],
    "paths escaping the workspace": [
        "path-absolute", "path-dotdot", "path-symlink-file-out", "path-symlink-dir-out",
        "path-tilde", "path-windows-drive", "path-unc"],
    "environment variables not on the allow list": [
        "jinja-env-not-allowed", "jinja-env-secret", "env-api-key-in-template-env"],
    "Unicode tricks in names": [
        "unicode-bidi-campaign-name", "unicode-zero-width-campaign-name",
        "unicode-cyrillic-campaign-name", "unicode-bidi-in-comment"],
    "what a reviewer sees (issue 13)": [
        "output-issue-references", "output-oversized-values", "output-annotation-controls",
        "jsonl-lone-surrogate", "ledger-lone-surrogate", "env-name-controls",
        "env-name-in-declare-yaml", "yaml-raw-control-bytes"],
    "output safety": [
        "output-hostile-fields-markdown", "output-hostile-fields-terminal",
        "output-hostile-campaign-name", "unicode-bidi-in-csv-field"],
}


@pytest.mark.parametrize("attack", sorted(REQUIRED))
def test_every_attack_the_issue_names_has_cases(attack: str) -> None:
    names = {case.name for case in CASES}
    assert set(REQUIRED[attack]) <= names, set(REQUIRED[attack]) - names
