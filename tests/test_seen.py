"""SeenSet (connectly_declare/seen.py) against a plain Python set: the same first
occurrences in the same order, the same repeats, below and past the threshold, over many
runs and merges, with values that are not E.164 held exactly."""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectly_declare.seen import SeenSet, _numbers, as_number


def reference_firsts(streams: list[list[str]]) -> tuple[list[list[str]], list[list[str]]]:
    seen: set[str] = set()
    firsts: list[list[str]] = []
    repeats: list[list[str]] = []
    for stream in streams:
        kept, dropped = [], []
        for value in stream:
            if value in seen:
                dropped.append(value)
            else:
                seen.add(value)
                kept.append(value)
        firsts.append(kept)
        repeats.append(dropped)
    return firsts, repeats


def seen_firsts(seen: SeenSet, streams: list[list[str]]) -> tuple[list[list[str]], list[list[str]]]:
    firsts: list[list[str]] = []
    repeats: list[list[str]] = []
    for stream in streams:
        # an item's position tells whether `repeated` kept pace with the yields
        events: list[tuple[str, str]] = []
        note = events.append
        for value in seen.first_occurrences(stream, str, lambda v, note=note: note(("r", v))):
            note(("f", value))
        firsts.append([v for kind, v in events if kind == "f"])
        dropped = [v for kind, v in events if kind == "r"]
        repeats.append(dropped)
        assert [v for _, v in events] == stream  # every item, in its order
    return firsts, repeats


# Numbers from a small pool so streams repeat; a few look-alikes that must stay distinct.
e164 = st.integers(min_value=1, max_value=400).map(lambda n: f"+1650555{n:04d}")
look_alike = st.sampled_from(["+016505550001", "+1650555 0001", "+1_6505550001",
                              "16505550001", "+", "", "+0", "+00", "-1", " +16505550001",
                              "+１6505550001", "+18446744073709551615",
                              "+18446744073709551616", "+99999999999999999999"])
anything = st.text(max_size=6)
value = st.one_of(e164, e164, e164, look_alike, anything)


@settings(max_examples=200, deadline=None)
@given(streams=st.lists(st.lists(value, max_size=120), max_size=5),
       threshold=st.integers(1, 60), chunk=st.integers(1, 25))
def test_first_occurrences_match_a_set(streams: list[list[str]], threshold: int,
                                       chunk: int) -> None:
    seen = SeenSet(threshold=threshold, chunk=chunk)
    assert seen_firsts(seen, streams) == reference_firsts(streams)
    everything = {v for stream in streams for v in stream}
    assert len(seen) == len(everything)
    for probe in [*everything, "+16505559999", "+0016505550001", "x"]:
        assert (probe in seen) == (probe in everything)


@settings(max_examples=200, deadline=None)
@given(values=st.lists(value, max_size=400), threshold=st.integers(1, 80),
       chunk=st.integers(1, 30))
def test_add_counts_repeats_as_a_set(values: list[str], threshold: int, chunk: int) -> None:
    seen = SeenSet(threshold=threshold, chunk=chunk)
    for v in values:
        seen.add(v)
    assert seen.added == len(values)
    assert seen.repeats == len(values) - len(set(values))
    assert all(v in seen for v in values)


@settings(max_examples=300, deadline=None)
@given(values=st.lists(st.one_of(look_alike, anything, e164,
                                 st.integers(0, 2**64 + 5).map(lambda n: f"+{n}"),
                                 st.integers(10**19 - 3, 10**19 + 3).map(lambda n: f"+{n}"),
                                 st.from_regex(r"\A\+[0-9\n]{0,5}\Z"),
                                 st.from_regex(r"\A[+ 0-9_]{0,22}\Z")), max_size=30))
def test_bulk_mapping_is_the_exact_one(values: list[str]) -> None:
    """The chunk path (one int() per value, then arrays) decides as `as_number` does:
    a value maps iff it is exactly "+" + str(n), and to n."""
    numbers, mapped = _numbers(values)
    for index, v in enumerate(values):
        expected = as_number(v)
        ok = True if mapped is None else bool(mapped[index])
        assert ok == (expected is not None), v
        if expected is not None:
            assert int(numbers[index]) == expected
            assert "+" + str(expected) == v


@pytest.mark.parametrize(("value", "number"), [
    ("+16505551234", 16505551234), ("+0", 0), ("+9999999999999999999", 10**19 - 1),
    ("+10000000000000000000", None), ("+18446744073709551615", None),
    ("+016505551234", None), ("+1 650", None), ("+1_650", None), ("+１２", None),
    ("16505551234", None), ("+", None), ("", None), ("+-1", None), ("++1", None),
    ("+18446744073709551616", None), (" +1", None), ("+1\n", None), ("+00", None),
])
def test_as_number(value: str, number: int | None) -> None:
    assert as_number(value) == number


def test_many_runs_stay_few_sorted_and_disjoint() -> None:
    seen = SeenSet(threshold=10, chunk=7)
    numbers = [f"+{(i * 7919) % 100_003 + 1}" for i in range(5_000)]  # distinct, unsorted
    kept = list(seen.first_occurrences(numbers + numbers[:100], str, lambda v: None))
    assert kept == numbers
    assert len(seen) == 5_000
    assert 1 <= seen.runs <= math.log2(5_000) + 1
    runs = seen._runs
    assert all((run[1:] > run[:-1]).all() for run in runs)  # sorted, no value twice
    assert sum(len(run) for run in runs) == len({int(r) for run in runs for r in run})
    assert all(len(runs[i]) > 2 * len(runs[i + 1]) for i in range(len(runs) - 1))


