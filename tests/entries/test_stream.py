"""Entries: what each recipient would be sent, with the lead's fingerprint, in audience
order; template refactors that render the same text keep the fingerprint."""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectly_declare.audience.resolve import AudienceStats
from connectly_declare.entries.stream import iter_sendout_entries, scheduled_at
from connectly_declare.entry import Entry, fingerprint
from connectly_declare.errors import DeclareError, ManifestErrors
from connectly_declare.workspace.config import WorkspaceConfig
from connectly_declare.workspace.manifests import Audience, Sendout
from tests.audience.conftest import audience, locate, sendout

Write = Callable[[str, str | bytes], Path]


def entries(root: Path, s: Sendout, *auds: Audience, environ: dict[str, str] | None = None,
            stats: AudienceStats | None = None, **config: Any) -> list[Entry]:
    return list(iter_sendout_entries(root, WorkspaceConfig(**config), {a.name: a for a in auds},
                                     s, locate, environ=environ or {}, stats=stats))


def plain(e: Entry) -> Entry:
    """The same entry built through Entry's own constructor."""
    return Entry(e.sendout, e.campaign, e.version, e.client, dict(e.variables), e.scheduled_at,
                 e.round, e.allow_multiple, e.fingerprint, e.source)


def test_entries_from_csv_with_every_template_kind(root: Path, write: Write) -> None:
    write("data/a.csv", "phone,first_name,city\n+16505551234,ana,Lisboa\n"
          "+16505551235,bo,Oslo\n+1 650 555 1234,dup,X\n")
    s = sendout(version="v2", schedule="2030-03-01T09:00:00+01:00", round=2, vars={"c": "S"},
                variables={"name": "{{ recipient.first_name }}",
                           "hello": "Hi {{ recipient['first_name'] }} in {{ recipient.city }}",
                           "code": "{{ vars.c }}-{{ recipient.client[-4:] }}",
                           "fixed": "{{ vars.c }}"})
    stats = AudienceStats()
    got = entries(root, s, audience(sources=[{"csv": "data/a.csv"}]), stats=stats)
    assert [e.client for e in got] == ["+16505551234", "+16505551235"]
    first = got[0]
    assert dict(first.variables) == {"name": "ana", "hello": "Hi ana in Lisboa",
                                     "code": "S-1234", "fixed": "S"}
    assert (first.sendout, first.campaign, first.version, first.round) == (
        "spring", "spring sale", "v2", 2)
    assert first.scheduled_at == "2030-03-01T09:00:00+01:00"
    assert first.source == "data/a.csv:2" and not first.allow_multiple
    for e in got:
        assert e.fingerprint == fingerprint(e.version, e.variables, e.scheduled_at, e.round)
        assert e == plain(e) and dataclasses.asdict(e) == dataclasses.asdict(plain(e))
    assert stats.duplicates_dropped == 1 and stats.yielded == 2


def test_dict_sources_and_missing_fields(root: Path, write: Write) -> None:
    write("data/a.jsonl", '{"phone": "+16505551234", "age": 30, "vip": true}\n'
          '{"phone": "+16505551235"}\n')
    s = sendout(variables={"age": "{{ recipient.age }}", "vip": "{{ recipient.vip }}"})
    aud = audience(sources=[{"jsonl": "data/a.jsonl"}])
    with pytest.raises(DeclareError) as info:
        entries(root, s, aud)
    assert "data/a.jsonl:2" in str(info.value) and "'age'" in str(info.value)
    assert info.value.problem.location == locate("Sendout", "spring", "variables", "age")


def test_a_template_naming_a_missing_csv_column_names_the_first_row(root: Path,
                                                                    write: Write) -> None:
    write("data/a.csv", "phone,first\n+16505551234,ana\n")
    s = sendout(variables={"name": "{{ recipient.first_name }}"})
    with pytest.raises(DeclareError) as info:
        entries(root, s, audience(sources=[{"csv": "data/a.csv"}]))
    assert "first_name" in str(info.value) and "data/a.csv:2" in str(info.value)
    assert info.value.problem.location == locate("Sendout", "spring", "variables", "name")


def test_template_errors_come_before_any_file_is_read(root: Path) -> None:
    s = sendout(variables={"a": "{{ oops", "b": "{{ env.SECRET }}"})
    with pytest.raises(ManifestErrors) as info:
        iter_sendout_entries(root, WorkspaceConfig(), {}, s, locate, environ={})
    assert len(info.value.problems) == 2


def test_env_reaches_templates_only_when_listed(root: Path) -> None:
    s = sendout(variables={"store": "{{ env.STORE }}"},
                audience={"sources": [{"inline": ["+16505551234"]}]})
    got = entries(root, s, environ={"STORE": "Main"}, template_env=["STORE"])
    assert dict(got[0].variables) == {"store": "Main"}
    with pytest.raises(ManifestErrors, match=r"env\.STORE is not allowed"):
        entries(root, s, environ={"STORE": "Main"})


def test_allow_multiple_scope_and_inline_sendout_audience(root: Path) -> None:
    s = sendout(options={"if_duplicate_check_unspecified": "allow_multiple"},
                audience={"sources": [{"inline": ["+16505551234"]}]})
    (e,) = entries(root, s)
    assert e.allow_multiple and e.key.endswith("\x1fspring")
    assert e.variables == {} and e.fingerprint == fingerprint(None, {}, None, 1)


