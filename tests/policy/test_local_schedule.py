"""A local-time schedule: each entry's scheduledAt is the wall-clock time in the
recipient's own zone (number, field, fixed zone or fallback), hashed into its fingerprint."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from connectly_declare.entries.stream import iter_sendout_entries
from connectly_declare.entry import Entry, fingerprint
from connectly_declare.errors import DeclareError
from connectly_declare.policy.timing import ZONE_FALLBACK, ZONE_FROM_NUMBER, ZONE_GIVEN
from connectly_declare.workspace.config import WorkspaceConfig
from connectly_declare.workspace.manifests import Sendout
from tests.audience.conftest import audience, locate, sendout

Write = Callable[[str, str | bytes], Path]

PEOPLE = ("phone,tz\n"
          "+5511987654321,\n"          # São Paulo, from the number
          "+6281234567890,\n"          # Jakarta, from the number
          "+4915112345678,\n"          # Berlin, from the number
          "+16502530000,Asia/Tokyo\n"  # the field wins over the number
          "+99912345678,\n")           # not a valid number: skipped


def entries(root: Path, s: Sendout, **config: Any) -> list[Entry]:
    aud = audience(sources=[{"csv": "data/p.csv", "on_invalid": "skip"}])
    return list(iter_sendout_entries(root, WorkspaceConfig(**config), {aud.name: aud}, s,
                                     locate, environ={}))


def test_each_recipient_gets_the_local_time_in_their_zone(root: Path, write: Write) -> None:
    write("data/p.csv", PEOPLE)
    s = sendout(schedule={"local": "2027-12-20T10:00", "timezone": "auto", "field": "tz"})
    got = {e.client: e for e in entries(root, s)}
    assert {c: e.scheduled_at for c, e in got.items()} == {
        "+5511987654321": "2027-12-20T10:00:00-03:00",
        "+6281234567890": "2027-12-20T10:00:00+07:00",
        "+4915112345678": "2027-12-20T10:00:00+01:00",
        "+16502530000": "2027-12-20T10:00:00+09:00",
    }
    assert got["+5511987654321"].zone == "America/Sao_Paulo"
    assert got["+5511987654321"].timing == ZONE_FROM_NUMBER
    assert got["+16502530000"].timing == ZONE_GIVEN
    for e in got.values():
        assert e.fingerprint == fingerprint(e.version, e.variables, e.scheduled_at, e.round)


def test_a_fixed_zone_and_the_fallback(root: Path, write: Write) -> None:
    write("data/p.csv", "phone\n+5511987654321\n+80012345678\n")
    fixed = sendout(schedule={"local": "2027-06-01T09:30", "timezone": "Europe/Lisbon"})
    assert {e.scheduled_at for e in entries(root, fixed)} == {"2027-06-01T09:30:00+01:00"}
    # +800 (international freephone) has no zone: the fallback is used, and said so
    auto = sendout(schedule={"local": "2027-06-01T09:30", "fallback": "UTC"})
    got = {e.client: e for e in entries(root, auto)}
    assert got["+80012345678"].scheduled_at == "2027-06-01T09:30:00+00:00"
    assert got["+80012345678"].timing == ZONE_FALLBACK


def test_no_zone_and_no_fallback_is_an_error_naming_the_row(root: Path, write: Write) -> None:
    write("data/p.csv", "phone\n+5511987654321\n+80012345678\n")
    s = sendout(schedule={"local": "2027-06-01T09:30"})
    with pytest.raises(DeclareError) as err:
        entries(root, s)
    assert str(err.value.problem.location) == "data/p.csv:3"
    assert "no known zone" in str(err.value) and "fallback" in str(err.value)
    assert "+80012345678" not in str(err.value)  # masked


def test_a_bad_zone_in_the_data_is_an_error_naming_the_row(root: Path, write: Write) -> None:
    write("data/p.csv", "phone,tz\n+5511987654321,Mars/Base\n")
    s = sendout(schedule={"local": "2027-06-01T09:30", "field": "tz"})
    with pytest.raises(DeclareError, match="not an IANA time zone") as err:
        entries(root, s)
    assert str(err.value.problem.location) == "data/p.csv:2"


def test_output_is_deterministic(root: Path, write: Write) -> None:
    write("data/p.csv", PEOPLE)
    s = sendout(schedule={"local": "2027-12-20T10:00", "field": "tz"},
                variables={"n": "{{ recipient.client[-4:] }}"})
    first = [(e.client, e.scheduled_at, e.fingerprint) for e in entries(root, s)]
    assert first == [(e.client, e.scheduled_at, e.fingerprint) for e in entries(root, s)]
