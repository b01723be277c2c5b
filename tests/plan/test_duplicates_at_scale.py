"""A client twice in one sendout is refused with the same count whether the sendout's
sending keys sit in a plain set or, past `seen.THRESHOLD`, in sorted number runs (made
tiny here so a few hundred entries cross it many times). Clients that are not E.164 are
refused as invalid before they reach the sending keys, never counted as repeats."""

from __future__ import annotations

import random

import pytest

from connectly_declare import seen
from connectly_declare.errors import PlanError
from connectly_declare.ledger.base import LedgerState
from connectly_declare.plan.make import PlanOptions, make_plan
from connectly_declare.plan.validity import E164

from .conftest import NOW, desired, entry, spec

CLIENTS = [f"+1650555{n:04d}" for n in range(200)] + ["client-1", "+0165", "+1 650"]


def refusal(entries: list[str], *, allow_multiple: bool) -> str | None:
    sendout = "welcome"
    items = [desired(spec(sendout, allow_multiple=allow_multiple),
                     [entry(c, allow_multiple=allow_multiple) for c in entries])]
    try:
        make_plan(items, LedgerState(None, 0), PlanOptions(), now=NOW)  # type: ignore[arg-type]
    except PlanError as err:
        return str(err)
    return None


@pytest.mark.parametrize("allow_multiple", [False, True])
@pytest.mark.parametrize(("threshold", "chunk"), [(1, 1), (7, 5), (50, 1000)])
def test_repeats_counted_the_same_past_the_threshold(
        monkeypatch: pytest.MonkeyPatch, threshold: int, chunk: int,
        allow_multiple: bool) -> None:
    rng = random.Random(threshold + chunk)
    clients = [rng.choice(CLIENTS) for _ in range(400)]
    valid = [c for c in clients if E164.fullmatch(c)]
    repeats = len(valid) - len(set(valid))
    plain = refusal(clients, allow_multiple=allow_multiple)
    monkeypatch.setattr(seen, "THRESHOLD", threshold)
    monkeypatch.setattr(seen, "CHUNK", chunk)
    compact = refusal(clients, allow_multiple=allow_multiple)
    assert compact == plain and compact is not None
    assert f"holds {repeats:,} clients more than once" in compact
    distinct = list(dict.fromkeys(clients))
    assert refusal(distinct, allow_multiple=allow_multiple) is None
