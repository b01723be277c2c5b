"""Frequency caps at scale (plan.capcount): the crowded clients and their history, found in
bulk from a compact KeyIndex and from arrays of the plan's clients, are exactly what the
plain walk finds (policy.caps.ledger_history over the dict, a Counter of the plan's
clients); and a whole plan under caps is the same over either ledger and either count
(hypothesis)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectly_declare.entry import Entry, fingerprint
from connectly_declare.ledger.base import (
    Header,
    Intent,
    IntentEntry,
    LedgerState,
    Outcome,
    Record,
    Resolution,
)
from connectly_declare.ledger.bulkfold import BulkFolder
from connectly_declare.ledger.fold import fold
from connectly_declare.ledger.keyindex import KeyIndex
from connectly_declare.plan import capcount, capplace
from connectly_declare.plan.make import make_plan
from connectly_declare.plan.model import DesiredSendout, PlanOptions, SendoutSpec
from connectly_declare.plan.planfile import plan_bytes
from connectly_declare.plan.spool import CHUNK_ENV, MEMORY_ENV
from connectly_declare.policy.caps import epoch, ledger_history

NOW = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
# E.164 clients, one a text prefix of another, and one that is not E.164 (a key the index
# keeps whole, as it does a fingerprint that is not 32 hex digits)
CLIENTS = ["+4915112345678", "+491511234567", "+5511987654321", "+6281234567890",
           "+16505550100", "0016505550100"]
SENDOUTS = ["a-news", "b-offer", "c-survey", "old-promo"]
CAPS = [(1, 86400, "1 per 1d"), (2, 7 * 86400, "2 per 7d"), (3, 30 * 86400, "3 per 30d")]


def _fp(client: str, kind: int) -> str:
    """0: the content a plan sends now; 1: other content (a later attempt with it keeps
    the accepted fingerprint of the first); 2: not 32 hex digits (kept whole)."""
    return "odd-fingerprint" if kind == 2 else fingerprint(None, {"c": client, "k": str(kind)},
                                                           None, 1)


@st.composite
def ledgers(draw: st.DrawFn) -> list[Record]:
    records: list[Record] = [Header(lineage="L", created_at="2027-01-01T00:00:00+00:00")]
    for n in range(draw(st.integers(0, 14))):
        when = (NOW - timedelta(hours=draw(st.integers(0, 24 * 40)))).isoformat()
        sendout = draw(st.sampled_from(SENDOUTS))
        scope = draw(st.sampled_from(["", sendout]))  # allow_one, or allow_multiple's
        if draw(st.integers(0, 6)) == 0:
            records.append(Resolution(sendout, draw(st.sampled_from(CLIENTS)), scope,
                                      draw(st.sampled_from(["accepted", "rejected"])),
                                      "ana", when))
            continue
        clients = draw(st.lists(st.sampled_from(CLIENTS), min_size=1, max_size=4, unique=True))
        records.append(Intent(f"b{n}", when, sendout, sendout, None, scope, {}, tuple(
            IntentEntry(c, _fp(c, draw(st.sampled_from([0, 0, 1, 2])))) for c in clients)))
        status = draw(st.sampled_from(["accepted", "accepted", "rejected", "unknown", "none"]))
        if status != "none":
            records.append(Outcome(f"b{n}", when, status))  # type: ignore[arg-type]
    return records


def _states(records: list[Record]) -> tuple[LedgerState, LedgerState]:
    folder = BulkFolder(threshold=0)
    for record in records:
        folder.add(record)
    compact = folder.state()
    assert isinstance(compact.keys, KeyIndex)
    return fold(records), compact


@settings(max_examples=500, deadline=None)
@given(ledgers(), st.lists(st.sampled_from(CLIENTS), max_size=14),
       st.sets(st.sampled_from(SENDOUTS)), st.booleans(), st.integers(0, 3))
def test_crowded_clients_and_their_history_equal_the_plain_walk(
        records: list[Record], plan_clients: list[str], exempt: set[str], ahead: bool,
        least: int) -> None:
    scheduled = {"old-promo": epoch((NOW + timedelta(days=2)).isoformat())} if ahead else {}
    plain, compact = _states(records)
    counter = Counter(plan_clients)
    # the plain walk, as plan.make did it before
    history = ledger_history(plain.keys, counter, exempt, scheduled)
    expected = {c for c, n in counter.items() if n > least} | {
        c for c, times in history.items() if counter[c] + len(times) > least}
    for state in (plain, compact):
        for threshold in (0, 2, 1000):  # arrays from the first client, midway, never
            chunks = [plan_clients[i:i + 3] for i in range(0, len(plan_clients), 3)]
            planned = capcount.planned_clients(chunks, threshold)
            assert bool(planned) == bool(counter)
            assert all(planned.count(c) == counter[c] for c in CLIENTS)
            crowds, found = capcount.crowded(state.keys, planned, exempt, scheduled, least)
            assert crowds == expected
            assert found == {c: history[c] for c in expected if c in history}


def _plan(state: LedgerState, clients: list[str], caps: tuple[tuple[int, int, str], ...]
          ) -> bytes:
    specs = [SendoutSpec("a-news", "a-news"), SendoutSpec("b-offer", "b-offer", priority=5),
             SendoutSpec("c-survey", "c-survey", exempt=True)]
    desired = [DesiredSendout(s, [
        Entry(s.name, s.campaign, None, c, {"c": c, "k": "0"}, None, 1, False, _fp(c, 0),
              source="inline:1") for c in clients if c.startswith("+")]) for s in specs]
    return plan_bytes(make_plan(desired, state, PlanOptions(frequency_caps=caps), now=NOW))


@settings(max_examples=100, deadline=None)
@given(ledgers(), st.lists(st.sampled_from(CLIENTS), unique=True),
       st.lists(st.sampled_from(CAPS), min_size=1, max_size=3, unique=True))
def test_a_plan_under_caps_is_the_same_over_the_index_and_the_dict(
        records: list[Record], clients: list[str], caps: list[tuple[int, int, str]]) -> None:
    plain, compact = _states(records)
    expected = _plan(plain, clients, tuple(caps))
    assert _plan(compact, clients, tuple(caps)) == expected
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(capcount, "SMALL", 0)  # the plan's clients counted in arrays
        assert _plan(compact, clients, tuple(caps)) == expected
        assert _plan(plain, clients, tuple(caps)) == expected
        # and every entry to send on disk, in chunks of 2 (rows read back by position)
        patch.setenv(MEMORY_ENV, "0")
        patch.setenv(CHUNK_ENV, "2")
        assert _plan(plain, clients, tuple(caps)) == expected
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(capplace, "BLOCK", 1)  # one crowded entry out of the arrays at a time
        assert _plan(compact, clients, tuple(caps)) == expected


@pytest.mark.parametrize("later", ["rejected", "unknown", "partial"])
def test_a_delivery_kept_through_a_later_failed_attempt_counts(later: str) -> None:
    # allow_multiple: accepted once, then another content's attempt failed or was lost:
    # the key's status is the later one, its accepted fingerprint the first's (a side
    # field of the index): a delivery all the same
    client, when = CLIENTS[0], NOW.isoformat()
    records: list[Record] = [
        Header(lineage="L", created_at="2027-01-01T00:00:00+00:00"),
        Intent("b1", when, "a-news", "a-news", None, "a-news", {},
               (IntentEntry(client, _fp(client, 1)),)),
        Outcome("b1", when, "accepted"),
        Intent("b2", when, "a-news", "a-news", None, "a-news", {},
               (IntentEntry(client, _fp(client, 0)),)),
        Outcome("b2", when, later)]  # type: ignore[arg-type]
    plain, compact = _states(records)
    assert compact.keys[next(iter(plain.keys))].status == later
    for state in (plain, compact):
        planned = capcount.planned_clients([[client]], 0)
        assert capcount.crowded(state.keys, planned, set(), {}, 1) == (
            {client}, {client: [epoch(when)]})


@pytest.mark.parametrize("memory", [0, 3, 100])
def test_client_chunks_reads_a_spool_on_disk_and_in_memory(memory: int) -> None:
    from itertools import chain

    from connectly_declare.plan.model import PlannedEntry
    from connectly_declare.plan.spool import Spool, client_chunks

    clients = [f"+4915112345{n:03d}" for n in range(10)]
    planned = [PlannedEntry("send", Entry("a", "a", None, c, {"c": c}, None, 1, False,
                                          _fp(c, 0)), "") for c in clients]
    spool = Spool(planned, memory=memory, chunk=4)
    assert (spool.on_disk > 0) == (memory < len(clients))
    assert list(chain.from_iterable(client_chunks(spool))) == clients
    assert list(chain.from_iterable(client_chunks(tuple(planned)))) == clients


def test_held_and_capped_entries_are_summarised_from_their_tally() -> None:
    # a sendout keeps entries quiet hours held back or caps capped as a tally of
    # (zone, timing bits), not a list: the summary counts them as it counted the entries
    from connectly_declare.policy.summary import sending_shape, timing_shape, timing_summary
    from connectly_declare.policy.timing import SHIFTED, ZONE_FALLBACK, ZONE_FROM_NUMBER

    def one(client: str, zone: str, timing: int) -> Entry:
        return Entry("a", "a", None, client, {}, None, 1, False, _fp(client, 0), zone=zone,
                     timing=timing)

    sending = [one(CLIENTS[0], "Europe/Berlin", ZONE_FROM_NUMBER)]
    held = [one(CLIENTS[2], "America/Sao_Paulo", ZONE_FROM_NUMBER | SHIFTED),
            one(CLIENTS[3], "Asia/Jakarta", ZONE_FALLBACK)]
    capped = [one(CLIENTS[4], "America/Sao_Paulo", ZONE_FROM_NUMBER)]
    summary = timing_summary(map(sending_shape, sending), Counter(map(timing_shape, held)),
                             Counter(map(timing_shape, capped)), NOW)
    assert (summary["held"], summary["capped"], summary["shifted"]) == (2, 1, 1)
    assert summary["zones"] == {"from_number": 3, "given": 0, "fallback": 1}
    assert summary["zone_count"] == 3
    assert summary["top_zones"] == [["America/Sao_Paulo", 2], ["Asia/Jakarta", 1],
                                    ["Europe/Berlin", 1]]
    assert summary["local_hours"] == {"13": 1}  # hours count the entries to send only
