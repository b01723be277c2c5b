"""The database-side diff (ledger/pg_diff.py) gives, for the keys asked about, exactly the
states the ordinary fold of the whole ledger gives, on random ledgers that exercise every
fold rule: retried and superseded batches, a batch id reused by a later intent, outcomes
without an intent, allow_one keys accepted then re-attempted, resolutions single and bulk
(`unsent` forgets a key), and keys with characters COPY and JSON must escape."""

from __future__ import annotations

import random
from collections.abc import Callable

import psycopg
import pytest

from connectly_declare.entry import make_key
from connectly_declare.ledger.base import Intent, IntentEntry, Outcome, Record, Resolution
from connectly_declare.ledger.pg_diff import matched_state
from connectly_declare.ledger.postgres import PostgresLedger
from tests.postgres.helpers import put

CLIENTS = ["+14155550100", "+14155550101", "+442071838750", "+4915112345678",
           'odd "quoted" \\ client', "tab\there", "line\nbreak", "ünï\x1fcödé"]
CAMPAIGNS = ["spring promo", "c\\2"]
SCOPES = ["", "wave-a"]
STATUSES = ["accepted", "rejected", "partial", "unknown"]
VERDICTS = ["accepted", "rejected", "unknown", "unsent"]


def random_ledger(rng: random.Random, steps: int) -> list[Record]:
    records: list[Record] = []
    batches: list[str] = []
    keys = [(c, k, s) for c in CAMPAIGNS for k in CLIENTS for s in SCOPES]
    for step in range(steps):
        at = f"2026-11-26T10:{step // 60:02d}:{step % 60:02d}Z"
        roll = rng.random()
        if roll < 0.45 or not batches:
            # a batch id reused now and then: the outcome belongs to the latest intent
            batch = rng.choice(batches) if batches and rng.random() < 0.1 else f'b"{step}\\'
            batches.append(batch)
            campaign, scope = rng.choice(CAMPAIGNS), rng.choice(SCOPES)
            multiple = {"if_duplicate_check_unspecified": "allow_one"} if rng.random() < 0.3 \
                else {}
            chosen = rng.sample(CLIENTS, rng.randint(0, 4))
            records.append(Intent(batch, at, "spring", campaign, "v1", scope, multiple,
                                  tuple(IntentEntry(c, f"fp-{rng.randint(0, 2)}")
                                        for c in chosen)))
        elif roll < 0.8:
            batch = rng.choice(batches) if rng.random() < 0.9 else f"nowhere-{step}"
            status = rng.choice(STATUSES)
            error = {"code": "NOT_FOUND"} if status == "rejected" and rng.random() < 0.5 \
                else None
            records.append(Outcome(batch, at, status, sendout_id=f"so-{step}",  # type: ignore[arg-type]
                                   http_status=200, error=error))
        else:
            picked = rng.sample(keys, rng.randint(1, 4))
            (campaign, client, scope), *more = picked
            records.append(Resolution(campaign, client, scope, rng.choice(VERDICTS),  # type: ignore[arg-type]
                                      "tester@host", at, "checked", tuple(more)))
    return records


@pytest.mark.parametrize("seed", range(6))
def test_matched_state_is_the_full_fold_restricted_to_the_keys(
        make_ledger: Callable[..., PostgresLedger], pg_dsn: str, pg_schema: str,
        seed: int) -> None:
    rng = random.Random(seed)
    ledger = make_ledger()
    records = random_ledger(rng, 120)
    put(ledger, records[:60])
    put(ledger, records[60:])
    full = ledger.read()
    assert len(full.keys) > 10  # the random ledger holds enough keys to mean something
    every = [make_key(c, k, s) for c in CAMPAIGNS for k in CLIENTS for s in SCOPES]
    wanted = [*rng.sample(every, len(every) // 2), "spring promo\x1f+10000000000\x1f"]
    wanted += wanted[:3]  # an audience may repeat a key: asked twice, folded once
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        got = matched_state(conn, pg_schema, ledger.name, iter(wanted))
        everything = matched_state(conn, pg_schema, ledger.name, iter(every))
    expected = {k: v for k, v in full.keys.items() if k in set(wanted)}
    assert got.keys == expected
    assert everything.keys == full.keys
    assert (got.serial, got.lineage) == (full.serial, full.lineage)


def test_a_fresh_audience_gets_nothing_back(
        make_ledger: Callable[..., PostgresLedger], pg_dsn: str, pg_schema: str) -> None:
    ledger = make_ledger()
    put(ledger, random_ledger(random.Random(7), 40))
    fresh = (make_key("spring promo", f"+1999{i:07d}") for i in range(5000))
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        got = matched_state(conn, pg_schema, ledger.name, fresh)
        missing = matched_state(conn, "no_such_schema", ledger.name, iter(["x"]))
    assert got.keys == {} and got.serial == ledger.read().serial > 0
    assert (missing.keys, missing.serial, missing.lineage) == ({}, 0, None)
