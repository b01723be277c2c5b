"""Every source kind, and every problem in a data file located at its file and row (and
naming the manifest line that refers to the file)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from connectly_declare.audience.resolve import AudienceInputs, AudienceStats, resolve_audience
from connectly_declare.errors import DeclareError, Location

from .conftest import audience, locate

Write = Callable[[str, str | bytes], Path]
Inputs = Callable[..., AudienceInputs]
CSV_AT = locate("Audience", "aud", "sources", 0, "csv")  # where the manifest names the file


def resolve(inputs: Inputs, stats: AudienceStats | None = None, **spec: Any) -> list[Any]:
    aud = audience(**spec)
    return list(resolve_audience(inputs(aud), "aud", stats=stats))


def error(inputs: Inputs, **spec: Any) -> DeclareError:
    with pytest.raises(DeclareError) as info:
        resolve(inputs, **spec)
    return info.value


# --- CSV -------------------------------------------------------------------------------


def test_csv_with_bom_quoted_commas_and_newlines(write: Write, inputs: Inputs) -> None:
    write("data/vip.csv", "\ufeffphone,first_name,note\n"
          '+16505551234,Ana,"likes a, b"\n'
          '"(650) 555-1235",Bo,"two\nlines"\n'
          "+16505551236,Chen,x\n")
    got = resolve(inputs, sources=[{"csv": "data/vip.csv"}])
    assert [r.client for r in got] == ["+16505551234", "+16505551235", "+16505551236"]
    assert got[0].fields == {"phone": "+16505551234", "first_name": "Ana",
                             "note": "likes a, b", "client": "+16505551234"}
    assert got[1].fields["note"] == "two\nlines"
    # Rows are numbered by the line they start on (header = line 1), after a quoted newline
    assert [r.source for r in got] == ["data/vip.csv:2", "data/vip.csv:3", "data/vip.csv:5"]


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_csv_delimiter_is_sniffed(write: Write, inputs: Inputs, delimiter: str) -> None:
    d = delimiter
    write("data/x.csv", f"name{d}client\nAna{d}+16505551234\nBo{d}+1 650 555 1235\n")
    got = resolve(inputs, sources=[{"csv": "data/x.csv"}])
    assert [(r.fields["name"], r.client) for r in got] == [
        ("Ana", "+16505551234"), ("Bo", "+16505551235")]


def test_csv_delimiter_given_and_phone_column_named(write: Write, inputs: Inputs) -> None:
    write("data/x.csv", "mobile;phone\n+16505551234;not a phone\n")
    got = resolve(inputs, sources=[{"csv": "data/x.csv", "delimiter": ";",
                                    "phone_column": "mobile"}])
    assert [r.client for r in got] == ["+16505551234"]
    assert got[0].fields["phone"] == "not a phone"


def test_csv_source_region_applies_to_local_numbers(write: Write, inputs: Inputs) -> None:
    write("data/uk.csv", "phone\n020 7946 0958\n")
    got = resolve(inputs, sources=[{"csv": "data/uk.csv", "region": "GB"}])
    assert [r.client for r in got] == ["+442079460958"]


def test_invalid_number_names_file_row_and_manifest_line(write: Write, inputs: Inputs) -> None:
    write("data/vip.csv", 'phone,name\n+16505551234,a\n+16505551235,"b\nb"\n+1555,c\n')
    err = error(inputs, sources=[{"csv": "data/vip.csv"}])
    assert err.problem.location == Location("data/vip.csv", 5)
    assert "invalid phone number: too short" in str(err)
    assert str(CSV_AT) in str(err) and "on_invalid: skip" in str(err)
    assert "+1555" not in str(err)  # the value itself is not echoed into logs


def test_on_invalid_skip_counts_and_reports(write: Write, inputs: Inputs) -> None:
    write("data/vip.csv", "phone\n+16505551234\nnonsense 12\n+1555\n+16505551235\n")
    stats = AudienceStats()
    got = resolve(inputs, stats, sources=[{"csv": "data/vip.csv", "on_invalid": "skip"}])
    assert [r.client for r in got] == ["+16505551234", "+16505551235"]
    assert (stats.read, stats.invalid_skipped, stats.yielded) == (4, 2, 2)
    assert [str(p.location) for p in stats.skipped_samples] == ["data/vip.csv:3",
                                                                "data/vip.csv:4"]
    assert stats.per_source["data/vip.csv"].invalid_skipped == 2


@pytest.mark.parametrize(("content", "where", "says"), [
    (b"", "data/x.csv", "is empty"),
    (b"\xef\xbb\xbf\n\n", "data/x.csv", "is empty"),
    (b"phone\n+16505551234\n+1650555\x0012\n", "data/x.csv:3", "NUL byte"),
    (b"phone,name\n+16505551234,Jos\xe9\n", "data/x.csv:2", "not UTF-8"),
    (b"name,email\nAna,a@x\n", "data/x.csv:1", "no phone column 'phone' or 'client'"),
    (b"phone,phone\n+16505551234,x\n", "data/x.csv:1", "names column 'phone' twice"),
    (b"phone,name\n+16505551234,Ana\n+16505551235\n", "data/x.csv:3",
     "row has 1 fields, the header has 2"),
    (b'phone,name\n+16505551234,"Ana\n', "data/x.csv:2", "malformed CSV"),
])
def test_csv_problems_are_located(write: Write, inputs: Inputs, content: bytes, where: str,
                                  says: str) -> None:
    write("data/x.csv", content)
    err = error(inputs, sources=[{"csv": "data/x.csv"}])
    assert str(err.problem.location) == where
    assert says in str(err)


def test_missing_file_names_the_manifest_line(inputs: Inputs) -> None:
    err = error(inputs, sources=[{"csv": "data/nope.csv"}])
    assert err.problem.location == CSV_AT
    assert "does not exist" in str(err)


def test_blank_lines_in_csv_are_ignored(write: Write, inputs: Inputs) -> None:
    write("data/x.csv", "phone\n\n+16505551234\n\n+16505551235\n")
    got = resolve(inputs, sources=[{"csv": "data/x.csv"}])
    assert [r.source for r in got] == ["data/x.csv:3", "data/x.csv:5"]


# --- JSON Lines ------------------------------------------------------------------------


def test_jsonl_objects_blank_lines_and_typed_fields(write: Write, inputs: Inputs) -> None:
    write("data/x.jsonl", '{"phone": "+16505551234", "first_name": "Ana", "vip": true}\n'
          "\n"
          '{"client": "(650) 555-1235", "age": 30}\n')
    got = resolve(inputs, sources=[{"jsonl": "data/x.jsonl"}])
    assert [(r.client, r.source) for r in got] == [("+16505551234", "data/x.jsonl:1"),
                                                   ("+16505551235", "data/x.jsonl:3")]
    assert got[0].fields["vip"] is True and got[1].fields["age"] == 30


@pytest.mark.parametrize(("content", "where", "says"), [
    ('{"phone": "+16505551234"}\n{"phone": \n', "data/x.jsonl:2", "bad JSON"),
    ('["+16505551234"]\n', "data/x.jsonl:1", "expected a JSON object"),
    ('{"name": "Ana"}\n', "data/x.jsonl:1", "no 'phone' or 'client' field"),
    ('{"phone": ["+1"]}\n', "data/x.jsonl:1", "expected a string"),
    ('\n\n{"phone": "+1 650"}\n', "data/x.jsonl:3", "invalid phone number"),
])
def test_jsonl_problems_are_located(write: Write, inputs: Inputs, content: str, where: str,
                                    says: str) -> None:
    write("data/x.jsonl", content)
    err = error(inputs, sources=[{"jsonl": "data/x.jsonl"}])
    assert str(err.problem.location) == where
    assert says in str(err)


def test_jsonl_phone_field_named(write: Write, inputs: Inputs) -> None:
    write("data/x.jsonl", '{"msisdn": "+16505551234", "phone": "x"}\n')
    got = resolve(inputs, sources=[{"jsonl": "data/x.jsonl", "phone_field": "msisdn"}])
    assert [r.client for r in got] == ["+16505551234"]


# --- inline ----------------------------------------------------------------------------


def test_inline_strings_and_mappings(inputs: Inputs) -> None:
    got = resolve(inputs, sources=[{"inline": [
        "+1 650 555 1234", {"client": "(650) 555-1235", "first_name": "Bo"}]}])
    assert [r.client for r in got] == ["+16505551234", "+16505551235"]
    assert got[1].fields == {"client": "+16505551235", "first_name": "Bo"}
    assert got[0].source == str(locate("Audience", "aud", "sources", 0, "inline", 0))


def test_inline_problems_name_the_manifest_item(inputs: Inputs) -> None:
    err = error(inputs, sources=[{"inline": ["+16505551234", {"first_name": "Bo"}]}])
    assert err.problem.location == locate("Audience", "aud", "sources", 0, "inline", 1)
    assert "needs a client" in str(err)
    err = error(inputs, sources=[{"inline": ["+16505551234", "+1 555"]}])
    assert err.problem.location == locate("Audience", "aud", "sources", 0, "inline", 1)


def test_csv_header_after_blank_lines_and_capitalised_phone(write: Write,
                                                             inputs: Inputs) -> None:
    write("data/x.csv", "\n\nPhone,Name\n+16505551234,Ana\n+1555,Bo\n")
    err = error(inputs, sources=[{"csv": "data/x.csv"}])
    assert str(err.problem.location) == "data/x.csv:5"
    write("data/y.csv", "\nname\nAna\n")
    err = error(inputs, sources=[{"csv": "data/y.csv"}])
    assert str(err.problem.location) == "data/y.csv:2" and "no phone column" in str(err)


def test_empty_spreadsheet_rows_are_blank_but_a_missing_phone_is_not(write: Write,
                                                                      inputs: Inputs) -> None:
    write("data/x.csv", "phone,name\n+16505551234,Ana\n,\n , \n")
    assert len(resolve(inputs, sources=[{"csv": "data/x.csv"}])) == 1
    write("data/y.csv", "phone,name\n+16505551234,Ana\n,Bo\n")
    err = error(inputs, sources=[{"csv": "data/y.csv"}])
    assert str(err.problem.location) == "data/y.csv:3" and "empty" in str(err)
