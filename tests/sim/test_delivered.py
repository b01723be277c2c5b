"""The simulator's compact memory of deliveries (sim/delivered.py): the same answers as a
plain set of clients and a plain list of entries, across merges into the sorted array."""

from __future__ import annotations

import json
import random
import tracemalloc

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectly_declare.sim import Catalog, Simulator, delivered
from connectly_declare.sim.delivered import Recipients, client_number, pack, unpack
from connectly_declare.sim.engine import parse_request

CATALOG = Catalog.model_validate({"businesses": [{"id": "b", "api_keys": ["k"], "campaigns": [
    {"name": "promo", "versions": [{"label": "v1", "variables": ["name"]}]}]}]})


def test_recipients_answer_as_a_set_across_merges(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(delivered, "MERGE_AT", 8)  # many merges into the sorted array
    rng = random.Random(5)
    book, model = Recipients(), set()
    for _ in range(300):
        numbers = [rng.randrange(10**6, 10**6 + 500) for _ in range(rng.randrange(0, 12))]
        assert book.known(numbers) == [n in model for n in numbers]
        book.add(numbers)
        model.update(numbers)
    assert book._runs.size > 0  # the array was used, not only the set
    probe = list(range(10**6 - 5, 10**6 + 505))
    assert book.known(probe) == [n in model for n in probe]


@given(st.lists(st.integers(0, 2**63), max_size=60), st.lists(st.integers(0, 2**63), max_size=60))
def test_a_merge_is_the_sorted_union(runs: list[int], fresh: list[int]) -> None:
    # merged() inserts into the sorted array instead of re-sorting it; it must be union1d
    before = np.unique(np.array(runs, np.uint64))
    after = delivered.merged(before, np.array(fresh + runs[:3], np.uint64))
    assert after.dtype == np.uint64
    assert after.tolist() == sorted(set(runs) | set(fresh))


def test_client_numbers_are_distinct_for_distinct_e164_clients() -> None:
    clients = ["+1415200000", "+14152000000", "+999999999999999", "+1000000"]
    assert len({client_number(c) for c in clients}) == len(clients)
    assert client_number("+999999999999999") < 2**63


def test_pack_keeps_every_field_exactly() -> None:
    items = [("+14155550100", {"name": "Zoë \u202e", "x": ""}, None),
             ("+4930123456", None, "2030-03-01T09:00:00+01:00"),
             ("+81312345678", {"bad": "\ud800"}, None)]
    assert unpack(pack(items)) == items


def _send(sim: Simulator, clients: list[str], option: str = "allow_one") -> int:
    body = {"entries": [{"client": c, "campaignName": "promo", "variables": {"name": "N"}}
                        for c in clients],
            "options": {"if_duplicate_check_unspecified": option}}
    _, answer = sim.state.send("b", parse_request(json.dumps(body).encode()), 1.0)
    return int(answer["data"][0]["acceptedCount"])


def test_allow_one_repeats_are_refused_after_many_deliveries(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(delivered, "MERGE_AT", 16)
    sim = Simulator(CATALOG, rate_limit=None)
    clients = [f"+1415{2_000_000 + i:07d}" for i in range(400)]
    for start in range(0, 400, 40):
        assert _send(sim, clients[start:start + 40]) == 40
    assert _send(sim, [*clients[::7], "+16505550100"]) == 1  # only the new one
    assert _send(sim, clients[:3], "allow_multiple") == 3  # allow_multiple delivers again
    found = sim.state.deliveries
    assert len(found) == 404
    assert [d.client for d in found[:400]] == clients
    assert found[0].variables == {"name": "N"}


def test_memory_per_delivery_is_tens_of_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(delivered, "MERGE_AT", 1024)  # as at scale: most in the array
    sim = Simulator(CATALOG, rate_limit=None)
    bodies = [json.dumps({"entries": [
        {"client": f"+1415{2_000_000 + r * 100 + i:07d}", "campaignName": "promo",
         "variables": {"name": f"Person {r * 100 + i}"}} for i in range(100)]}).encode()
        for r in range(200)]
    parsed = [parse_request(b) for b in bodies]
    for request in parsed[:40]:  # warm: numpy imports modules on its first merge
        sim.state.send("b", request, 1.0)
    parsed = parsed[40:]
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for request in parsed:
        sim.state.send("b", request, 1.0)
    del parsed
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    # kept whole (client and variables objects, a tuple, a set entry) it was ~400 bytes
    assert grown / 16_000 < 40