def test_failure_while_reading_yields_what_was_read_first() -> None:
    """A bad row stops the stream after the rows before it, as without read-ahead."""
    def rows() -> Iterator[str]:
        yield from ["+1", "+2", "+1", "+3"]
        raise ValueError("bad row 5")

    seen = SeenSet(threshold=1, chunk=100)
    got: list[str] = []
    dropped: list[str] = []
    with pytest.raises(ValueError, match="bad row 5"):
        for v in seen.first_occurrences(rows(), str, dropped.append):
            got.append(v)
    assert got == ["+1", "+2", "+3"] and dropped == ["+1"]
    assert "+3" in seen and "+4" not in seen


def test_small_sets_do_not_import_numpy() -> None:
    code = (
        "import sys\n"
        "from connectly_declare.seen import SeenSet\n"
        "s = SeenSet(threshold=1000)\n"
        "kept = list(s.first_occurrences([f'+{i % 900}' for i in range(2000)], str,"
        " lambda v: None))\n"
        "s.add('x'); s.add('+5'); assert len(s) == 901 and len(kept) == 900 and '+899' in s\n"
        "assert 'numpy' not in sys.modules, 'numpy imported'\n"
        "s2 = SeenSet(threshold=1000)\n"
        "for i in range(1001): s2.add(f'+{i}')\n"
        "assert 'numpy' in sys.modules and s2.runs == 1\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.slow
def test_bench_seen_runs_and_prints_its_ratios() -> None:
    """bench/bench_seen.py still runs end to end on tiny sizes (no timing asserted)."""
    from pathlib import Path

    bench = Path(__file__).resolve().parents[1] / "bench" / "bench_seen.py"
    out = subprocess.run([sys.executable, str(bench), "--sizes", "3000", "--rows", "2000",
                          "--repeat", "1"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    for line in ("seen-filter", "seen-add", "set-keys", "compact / plain time = ",
                 "compact / plain peak RSS = "):
        assert line in out.stdout


def test_the_collector_pauses_only_within_a_chunk() -> None:
    """Past the threshold the cyclic collector is paused while a chunk is out and resumed
    after it: when the stream ends, fails, or is abandoned; never switched on if it was
    off."""
    import gc

    def failing() -> Iterator[str]:
        yield from ["+1", "+2"]
        raise ValueError("bad row")

    assert gc.isenabled()
    seen = SeenSet(threshold=1, chunk=4)
    stream = seen.first_occurrences([f"+{i}" for i in range(20)], str, lambda v: None)
    assert next(stream) == "+0" and next(stream) == "+1"  # the second is a chunk's
    assert not gc.isenabled()
    stream.close()
    assert gc.isenabled()
    # the abandoned chunk (+1 .. +4) was decided, so it counts as seen with +0
    assert list(seen.first_occurrences([f"+{i}" for i in range(30)], str,
                                       lambda v: None)) == [f"+{i}" for i in range(5, 30)]
    assert gc.isenabled()
    with pytest.raises(ValueError, match="bad row"):
        list(SeenSet(threshold=1).first_occurrences(failing(), str, lambda v: None))
    assert gc.isenabled()
    gc.disable()
    try:
        list(SeenSet(threshold=1, chunk=3).first_occurrences(["+1", "+2"] * 5, str,
                                                             lambda v: None))
        assert not gc.isenabled()
    finally:
        gc.enable()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.sampled_from(["+1650555000", "+1650555001", "+44207", "x", "+0",
                                          "+16505550002", "+33612345678", "+1"]),
                         max_size=12), max_size=8),
       st.integers(min_value=1, max_value=6), st.integers(min_value=1, max_value=5))
def test_update_by_lists_counts_as_adding_one_by_one(
        batches: list[list[str]], threshold: int, chunk: int) -> None:
    """The plan hands a chunk's sending clients over as one list: the repeats, the size
    and the membership are those of adding them one by one, below and past the threshold."""
    one, many = SeenSet(threshold, chunk), SeenSet(threshold, chunk)
    everything = set()
    for batch in batches:
        for value in batch:
            one.add(value)
        many.update(batch)
        everything.update(batch)
        assert (many.repeats, len(many), many.added) == (one.repeats, len(one), one.added)
    assert many.repeats == sum(map(len, batches)) - len(everything)
    assert all(value in many for value in everything) and "+1999" not in many


@settings(max_examples=200, deadline=None)
@given(values=st.lists(value, max_size=200), probes=st.lists(value, max_size=60),
       threshold=st.integers(1, 80), chunk=st.integers(1, 30))
def test_bulk_contains_and_parts_match_a_set(values: list[str], probes: list[str],
                                             threshold: int, chunk: int) -> None:
    """`contains` answers a chunk as `in` answers each value; `parts` gives back exactly
    the values held, each once, numbers as the integers of their `+<digits>`."""
    seen = SeenSet(threshold=threshold, chunk=chunk)
    seen.update(values)
    held = set(values)
    assert seen.contains(probes + values) == [v in held for v in probes + values]
    numbers, strings = seen.parts()
    again = [] if numbers is None else [f"+{n}" for n in numbers.tolist()]
    assert sorted(again + strings) == sorted(held)
    assert not set(again) & set(strings)
    assert all(as_number(v) is None for v in strings) or numbers is None
