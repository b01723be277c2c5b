"""A plan made while it is sent (plan.stream): the same sends, in the same order, as the
plan made whole; guards of one sendout stop the stream before the chunk that tripped them
is handed on; plans that could trip a guard of the whole plan are not streamed."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectly_declare.entry import Entry
from connectly_declare.ledger.base import Header, Intent, IntentEntry, Outcome, Record
from connectly_declare.ledger.fold import fold
from connectly_declare.plan import stream
from connectly_declare.plan.make import iter_plan, make_plan
from connectly_declare.plan.model import DesiredSendout, PlanOptions, PlanRefused, SendoutSpec
from connectly_declare.plan.stream import why_not_stream

from .conftest import AT, NOW, desired, entry, spec

CLIENTS = [f"+1650555{n:04d}" for n in range(40)]


def streamed(items: list[object], state: object, options: PlanOptions) -> tuple[list, object]:
    steps = iter_plan(items, state, options, now=NOW, stream=True)  # type: ignore[arg-type]
    sent = []
    while True:
        try:
            item = next(steps)
        except StopIteration as done:
            return sent, done.value
        if item is not None:
            sent.append(item)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_the_stream_sends_what_the_whole_plan_sends(data: st.DataObject) -> None:
    chunk = stream.CHUNK
    stream.CHUNK = data.draw(st.integers(1, 7))
    try:
        check_same_sends(data)
    finally:
        stream.CHUNK = chunk


def check_same_sends(data: st.DataObject) -> None:
    multiple = data.draw(st.booleans())
    names = ["Ana", "Bo"]
    wanted = [entry(c, name=data.draw(st.sampled_from(names)), allow_multiple=multiple)
              for c in CLIENTS if data.draw(st.booleans())]
    wanted.append(entry("+1650", allow_multiple=multiple))  # invalid: failed, not sent
    other = [entry(c, sendout="later", campaign="Later") for c in CLIENTS[:9]]
    records: list[Record] = [Header(lineage="L", created_at=AT)]
    for n in range(data.draw(st.integers(0, 30))):
        e = entry(data.draw(st.sampled_from(CLIENTS)), name=data.draw(st.sampled_from(names)),
                  allow_multiple=multiple)
        records.append(Intent(f"h{n}", AT, "welcome", "Welcome", "v1", e.scope, {},
                              (IntentEntry(e.client, e.fingerprint),)))
        status = data.draw(st.sampled_from(["accepted", "rejected", "unknown", "none"]))
        if status != "none":
            records.append(Outcome(f"h{n}", AT, status))  # type: ignore[arg-type]
    state = fold(records)
    items = [desired(spec(allow_multiple=multiple, variables=("name",)), wanted),
             desired(spec("later", campaign="Later", variables=("name",)), other)]
    assert why_not_stream([d.spec for d in items], PlanOptions(), NOW) is None
    whole = make_plan(items, state, PlanOptions(), now=NOW)
    sent, plan = streamed(items, state, PlanOptions())
    assert [(s.name, p) for s, p in sent] == [(s.name, p) for s, p in whole.iter_sends()]
    # the streamed plan holds counts, samples and notes, not its entries
    assert all(len(s.to_send) == 0 for s in plan.sendouts)
    assert tuple(replace(s, to_send=()) for s in plan.sendouts) == tuple(
        replace(s, to_send=()) for s in whole.sendouts)


def test_one_client_twice_stops_the_stream_before_its_chunk(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream, "CHUNK", 4)
    entries = [entry(c) for c in CLIENTS[:10]] + [entry(CLIENTS[2])]  # 11th repeats the 3rd
    entries += [entry(c) for c in CLIENTS[10:14]]
    steps = iter_plan([desired(spec(), entries)], fold([]), PlanOptions(), now=NOW,
                      stream=True)
    sent = []
    with pytest.raises(PlanRefused, match="more than once"):
        for item in steps:
            if item is not None:
                sent.append(item[1].entry.client)
    assert sent == CLIENTS[:8]  # the chunk holding the repeat went nowhere


def test_a_past_schedule_stops_the_stream_at_once() -> None:
    past = "2020-01-01T09:00:00+00:00"
    entries = [entry(c, scheduled_at=past) for c in CLIENTS[:3]]
    steps = iter_plan([desired(spec(), entries)], fold([]), PlanOptions(), now=NOW,
                      stream=True)
    with pytest.raises(PlanRefused, match="in the past"):
        assert [item for item in steps if item is not None] == []


@pytest.mark.parametrize(("specs", "options", "why"), [
    ([spec()], PlanOptions(max_recipients=10), "--max-recipients"),
    ([spec()], PlanOptions(targets=("nothing",)), "--target"),
    ([spec(max_recipients=5)], PlanOptions(), "max_recipients"),
    ([spec(), spec("second")], PlanOptions(), "both send campaign 'Welcome' under allow_one"),
    ([spec(), spec("second")], PlanOptions(targets=("second",)), None),
    ([spec(), spec("second", enabled=False)], PlanOptions(), None),
    ([spec(), spec("second", allow_multiple=True)], PlanOptions(), None),
    ([spec()], PlanOptions(frequency_caps=((1, 60, "1 per 1m"),)), "frequency caps"),
    ([spec()], PlanOptions(recover_in_doubt=True), "--recover-in-doubt"),
    ([spec(timed=True)], PlanOptions(), "quiet hours"),
    ([spec(instant="2020-01-01T00:00:00+00:00")], PlanOptions(), "in the past"),
    ([spec(instant="2020-01-01T00:00:00+00:00")], PlanOptions(allow_past_schedule=True), None),
    ([spec(instant="2030-01-01T00:00:00+00:00")], PlanOptions(), None),
])
def test_only_plans_whose_whole_plan_guards_cannot_fail_stream(
        specs: list[SendoutSpec], options: PlanOptions, why: str | None) -> None:
    found = why_not_stream(specs, options, NOW)
    assert (found is None) if why is None else (found is not None and why in found)


def test_the_collector_runs_between_chunks_whatever_the_audience_paused(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """seen.SeenSet pauses the collector while its read-ahead is out: suspended there, it
    must not keep the collector paused while the stream's requests are sent."""
    import gc

    monkeypatch.setattr(stream, "CHUNK", 2)

    def read_ahead() -> Iterator[Entry]:
        gc.disable()  # as first_occurrences does for a chunk
        try:
            yield from (entry(c) for c in CLIENTS[:6])
        finally:
            gc.enable()

    assert gc.isenabled()
    steps = iter_plan([DesiredSendout(spec(), read_ahead())], fold([]), PlanOptions(),
                      now=NOW, stream=True)
    states = []
    for item in steps:
        if item is not None:
            states.append(gc.isenabled())
    assert states == [True] * 6
