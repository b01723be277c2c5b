"""Deduplication past the point where `seen.SeenSet` leaves its plain set for sorted
number runs decided a chunk at a time: the same recipients, in the same order, with the
same counters as a plain set gives, and a bad row still stops the stream right after the
rows before it. The threshold and chunk are made tiny so a few hundred rows cross them
many times (tests/test_seen.py checks the structure itself against a set)."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import pytest

from connectly_declare import seen
from connectly_declare.audience.resolve import AudienceInputs, AudienceStats, resolve_audience
from connectly_declare.errors import DeclareError

from .conftest import audience

Write = Callable[[str, str | bytes], Path]
Inputs = Callable[..., AudienceInputs]
POOL = [f"+1650555{n:04d}" for n in range(150)]


def local(e164: str) -> str:
    return f"({e164[2:5]}) {e164[5:8]}-{e164[8:]}"  # region US


def rows(rng: random.Random, count: int, numbers: list[str]) -> str:
    lines = ["phone,name,tier"]
    for i in range(count):
        number = rng.choice(POOL)
        numbers.append(number)
        lines.append(f"{number if i % 3 else local(number)},n{i},{i % 4}")
    return "\n".join(lines) + "\n"


def resolved(inputs: AudienceInputs) -> tuple[list[tuple[str, str]], dict[str, object]]:
    stats = AudienceStats()
    got = [(r.client, str(r.fields.get("name")))
           for r in resolve_audience(inputs, "aud", stats=stats)]
    counters = asdict(stats)
    counters.pop("skips")
    return got, counters


@pytest.mark.parametrize(("threshold", "chunk"), [(1, 1), (5, 4), (40, 64), (1, 1000)])
def test_past_the_threshold_the_audience_is_the_same(
        write: Write, inputs: Inputs, monkeypatch: pytest.MonkeyPatch,
        threshold: int, chunk: int) -> None:
    rng = random.Random(threshold * 1000 + chunk)
    numbers: list[str] = []
    write("data/a.csv", rows(rng, 300, numbers))
    write("data/b.csv", rows(rng, 200, numbers))
    numbers += [POOL[149], "+16505559999"]
    write("data/optout.csv", "phone\n" + "\n".join(local(n) for n in POOL[::7]) + "\n")
    aud = audience(sources=[{"csv": "data/a.csv"}, {"csv": "data/b.csv"},
                            {"inline": [{"phone": POOL[149], "tier": "1"},
                                        {"phone": "+16505559999", "tier": "1"}]}],
                   exclude=[{"csv": "data/optout.csv"}],
                   where="recipient.tier != '3'")
    plain = resolved(inputs(aud))  # the default threshold: a plain set for these sizes
    monkeypatch.setattr(seen, "THRESHOLD", threshold)
    monkeypatch.setattr(seen, "CHUNK", chunk)
    compact = resolved(inputs(aud))
    assert compact == plain
    got, counters = compact
    assert counters["read"] == len(numbers) == 502
    assert counters["duplicates_dropped"] == len(numbers) - len(set(numbers))
    assert len({c for c, _ in got}) == len(got) > 0  # nobody twice
    firsts = list(dict.fromkeys(numbers))  # first occurrences, in order
    assert [c for c, _ in got] == [c for c in firsts if c in {g for g, _ in got}]


@pytest.mark.parametrize("chunk", [1, 3, 1000])
def test_a_bad_row_stops_after_the_rows_before_it(
        write: Write, inputs: Inputs, monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    good = [POOL[i % 40] for i in range(60)]
    write("data/a.csv", "phone\n" + "\n".join([*good, "+1555", POOL[100]]) + "\n")
    monkeypatch.setattr(seen, "THRESHOLD", 2)
    monkeypatch.setattr(seen, "CHUNK", chunk)
    stats = AudienceStats()
    got: list[str] = []
    with pytest.raises(DeclareError) as err:
        for r in resolve_audience(inputs(audience(sources=[{"csv": "data/a.csv"}])), "aud",
                                  stats=stats):
            got.append(r.client)
    assert got == POOL[:40]  # every first occurrence before the bad row, in order
    assert stats.duplicates_dropped == 20 and stats.read == 60
    assert "data/a.csv:62" in str(err.value)
