"""Wall-clock times in real zones, across DST transitions in Europe and America."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connectly_declare.policy.localtime import is_zone, localize, parse_clock, stamp, zone


@pytest.mark.parametrize(("name", "wall", "expected"), [
    # spring forward: 02:00-03:00 does not exist; the first valid minute is 03:00
    ("Europe/Berlin", "2027-03-28T02:30", "2027-03-28T03:00:00+02:00"),
    ("Europe/London", "2027-03-28T01:15", "2027-03-28T02:00:00+01:00"),
    ("America/New_York", "2027-03-14T02:30", "2027-03-14T03:00:00-04:00"),
    ("America/Los_Angeles", "2027-03-14T02:00", "2027-03-14T03:00:00-07:00"),
])
def test_a_time_in_the_spring_forward_gap_moves_to_the_first_valid_minute(
        name: str, wall: str, expected: str) -> None:
    assert stamp(localize(datetime.fromisoformat(wall), zone(name))) == expected


@pytest.mark.parametrize(("name", "wall", "expected"), [
    # fall back: 02:00-03:00 (Berlin) / 01:00-02:00 (New York) happen twice; the first wins
    ("Europe/Berlin", "2027-10-31T02:30", "2027-10-31T02:30:00+02:00"),
    ("America/New_York", "2027-11-07T01:30", "2027-11-07T01:30:00-04:00"),
    ("America/Sao_Paulo", "2027-11-07T01:30", "2027-11-07T01:30:00-03:00"),  # no DST now
])
def test_an_ambiguous_time_takes_its_first_occurrence(name: str, wall: str,
                                                      expected: str) -> None:
    assert stamp(localize(datetime.fromisoformat(wall), zone(name))) == expected


def test_ordinary_times_and_utc() -> None:
    got = localize(datetime(2027, 12, 20, 10), zone("Asia/Jakarta"))
    assert stamp(got) == "2027-12-20T10:00:00+07:00"
    assert got.astimezone(UTC) == datetime(2027, 12, 20, 3, tzinfo=UTC)
    assert stamp(localize(datetime(2027, 12, 20, 10), zone("UTC"))) == "2027-12-20T10:00:00+00:00"


def test_zone_names() -> None:
    assert is_zone("America/Sao_Paulo")
    for bad in ("Etc/Unknown", "Mars/Olympus", "", "../etc/passwd", "/etc/localtime"):
        assert not is_zone(bad)


def test_clock() -> None:
    assert parse_clock("21:05").hour == 21
    for bad in ("9:00", "21h00", "2100", "24:00", "ab:cd"):
        with pytest.raises(ValueError):
            parse_clock(bad)
