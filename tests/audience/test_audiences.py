"""Composition: deduplication (first occurrence wins), exclusions after normalisation,
the `where` filter, nested audiences, and the counters that report all of it."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

import phonenumbers
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumberFormat

from connectly_declare.audience.resolve import AudienceInputs, AudienceStats, resolve_audience
from connectly_declare.errors import DeclareError

from .conftest import audience, locate

Write = Callable[[str, str | bytes], Path]
Inputs = Callable[..., AudienceInputs]
PROPERTY = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

# Valid US numbers: area codes and exchanges phonenumbers accepts.
NUMBERS = st.builds(lambda area, ex, line: f"+1{area}{ex}{line:04d}",
                    st.sampled_from(["650", "415", "212", "303"]),
                    st.integers(200, 999), st.integers(0, 9999))


def formatted(e164: str, style: int) -> str:
    number = phonenumbers.parse(e164)
    return [
        e164,
        phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL),
        phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL),  # region US
        f"{e164[2:5]}.{e164[5:8]}.{e164[8:]}",
    ][style % 4]


def csv_text(rows: list[tuple[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["phone", "n"])
    writer.writerows(rows)
    return out.getvalue()


@PROPERTY
@given(st.lists(st.tuples(NUMBERS, st.integers(0, 3)), min_size=1, max_size=40))
def test_dedup_first_occurrence_wins_and_drops_are_counted(
        write: Write, inputs: Inputs, people: list[tuple[str, int]]) -> None:
    rows = [(formatted(n, style), str(i)) for i, (n, style) in enumerate(people)]
    write("data/a.csv", csv_text(rows))
    stats = AudienceStats()
    got = list(resolve_audience(inputs(audience(sources=[{"csv": "data/a.csv"}])), "aud",
                                stats=stats))
    first: dict[str, str] = {}
    for i, (n, _) in enumerate(people):
        first.setdefault(n, str(i))
    assert [r.client for r in got] == list(first)
    assert [r.fields["n"] for r in got] == list(first.values())  # the first row's fields
    assert stats.duplicates_dropped == len(people) - len(first)
    assert stats.read == len(people) and stats.yielded == len(first)


@PROPERTY
@given(st.lists(NUMBERS, min_size=1, max_size=30, unique=True), st.data())
def test_a_number_in_any_format_in_an_opt_out_list_removes_its_e164(
        write: Write, inputs: Inputs, numbers: list[str], data: st.DataObject) -> None:
    opted_out = data.draw(st.lists(st.sampled_from(numbers), unique=True))
    styles = data.draw(st.lists(st.integers(0, 3), min_size=len(opted_out),
                                max_size=len(opted_out)))
    write("data/a.csv", csv_text([(n, "x") for n in numbers]))
    write("data/optout.jsonl", "".join(f'{{"phone": "{formatted(n, s)}"}}\n'
                                       for n, s in zip(opted_out, styles, strict=True)))
    stats = AudienceStats()
    aud = audience(sources=[{"csv": "data/a.csv"}], exclude=[{"jsonl": "data/optout.jsonl"}])
    got = [r.client for r in resolve_audience(inputs(aud), "aud", stats=stats)]
    assert got == [n for n in numbers if n not in opted_out]
    assert stats.excluded == len(opted_out)


def test_sources_in_order_then_exclusions_then_filter(write: Write, inputs: Inputs) -> None:
    write("data/a.csv", "phone,tier\n+16505551234,gold\n+16505551235,silver\n")
    write("data/b.jsonl", '{"phone": "+16505551234", "tier": "silver"}\n'
          '{"phone": "+16505551236", "tier": "gold"}\n'
          '{"phone": "+16505551237", "tier": "gold"}\n')
    aud = audience(sources=[{"csv": "data/a.csv"}, {"jsonl": "data/b.jsonl"},
                            {"inline": ["+16505551238"]}],
                   exclude=[{"inline": ["650 555 1237"]}],
                   where='recipient.tier | default("") == "gold"')
    stats = AudienceStats()
    got = [r.client for r in resolve_audience(inputs(aud), "aud", stats=stats)]
    assert got == ["+16505551234", "+16505551236"]
    assert (stats.read, stats.duplicates_dropped, stats.excluded, stats.filtered_out,
            stats.yielded) == (6, 1, 1, 2, 2)
    assert stats.exclusion_numbers == 1


def test_nested_audiences_contribute_their_final_recipients(write: Write,
                                                            inputs: Inputs) -> None:
    write("data/c.csv", "phone,tier\n+16505551234,gold\n+16505551235,silver\n"
          "+16505551236,gold\n")
    customers = audience("customers", sources=[{"csv": "data/c.csv"}],
                         exclude=[{"inline": ["+16505551236"]}])
    vip = audience("vip", sources=[{"audience": "customers"}], where='recipient.tier == "gold"')
    got = list(resolve_audience(inputs(customers, vip), "vip"))
    assert [(r.client, r.source) for r in got] == [("+16505551234", "data/c.csv:2")]


def test_audience_cycles_and_unknown_names_are_located(inputs: Inputs) -> None:
    a = audience("a", sources=[{"audience": "b"}])
    b = audience("b", sources=[{"audience": "a"}])
    with pytest.raises(DeclareError) as info:
        list(resolve_audience(inputs(a, b), "a"))
    assert "a -> b -> a" in str(info.value)
    assert info.value.problem.location == locate("Audience", "b", "sources", 0, "audience")
    c = audience("c", sources=[{"audience": "nope"}])
    with pytest.raises(DeclareError, match="unknown audience 'nope'"):
        list(resolve_audience(inputs(c), "c"))


def test_where_errors_name_the_expression_and_the_row(write: Write, inputs: Inputs) -> None:
    write("data/a.csv", "phone\n+16505551234\n")
    aud = audience(sources=[{"csv": "data/a.csv"}], where='recipient.tier == "gold"')
    with pytest.raises(DeclareError) as info:
        list(resolve_audience(inputs(aud), "aud"))
    assert info.value.problem.location == locate("Audience", "aud", "where")
    assert "data/a.csv:2" in str(info.value) and "undefined" in str(info.value)


def test_resolution_is_lazy(write: Write, inputs: Inputs) -> None:
    # A problem further down the file is raised only when reached: the first recipients
    # arrive without the whole file being read or held.
    write("data/a.csv", "phone\n+16505551234\n+1555\n")
    it = resolve_audience(inputs(audience(sources=[{"csv": "data/a.csv"}])), "aud")
    assert next(it).client == "+16505551234"
    with pytest.raises(DeclareError):
        next(it)
