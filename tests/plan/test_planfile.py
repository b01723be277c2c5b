"""Saved plans: round trip, determinism, and refusal of damaged, edited or newer files."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from connectly_declare.errors import DeclareError
from connectly_declare.plan.make import make_plan
from connectly_declare.plan.model import Plan, PlanOptions
from connectly_declare.plan.planfile import plan_bytes, plan_to_json, read_plan, write_plan

from .conftest import NOW, desired, entry, history, spec


def sample_plan() -> Plan:
    state = history(([entry("+16505550001")], "accepted"),
                    ([entry("+16505550009", sendout="gone")], "unknown"))
    entries = [entry("+16505550001"), entry("+16505550002", name="Bó \"x\""),
               entry("+16505550003", scheduled_at="2026-12-01T09:00:00+00:00")]
    return make_plan([desired(spec(), entries)], state, PlanOptions(batch_size=50), now=NOW,
                     workspace_digest="d1g3st", business_id="biz")


@pytest.mark.parametrize("name", ["plan.json", "plan.json.gz"])
def test_round_trip_keeps_everything_apply_needs(tmp_path: Path, name: str) -> None:
    plan = sample_plan()
    write_plan(plan, tmp_path / name)
    back = read_plan(tmp_path / name)
    assert back == plan
    assert (back.lineage, back.serial, back.workspace_digest) == ("L1", 5, "d1g3st")
    assert back.options["batch_size"] == 50
    sends = [p.entry.to_api() for _, p in back.iter_sends()]
    assert sends[0] == {"client": "+16505550002", "campaignName": "Welcome",
                        "campaignVersion": "v1", "variables": {"name": "Bó \"x\""}}
    assert back.sendouts[0].options == {"if_duplicate_check_unspecified": "allow_one"}


def test_same_plan_same_bytes_even_gzipped(tmp_path: Path) -> None:
    for name in ("a.json", "b.json", "a.json.gz", "b.json.gz"):
        write_plan(sample_plan(), tmp_path / name)
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    assert (tmp_path / "a.json.gz").read_bytes() == (tmp_path / "b.json.gz").read_bytes()
    assert gzip.decompress((tmp_path / "a.json.gz").read_bytes()) == \
        (tmp_path / "a.json").read_bytes()


def test_truncated_plan_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    write_plan(sample_plan(), path)
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(DeclareError, match="not a usable saved plan: it is not complete JSON"):
        read_plan(path)
    gz = tmp_path / "plan.json.gz"
    write_plan(sample_plan(), gz)
    gz.write_bytes(gz.read_bytes()[:-10])
    with pytest.raises(DeclareError, match="not a usable saved plan"):
        read_plan(gz)


def test_edited_plan_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    write_plan(sample_plan(), path)
    path.write_text(path.read_text(encoding="utf-8").replace("+16505550002", "+16505550666"),
                    encoding="utf-8")
    with pytest.raises(DeclareError, match="checksum does not match") as err:
        read_plan(path)
    assert str(err.value).startswith(str(path))


def test_newer_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    path.write_text(json.dumps({"format_version": 9, "plan": {}}))
    with pytest.raises(DeclareError, match="format version 9, newer"):
        read_plan(path)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DeclareError, match="cannot read the plan"):
        read_plan(tmp_path / "nope.json")


def test_a_lone_surrogate_in_a_plan_file_is_refused_not_a_crash(tmp_path: Path) -> None:
    # issue 13: "\ud800" is valid JSON but no output (nor the checksum) can encode it
    path = tmp_path / "plan.json"
    write_plan(sample_plan(), path)
    path.write_text(path.read_text(encoding="utf-8").replace('"Welcome"', '"Wel\\ud800come"'),
                    encoding="utf-8")
    with pytest.raises(DeclareError, match=r"lone surrogate \\ud800"):
        read_plan(path)


def _v1_bytes(plan: Plan) -> bytes:
    """A plan as format 1 wrote it (one JSON document), byte for byte."""
    import hashlib

    body = json.dumps(plan_to_json(plan), ensure_ascii=False, separators=(",", ":")).encode()
    checksum = hashlib.blake2b(body, digest_size=16).hexdigest()
    return b'{"format_version":1,"checksum":"%s","plan":' % checksum.encode() + body + b"}\n"


def test_one_line_per_entry_between_a_header_and_a_closing_count(tmp_path: Path) -> None:
    plan = sample_plan()
    lines = plan_bytes(plan).splitlines()
    head, *rows, end = [json.loads(line) for line in lines]
    assert head["format_version"] == 2 and "to_send" not in head["plan"]["sendouts"][0]
    assert head["plan"]["sim"] is False and "endpoint" in head["plan"]  # the side it was for
    sends = [p for s in plan.sendouts for p in s.to_send]
    assert len(rows) == len(sends) == 2 and end["end"] is True and end["entries"] == 2
    assert [r[2] for r in rows] == [p.entry.client for p in sends]
    assert all(r[0] == 0 for r in rows)  # the sendout's index in the header


def test_streamed_plan_reads_back_as_the_single_document_did(tmp_path: Path) -> None:
    """Today's format and the one before it, same plan: the same Plan comes back."""
    from dataclasses import replace

    plan = sample_plan()
    old, new = tmp_path / "old.json", tmp_path / "new.json.gz"
    old.write_bytes(_v1_bytes(plan))
    write_plan(plan, new)
    assert read_plan(old) == replace(plan, format_version=1)
    assert read_plan(new) == plan
    assert [p.entry for _, p in read_plan(old).iter_sends()] == \
        [p.entry for _, p in read_plan(new).iter_sends()]


def test_a_removed_or_added_entry_line_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    write_plan(sample_plan(), path)
    head, first, second, end = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(head + first + end)  # one entry fewer
    with pytest.raises(DeclareError, match="checksum does not match"):
        read_plan(path)
    path.write_bytes(head + first + second + second + end)  # one entry twice
    with pytest.raises(DeclareError, match="checksum does not match"):
        read_plan(path)
    path.write_bytes(head + first + second)  # cut at a line's end
    with pytest.raises(DeclareError, match="closing line is missing"):
        read_plan(path)
    path.write_bytes(head + first + second + end + first)
    with pytest.raises(DeclareError, match="lines after its end"):
        read_plan(path)