@pytest.mark.parametrize(("when", "text"), [
    (datetime(2030, 3, 1, 9, 0, tzinfo=UTC), "2030-03-01T09:00:00+00:00"),
    (datetime(2030, 3, 1, 9, 0, 5, tzinfo=timezone(timedelta(hours=-5))),
     "2030-03-01T09:00:05-05:00"),
    (datetime(2030, 3, 1, 9, 0, 0, 250000, tzinfo=UTC), "2030-03-01T09:00:00.250000+00:00"),
    (None, None),
])
def test_scheduled_at_text(when: datetime | None, text: str | None) -> None:
    assert scheduled_at(when) == text


REFACTORS = [
    ("Hi {{ recipient.first_name }}!", "Hi {{ recipient['first_name'] }}!",
     "{{ 'Hi ' ~ recipient.first_name ~ '!' }}", "{% set n = recipient.first_name %}Hi {{ n }}!",
     "Hi {{ recipient.first_name | string }}{{ '!' }}"),
]


def test_fingerprint_is_stable_across_template_refactors(root: Path) -> None:
    aud = audience(sources=[{"inline": [{"client": "+16505551234", "first_name": "Ana"}]}])
    prints = set()
    for source in REFACTORS[0]:
        (e,) = entries(root, sendout(variables={"greeting": source}), aud)
        assert e.variables == {"greeting": "Hi Ana!"}
        prints.add(e.fingerprint)
    assert len(prints) == 1
    (changed,) = entries(root, sendout(variables={"greeting": "Hello {{ recipient.first_name }}!"}),
                         aud)
    assert changed.fingerprint not in prints


TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
               max_size=15)


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True), TEXT,
                       max_size=4), TEXT, st.one_of(st.none(), TEXT), st.integers(1, 9))
def test_generated_fingerprints_equal_the_contract(root: Path, write: Write,
                                                   values: dict[str, str], const: str,
                                                   version: str | None, round_: int) -> None:
    # Every value comes from a CSV column, plus one constant: the compiled entry maker must
    # build exactly the text entry.fingerprint hashes, whatever the characters.
    columns = [f"c{i}" for i in range(len(values))]
    out = io.StringIO()
    w = csv.writer(out)  # "\r\n" rows, so a lone "\r" in a value gets quoted
    w.writerow(["phone", *columns])
    w.writerow(["+16505551234", *values.values()])
    write("data/p.csv", out.getvalue())
    variables = {n: "{{ recipient." + c + " }}" for n, c in zip(values, columns, strict=True)}
    variables["zz_const"] = "{% raw %}" + const.replace("{% endraw %}", "") + "{% endraw %}"
    s = sendout(version=version, round=round_, variables=variables,
                schedule="2030-01-02T03:04:05+02:00")
    (e,) = entries(root, s, audience(sources=[{"csv": "data/p.csv"}]))
    assert {k: v for k, v in e.variables.items() if k != "zz_const"} == values
    assert e.fingerprint == fingerprint(version, e.variables, e.scheduled_at, round_)


def test_inline_sendout_audience_with_where_and_an_audience_as_exclusion(root: Path) -> None:
    staff = audience("staff", sources=[{"inline": ["+16505551235"]}])
    s = sendout(audience={"sources": [{"inline": [
        {"client": "+16505551234", "tier": "gold"}, {"client": "+16505551235", "tier": "gold"},
        {"client": "+16505551236", "tier": "silver"}]}],
        "exclude": [{"audience": "staff"}], "where": "recipient.tier == 'gold'"})
    stats = AudienceStats()
    got = entries(root, s, staff, stats=stats)
    assert [e.client for e in got] == ["+16505551234"]
    assert (stats.excluded, stats.filtered_out) == (1, 1)
    bad = sendout(audience={"sources": [{"inline": ["+16505551234"]}],
                            "where": "recipient.tier == 'gold'"})
    with pytest.raises(DeclareError) as info:
        entries(root, bad)
    assert info.value.problem.location == locate("Sendout", "spring", "audience", "where")


def test_sources_with_different_columns_each_render_their_own(root: Path, write: Write) -> None:
    write("data/a.csv", "phone,first_name,city\n+16505551234,Ana,Lisboa\n")
    write("data/b.csv", "city,first_name,phone\nOslo,Bo,+16505551235\n")
    write("data/c.jsonl", '{"phone": "+16505551236", "first_name": "Chen", "city": "Lima"}\n')
    write("data/d.csv", "first_name,phone,city\nDara,+16505551237,Accra\n")
    aud = audience(sources=[{"csv": "data/a.csv"}, {"csv": "data/b.csv"},
                            {"jsonl": "data/c.jsonl"}, {"csv": "data/d.csv"},
                            {"csv": "data/a.csv"}])
    s = sendout(variables={"v": "{{ recipient.first_name }}@{{ recipient.city }}"})
    got = entries(root, s, aud)
    assert [e.variables["v"] for e in got] == ["Ana@Lisboa", "Bo@Oslo", "Chen@Lima",
                                               "Dara@Accra"]


def test_same_inputs_same_entries(root: Path, write: Write) -> None:
    write("data/a.csv", "phone,n\n+16505551235,b\n+16505551234,a\n+16505551235,c\n")
    s = sendout(variables={"n": "{{ recipient.n | upper }}", "m": "{{ recipient.n }}"},
                schedule="2030-03-01T09:00:00Z")
    aud = audience(sources=[{"csv": "data/a.csv"}])
    first, second = entries(root, s, aud), entries(root, s, aud)
    assert first == second
    assert [e.fingerprint for e in first] == [e.fingerprint for e in second]
    assert [(e.client, e.variables["n"]) for e in first] == [("+16505551235", "B"),
                                                            ("+16505551234", "A")]
