"""Two or three allow_one sendouts of one campaign planned together (plan.shared): the
plan is exactly the one the per-entry path made with a dict of key -> owner (conflicts)
and a set of matched key strings (orphans, found by walking every ledger key), for random
ledgers and audiences: clients repeated across sendouts (conflicts) and within one
(duplicates), ledger keys of other and undeclared sendouts (orphans), clients that are not
E.164 (held exactly), over a plain dict and a compact KeyIndex, with the compact sets
forced on (THRESHOLD 0) and left small, and the bulk path (plan.bulkdiff.bulk_diff) taken."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import replace
from typing import Any, ClassVar, NoReturn
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectly_declare.entry import Entry, split_key
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
from connectly_declare.ledger.keyview import sendout_campaign_counts, sendout_counts
from connectly_declare.plan import make, sendout_diff, shared
from connectly_declare.plan.bulkdiff import bulk_diff
from connectly_declare.plan.model import DesiredSendout, OrphanCount, PlanOptions, PlanRefused
from connectly_declare.plan.planfile import plan_bytes
from connectly_declare.plan.sendout_diff import SendoutDiff
from connectly_declare.plan.shared import SharedCampaign
from connectly_declare.policy.timing import HELD

from .conftest import AT, NOW, entry, spec

# E.164; then: no "+" (a string in SeenSet and KeyIndex), a leading zero (the same), and
# 16 digits ("+<digits>" to SeenSet, too long for a KeyIndex code: kept whole there)
CLIENTS = [f"+1650555{n:04d}" for n in range(8)] + ["16505550100", "+0123", "+1234567890123456"]
SHARED = ("a", "b", "c")  # allow_one sendouts of "Welcome"
ERRORS = [None, {"code": "TEMPLATE_NOT_FOUND"}, {"message": "inferred: already received"}]


class Scenario:
    def __init__(self, records: list[Record], desired: list[tuple[str, str, bool, bool, bool,
                                                                   list[Entry]]],
                 samples: int, targets: tuple[str, ...]) -> None:
        self.records, self.desired, self.samples, self.targets = \
            records, desired, samples, targets

    def __repr__(self) -> str:
        return f"Scenario({self.records!r}, {self.desired!r}, {self.samples}, {self.targets})"

    def sendouts(self) -> Iterator[DesiredSendout]:
        for name, campaign, multiple, enabled, timed, entries in self.desired:
            s = spec(name, campaign=campaign, allow_multiple=multiple, variables=("name",),
                     enabled=enabled, timed=timed)
            yield DesiredSendout(s, entries if enabled else (), {"recipients": len(entries)})


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    sharing = draw(st.integers(2, 3))
    desired = []
    names = [(n, "Welcome", False) for n in SHARED[:sharing]]
    names += [("m", "Welcome", True), ("solo", "Promo", False)]
    for name, campaign, multiple in names:
        if name in ("m", "solo") and not draw(st.booleans()):
            continue
        timed = draw(st.integers(0, 4)) == 0
        entries = []
        for _ in range(draw(st.integers(0, 12))):
            one = entry(draw(st.sampled_from(CLIENTS)), sendout=name, campaign=campaign,
                        name=draw(st.sampled_from(["Ana", "Bo"])), allow_multiple=multiple)
            if timed and draw(st.booleans()):  # quiet hours hold it back
                one = replace(one, timing=HELD, zone="Europe/Paris")
            entries.append(one)
        enabled = draw(st.integers(0, 5)) > 0
        desired.append((name, campaign, multiple, enabled, timed, entries))
    records: list[Record] = [Header(lineage="L", created_at=AT)]
    for n in range(draw(st.integers(0, 12))):
        sendout, campaign, scope = draw(st.sampled_from([
            ("a", "Welcome", ""), ("b", "Welcome", ""), ("c", "Welcome", ""),
            ("old", "Welcome", ""), ("solo", "Promo", ""), ("a", "Promo", ""),
            ("m", "Welcome", "m"), ("old", "Promo", "")]))
        if draw(st.integers(0, 6)) == 0:
            records.append(Resolution(campaign, draw(st.sampled_from(CLIENTS)), scope,
                                      draw(st.sampled_from(["accepted", "rejected",
                                                            "unknown", "unsent"])),
                                      "ana", AT))
            continue
        clients = draw(st.lists(st.sampled_from(CLIENTS), min_size=1, max_size=4, unique=True))
        fps = [entry(c, name=draw(st.sampled_from(["Ana", "Bo"]))).fingerprint for c in clients]
        records.append(Intent(f"h{n}", AT, sendout, campaign, "v1", scope, {},
                              tuple(IntentEntry(c, f) for c, f in zip(clients, fps,
                                                                      strict=True))))
        status = draw(st.sampled_from(["accepted", "accepted", "rejected", "partial",
                                       "unknown", "none"]))
        if status != "none":
            records.append(Outcome(f"h{n}", AT, status,  # type: ignore[arg-type]
                                   error=draw(st.sampled_from(ERRORS))))
    targets: tuple[str, ...] = ()
    if draw(st.integers(0, 4)) == 0:
        targets = tuple(d[0] for d in desired if draw(st.booleans())) or (desired[0][0],)
    return Scenario(records, desired, draw(st.integers(0, 3)), targets)


# -- the path before plan.shared, as it was: every entry of a shared sendout through
# `_other`, a dict of key -> owner, a set of the matched keys, and orphans by a walk --

class Legacy(SendoutDiff):
    claimed: ClassVar[dict[str, str]] = {}
    seen: ClassVar[set[str]] = set()

    def consume(self, entries: Iterable[Entry]) -> None:
        if self.shared is None:
            super().consume(entries)
            return
        spec = self.spec
        for chunk, verdicts in self._classified(entries):
            for one, verdict in zip(chunk, verdicts, strict=True):
                if (one.sendout != spec.name or one.campaign != spec.campaign
                        or one.version != spec.version
                        or one.allow_multiple is not spec.allow_multiple):
                    self.mismatched += 1
                    continue
                key = self._prefix + one.client + self._suffix
                known = self.keys.get(key) if verdict else None
                if known is not None:
                    self.seen.add(known.key)
                self._other(one, known)
            if self._claiming:
                self._claim(self._claiming)
                self._claiming.clear()
        self.matched_other.clear()  # the matched keys are in `seen`, not counted

    def _claim(self, clients: list[str]) -> None:
        if self.shared is None:
            super()._claim(clients)
            return
        for client in clients:  # as `_other` did, entry by entry
            key = self._prefix + client + self._suffix
            owner = self.claimed.get(key)
            if owner is None:
                self.claimed[key] = self.spec.name
            elif owner == self.spec.name:
                self.duplicates += 1
            else:
                self.conflicts[owner] += 1


def legacy_orphans(state: LedgerState, _: object, planners: dict[str, SendoutDiff],
                   skip: set[str], targets: tuple[str, ...]) -> tuple[OrphanCount, ...]:
    seen = Legacy.seen

    def relevant(sendout: str) -> bool:
        return sendout not in skip and (not targets or sendout in targets)

    totals = sendout_counts(state.keys)
    matched: Counter[tuple[str, str]] = Counter()
    for planner in planners.values():
        campaign = planner.spec.campaign
        matched[(planner.spec.name, campaign)] += planner.matched_own
        for sendout, count in planner.matched_other.items():
            matched[(sendout, campaign)] += count
    with_orphans = {s for s, n in totals.items() if relevant(s)
                    and n > sum(c for (o, _), c in matched.items() if o == s)}
    if not with_orphans and not seen:
        return ()
    counts: Counter[tuple[str, str]] = Counter()
    if not seen:
        counts = sendout_campaign_counts(state.keys, with_orphans)
    for key, known in state.keys.items() if seen else ():
        if relevant(known.sendout) and key not in seen:
            counts[(known.sendout, split_key(key)[0])] += 1
    counts.subtract(matched)
    orphans = tuple(OrphanCount(s, c, n) for (s, c), n in sorted(counts.items()) if n > 0)
    for orphan in orphans:
        if orphan.sendout in planners:
            planners[orphan.sendout].counts["orphan"] += orphan.count
    return orphans


def outcome(scenario: Scenario, state: LedgerState) -> bytes | list[str]:
    try:
        plan = make.make_plan(list(scenario.sendouts()), state,
                              PlanOptions(samples=scenario.samples, targets=scenario.targets),
                              now=NOW)
    except PlanRefused as refused:
        return [str(p) for p in refused.problems]
    return plan_bytes(plan)


def legacy(scenario: Scenario, state: LedgerState) -> bytes | list[str]:
    Legacy.claimed, Legacy.seen = {}, set()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(make, "SendoutDiff", Legacy)
        patch.setattr(make, "_orphans", legacy_orphans)
        return outcome(scenario, state)


def states(records: list[Record]) -> tuple[LedgerState, LedgerState]:
    folder = BulkFolder(threshold=0)
    for record in records:
        folder.add(record)
    compact = folder.state()
    plain = fold(records)
    assert isinstance(compact.keys, KeyIndex) and isinstance(plain.keys, dict)
    return plain, compact


def _no_walk(*_: Any) -> NoReturn:
    raise AssertionError("the plan walked every key of the compact index")


@settings(max_examples=300, deadline=None)
@given(scenarios(), st.sampled_from([0, None]))
def test_shared_campaigns_plan_what_the_per_key_path_planned(
        scenario: Scenario, threshold: int | None) -> None:
    plain, compact = states(scenario.records)
    expected = legacy(scenario, plain)
    assert legacy(scenario, compact) == expected
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(shared, "THRESHOLD", threshold)  # 0: compact from the first client
        patch.setattr(sendout_diff, "_CHUNK", 3)  # many chunks, some bulk, some not
        assert outcome(scenario, plain) == expected
        with ExitStack() as stack:  # over the index: counted in bulk, never walked
            for name in ("__iter__", "values", "items", "sorted_states"):
                stack.enter_context(mock.patch.object(KeyIndex, name, _no_walk))
            assert outcome(scenario, compact) == expected


# -- the examples that show the property test has teeth --

def _two_sendouts(clients_a: list[str], clients_b: list[str]) -> Scenario:
    return Scenario([Header(lineage="L", created_at=AT)], [
        (name, "Welcome", False, True, False, [entry(c, sendout=name) for c in clients])
        for name, clients in (("a", clients_a), ("b", clients_b))], 0, ())


def test_a_conflict_is_found_in_bulk_past_the_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both sendouts through the bulk path with compact sets: the client both send is a
    conflict, the one `b` holds twice a duplicate, as the dict of owners said."""
    taken: list[bool] = []
    real = bulk_diff
    monkeypatch.setattr(sendout_diff, "bulk_diff", lambda diff, c, v: taken.append(
        real(diff, c, v)) or taken[-1])
    monkeypatch.setattr(shared, "THRESHOLD", 0)
    monkeypatch.setattr(sendout_diff, "_CHUNK", 2)
    scenario = _two_sendouts(CLIENTS[:4], [*CLIENTS[3:6], CLIENTS[5]])
    plain, compact = states(scenario.records)
    problems = outcome(scenario, compact)
    assert isinstance(problems, list) and len(problems) == 2, problems
    conflict, duplicate = sorted(problems, key=lambda p: not p.startswith("sendouts"))
    assert conflict.startswith("sendouts a and b would both send campaign 'Welcome' to "
                               "the same 1 client under allow_one")
    assert duplicate.startswith("sendout b holds 1 client more than once")
    assert problems == legacy(scenario, plain) == outcome(scenario, plain)
    assert True in taken


def test_the_claims_are_compact_and_exact() -> None:
    campaign = SharedCampaign("Welcome", threshold=0)
    a, b = campaign.join("a"), campaign.join("b")
    assert campaign.claim(a, ["+16505550000", "+16505550001", "16505550100"]) == Counter()
    conflicts = campaign.claim(b, ["+16505550001", "16505550100", "+16505550002",
                                   "+16505550002", "+16505550003"])
    assert conflicts == Counter({"a": 2})
    assert a.runs and b.runs  # numbers in sorted runs, not strings
    assert b.repeats == 1 and len(b) == 2
    # a string that is not `+<digits>` is exact: a near miss is no conflict
    assert campaign.claim(b, ["1650555010", "+16505550000"]) == Counter({"a": 1})
