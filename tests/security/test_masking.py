"""Every phone number is masked in human and pull-request outputs, however it is spelled
(issue 13): the client, numbers a template copies into variables, numbers in other CSV
columns, in names and in error messages; `--show-recipients` unmasks the human outputs
only, never the comment, the job summary or annotations.

The outputs come from the real CLI as a subprocess; the unit tests pin the finder's
spellings and what it must leave alone.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectly_declare.report.mask import mask_numbers

# (as written in the data, its national significant digits)
SPELLINGS = [
    ("+1 (650) 555-0111", "6505550111"),
    ("650-555-0112", "6505550112"),
    ("16505550113", "6505550113"),
    ("0044 20 7946 0958", "2079460958"),
    ("(650) 555 0114", "6505550114"),
    ("650.555.0116", "6505550116"),
    ("+44 7911 123456", "7911123456"),
]
CLIENTS = ["+16505550101", "+16505550102"]


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _leaks(output: str) -> list[str]:
    """The numbers of the data that `output` shows in full, in any spelling."""
    found = [written for written, _ in SPELLINGS if written in output]
    digits = _digits(output)
    found += [nsn for _, nsn in SPELLINGS if nsn in digits]
    found += [c for c in CLIENTS if c in output or c[2:] in digits]
    return found


@pytest.mark.parametrize("written,e164", [
    ("+1 (650) 555-0111", "+1650•••0111"), ("650-555-0112", "+1650•••0112"),
    ("16505550113", "+1650•••0113"), ("0044 20 7946 0958", "+4420•••0958"),
    ("(650) 555 0114", "+1650•••0114"), ("650.555.0116", "+1650•••0116"),
    ("+44 7911 123456", "+4479•••3456"), ("tel:+16505550101;", "tel:+1650•••0101;"),
    ("+٩٧١٥٠١٢٣٤٥٦٧", "+9715•••4567"), ("call 6505550102 now", "call +1650•••0102 now"),
    ("650 555 0102 650 555 0103", "+1650•••0102 +1650•••0103"),
])
def test_every_spelling_phonenumbers_reads_is_masked(written: str, e164: str) -> None:
    assert mask_numbers(written) == e164


@pytest.mark.parametrize("text", [
    "2026-11-30 10:00", "2026-11-30T10:00:00+00:00", "30/11/2026 10:00", "order 1234567890",
    "v20240101", "1,234,567", "price 99.99", "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6",
    "12345678901234567890", "+1650•••0101",
])
def test_dates_ids_and_masked_numbers_stay_readable(text: str) -> None:
    assert mask_numbers(text) == text


def test_national_numbers_follow_the_workspace_regions() -> None:
    assert mask_numbers("020 7946 0958", ("US",)) == "020 7946 0958"
    assert mask_numbers("020 7946 0958", ("US", "GB")) == "+4420•••0958"


def test_a_hostile_run_of_digit_groups_is_hidden_not_searched_forever() -> None:
    shown = mask_numbers("1 " * 50_000)
    assert not re.search(r"\d \d \d \d \d \d \d", shown[200:])


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("masking")
    (root / "data").mkdir()
    (root / "declare.yaml").write_text("version: 1\nbusiness_id: acme\n", encoding="utf-8")
    (root / "m.yaml").write_text(
        "kind: Campaign\n"
        "name: promo 650-555-0116\n"
        "versions:\n"
        "  - version: v 16505550113\n"
        "    variables: [me, other, note]\n"
        "---\n"
        "kind: Audience\nname: people\nsources:\n  - csv: data/people.csv\n"
        "---\n"
        "kind: Sendout\n"
        "name: promo-16505550113\n"
        "campaign: promo 650-555-0116\n"
        "version: v 16505550113\n"
        "audience: people\n"
        "variables:\n"
        "  me: '{{ recipient.client }}'\n"
        "  other: '{{ recipient.other }}'\n"
        "  note: 'call {{ recipient.note }}'\n",
        encoding="utf-8")
    rows = ["phone,other,note"]
    notes = [s for s, _ in SPELLINGS]
    for i, client in enumerate(CLIENTS):
        rows.append(f'{client},"{notes[i % len(notes)]}","{notes[(i + 1) % len(notes)]} or '
                    f'{notes[(i + 2) % len(notes)]} / {notes[(i + 3) % len(notes)]}"')
    rows.append(f'+16505550103,"{notes[4]}","{notes[5]} {notes[6]}"')
    (root / "data" / "people.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


def _run(workspace: Path, *args: str, env: dict[str, str] | None = None,
         code: int = 0) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    full.update({"NO_COLOR": "1", **(env or {})})
    result = subprocess.run([sys.executable, "-m", "connectly_declare", *args], cwd=workspace,
                            env=full, capture_output=True, text=True, timeout=120)
    assert result.returncode == code, result.stderr
    return result


@pytest.mark.slow  # a dozen CLI subprocesses
def test_every_output_masks_every_number_and_only_human_outputs_unmask(
        workspace: Path, tmp_path: Path) -> None:
    shown: dict[str, str] = {}
    for fmt in ("text", "markdown", "json"):
        shown[f"plan {fmt}"] = _run(workspace, "plan", "--details", "--format", fmt).stdout
    comment = tmp_path / "comment.md"
    summary = tmp_path / "summary.md"
    summary.touch()
    gh = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    plan_file = tmp_path / "p.plan"
    unmasked = _run(workspace, "plan", "--details", "--show-recipients", "--out-comment",
                    str(comment), "--out", str(plan_file), env=gh).stdout
    shown["--out-comment (with --show-recipients)"] = comment.read_text(encoding="utf-8")
    shown["job summary (with --show-recipients)"] = summary.read_text(encoding="utf-8")
    for fmt in ("text", "json"):
        shown[f"show {fmt}"] = _run(workspace, "show", str(plan_file), "--details",
                                    "--format", fmt).stdout
    shown["render"] = _run(workspace, "render", "promo-16505550113", "--limit", "0").stdout
    error = _run(workspace, "render", "16505550113 or (650) 555-0114", code=1, env=gh)
    shown["error message"] = error.stderr
    shown["annotation"] = error.stdout
    assert "::error" in error.stdout

    # the data does reach each output (else the test proves nothing) ...
    assert _leaks(unmasked), unmasked
    assert "+1650•••0113" in shown["error message"] and "+1650•••0114" in shown["annotation"]
    for name, text in shown.items():
        assert "•••" in text, name
        # ... and no number of it is shown in full, in any spelling
        assert _leaks(text) == [], f"{name} shows {_leaks(text)}:\n{text[:3000]}"
    assert "Phone numbers are masked" in shown["--out-comment (with --show-recipients)"]
    # --show-recipients unmasks the human outputs
    shown_json = _run(workspace, "plan", "--show-recipients", "--format", "json").stdout
    entry = json.loads(shown_json)["sendouts"][0]["entries"][0]
    assert entry["client"] == CLIENTS[0] and entry["variables"]["me"] == CLIENTS[0]
    assert SPELLINGS[0][0] in _run(workspace, "render", "promo-16505550113",
                                   "--show-recipients").stdout


# Every region's example numbers, in every format phonenumbers writes, inside other text.
_REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)
_FORMATS = [phonenumbers.PhoneNumberFormat.E164, phonenumbers.PhoneNumberFormat.INTERNATIONAL,
            phonenumbers.PhoneNumberFormat.NATIONAL, phonenumbers.PhoneNumberFormat.RFC3966]


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(_REGIONS), st.sampled_from(["mobile", "fixed"]),
       st.sampled_from(_FORMATS), st.sampled_from(["", "+", "00"]),
       st.text(alphabet="abc :;,/_-()", max_size=4), st.text(alphabet="abc :;,._-()", max_size=4))
def test_any_region_number_in_any_format_is_masked(region: str, kind: str, fmt: int,
                                                   prefix: str, before: str,
                                                   after: str) -> None:
    number = (phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
              if kind == "mobile" else phonenumbers.example_number(region))
    if number is None:
        return
    written = phonenumbers.format_number(number, fmt)
    if fmt == phonenumbers.PhoneNumberFormat.E164 and prefix != "+":
        written = prefix + written[1:]  # 16505550101, 0016505550101
    nsn = phonenumbers.national_significant_number(number)
    if fmt == phonenumbers.PhoneNumberFormat.NATIONAL and len(_digits(written)) < 7:
        return  # national spellings under 7 digits are left alone (SECURITY.md)
    shown = mask_numbers(f"{before}{written}{after}", ("US", region))
    assert nsn not in _digits(shown), (written, shown)


@pytest.mark.slow  # two CLI subprocesses
def test_plan_and_show_mask_national_numbers_of_the_workspace_region(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "declare.yaml").write_text("version: 1\nbusiness_id: acme\ndefault_region: GB\n",
                                           encoding="utf-8")
    (tmp_path / "m.yaml").write_text(
        "kind: Campaign\nname: promo\nversions:\n  - version: v1\n    variables: [msg]\n---\n"
        "kind: Audience\nname: people\nsources:\n  - csv: data/p.csv\n---\n"
        "kind: Sendout\nname: s\ncampaign: promo\nversion: v1\naudience: people\n"
        "variables:\n  msg: '{{ recipient.o }}'\n", encoding="utf-8")
    (tmp_path / "data" / "p.csv").write_text('phone,o\n07911 123456,"020 7946 0958"\n',
                                             encoding="utf-8")
    plan = _run(tmp_path, "plan", "--details", "--out", "p.plan").stdout
    shown = _run(tmp_path.parent, "show", str(tmp_path / "p.plan"), "--details").stdout
    for text in (plan, shown):
        assert '{"msg": "+4420•••0958"}' in text and "7946" not in text, text
