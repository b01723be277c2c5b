"""The bulk fold (ledger.bulkfold) gives key for key what the Folder gives, for any stream of
records (hypothesis), and the KeyIndex it builds answers like the dict it replaces."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import astuple

from hypothesis import given, settings
from hypothesis import strategies as st

from connectly_declare.entry import KEY_SEPARATOR
from connectly_declare.ledger import codec
from connectly_declare.ledger.base import (
    Header,
    Intent,
    IntentEntry,
    KeyState,
    LedgerState,
    Outcome,
    Record,
    Resolution,
)
from connectly_declare.ledger.bulkfold import BulkFolder
from connectly_declare.ledger.fold import fold
from connectly_declare.ledger.keyindex import ABSENT, CHANGED, OTHER, SAME, KeyIndex
from connectly_declare.ledger.keyview import (
    classify,
    keys_with_status,
    sendout_campaign_counts,
    sendout_counts,
)

# E.164 clients, and a few the index cannot encode (kept whole in its side dict)
CLIENTS = ["+16505550001", "+16505550002", "+447700900123", "+999999999999999", "+0",
           "+012", "16505550001", "+1 650", "+١٢٣", '+1"2', "+1234567890123456", "+"]
FPS = ["0" * 32, "0123456789abcdef" * 2, "f" * 32, "x", "ABCDEF0123456789" * 2]
CAMPAIGNS = ["Welcome", "Promo"]
SCOPES = ["", "spring"]
TIMES = [f"2026-11-26T12:00:{s:02d}+00:00" for s in range(4)]
ERRORS = [None, {"code": "NOT_FOUND", "message": "no template"},
          {"message": "already received"}]


@st.composite
def streams(draw: st.DrawFn) -> list[Record]:
    records: list[Record] = [Header(lineage="L", created_at=TIMES[0])]
    open_batches: list[str] = []
    for n in range(draw(st.integers(1, 25))):
        kind = draw(st.sampled_from(["pair", "pair", "pair", "intent", "outcome",
                                     "resolution"]))
        if kind in ("pair", "intent"):
            batch = f"b{n}"
            scope = draw(st.sampled_from(SCOPES))
            many = draw(st.booleans())  # a recovery: scoped keys re-sent under allow_one
            options = {"if_duplicate_check_unspecified":
                       "allow_one" if not scope or not many else "allow_multiple"}
            entries = draw(st.lists(st.tuples(st.sampled_from(CLIENTS), st.sampled_from(FPS)),
                                    min_size=0, max_size=5))
            records.append(Intent(batch, draw(st.sampled_from(TIMES)),
                                  draw(st.sampled_from(["welcome", "spring", "old"])),
                                  draw(st.sampled_from(CAMPAIGNS)),
                                  draw(st.sampled_from([None, "v1"])), scope, options,
                                  tuple(IntentEntry(c, f) for c, f in entries)))
            open_batches.append(batch)
            if kind == "pair":
                kind = "outcome"
        if kind == "outcome" and open_batches:
            pick = draw(st.integers(0, len(open_batches) - 1)) if draw(st.booleans()) else -1
            batch = open_batches.pop(pick)
            if draw(st.integers(0, 9)) == 0:
                batch = "nobody"  # an outcome without its intent
            records.append(Outcome(
                batch, draw(st.sampled_from(TIMES)),
                draw(st.sampled_from(["accepted", "rejected", "partial", "unknown"])),
                sendout_id=draw(st.sampled_from([None, "s1", "s2"])),
                http_status=draw(st.sampled_from([None, 400])),
                error=draw(st.sampled_from(ERRORS))))
        elif kind == "resolution":
            keys = draw(st.lists(st.tuples(st.sampled_from(CAMPAIGNS), st.sampled_from(CLIENTS),
                                           st.sampled_from(SCOPES)), min_size=1, max_size=3))
            (campaign, client, scope), *more = keys
            records.append(Resolution(
                campaign, client, scope,
                draw(st.sampled_from(["accepted", "rejected", "unknown", "unsent"])),
                "ana", draw(st.sampled_from(TIMES)), draw(st.sampled_from(["", "checked"])),
                tuple(more)))
    return records


def bulk(records: list[Record], threshold: int = 0, *, raw: bool = False) -> LedgerState:
    """Folded by BulkFolder; `raw`: intents also given as their JSON lines, as the local
    backend gives them (their entries decoded from the bytes: ledger.rawentries)."""
    folder = BulkFolder(threshold=threshold)
    for record in records:
        if raw and isinstance(record, Intent):
            line = codec.encode(record).encode("utf-8") + b"\n"
            # as the local backend's fast read gives it: the entries array cut out and
            # parsed only if the fold asks (codec.split_intent), when the line allows
            cut = codec.split_intent(line)
            intent, pairs = codec.intent_from_json(json.loads(line if cut is None else cut[0]))
            folder.add_intent(intent, pairs if cut is None else cut[1], raw=line)
        else:
            folder.add(record)
    return folder.state()


def as_dict(keys: object) -> dict[str, tuple[object, ...]]:
    assert hasattr(keys, "items")
    return {k: astuple(s) for k, s in keys.items()}


@settings(max_examples=250, deadline=None)
@given(streams(), st.booleans())
def test_bulk_fold_equals_folder(records: list[Record], raw: bool) -> None:
    expected, got = fold(records), bulk(records, raw=raw)
    assert isinstance(got.keys, KeyIndex)
    assert as_dict(got.keys) == as_dict(expected.keys)
    assert len(got.keys) == len(expected.keys)
    assert got.keys == expected.keys and got.keys == bulk(records, raw=not raw).keys
    assert sorted(got.keys) == sorted(expected.keys)
    for key, state in expected.keys.items():
        assert key in got.keys
        assert astuple(got.keys[key]) == astuple(state)
        assert astuple(got.keys.get(key)) == astuple(state)  # type: ignore[arg-type]
    assert "Welcome\x1f+16505550009\x1f" not in got.keys
    assert got.keys.get("Welcome\x1f+16505550009\x1f") is None
    assert got.warnings == expected.warnings
    assert (got.serial, got.lineage) == (expected.serial, expected.lineage)
    # bulk questions: the same answers over the index as over the dict
    assert sendout_counts(got.keys) == sendout_counts(expected.keys) == \
        Counter(s.sendout for s in expected.keys.values())
    for statuses in (("unknown", "partial"), ("accepted",), ("rejected",)):
        assert sorted(keys_with_status(got.keys, statuses)) == \
            sorted(keys_with_status(expected.keys, statuses)) == \
            sorted(k for k, s in expected.keys.items() if s.status in statuses)
    names = ["welcome", "spring"]
    assert sendout_campaign_counts(got.keys, names) == \
        sendout_campaign_counts(expected.keys, names)
    for campaign in CAMPAIGNS:
        for scope in SCOPES:
            for name in ("welcome", "spring", "old"):
                clients = CLIENTS * 2
                fps = FPS * 10
                fps = fps[:len(clients)]
                by_index = classify(got.keys, campaign, scope, name, clients, fps)
                by_dict = classify(expected.keys, campaign, scope, name, clients, fps)
                assert by_index == by_dict


def test_the_small_path_folds_into_a_plain_dict() -> None:
    records: list[Record] = [Header(lineage="L", created_at=TIMES[0]),
                             Intent("b1", TIMES[0], "welcome", "Welcome", "v1", "", {},
                                    (IntentEntry("+16505550001", "0" * 32),)),
                             Outcome("b1", TIMES[1], "accepted")]
    small = bulk(records, threshold=10)
    assert type(small.keys) is dict
    assert as_dict(small.keys) == as_dict(fold(records).keys)
    assert isinstance(bulk(records, threshold=0).keys, KeyIndex)


def test_classify_verdicts() -> None:
    def state(client: str, sendout: str, status: str, fp: str, error: str | None = None
              ) -> KeyState:
        return KeyState(f"Welcome{KEY_SEPARATOR}{client}{KEY_SEPARATOR}", status,  # type: ignore[arg-type]
                        fp, sendout, "v1", "b1", TIMES[0], TIMES[1], None, error,
                        fp if status == "accepted" else None)

    a, b = "a" * 32, "b" * 32
    states = [state("+1001", "welcome", "accepted", a),
              state("+1002", "welcome", "accepted", a, error="inferred: x"),
              state("+1003", "welcome", "rejected", a),
              state("+1004", "other", "accepted", a),
              state("1005", "welcome", "accepted", a)]
    plain = {s.key: s for s in states}
    folder = BulkFolder(threshold=0)
    folder.add(Header(lineage="L", created_at=TIMES[0]))
    index = folder.state().keys
    assert isinstance(index, KeyIndex) and len(index) == 0
    from connectly_declare.ledger.indexbuilder import index_of

    index = index_of(states)
    clients = ["+1001", "+1001", "+1002", "+1003", "+1004", "1005", "+1006"]
    fps = [a, b, a, a, a, a, a]
    want = [SAME, CHANGED, OTHER, OTHER, OTHER, SAME, ABSENT]  # 1005: kept whole, same answer
    assert classify(index, "Welcome", "", "welcome", clients, fps) == want
    assert classify(plain, "Welcome", "", "welcome", clients, fps) == want
    assert as_dict(index) == as_dict(plain)


def test_a_large_local_ledger_reads_into_the_index(tmp_path: object) -> None:
    """Past SMALL entries the local backend folds into a KeyIndex equal to the Folder's."""
    from pathlib import Path

    from connectly_declare.ledger.bulkfold import SMALL
    from connectly_declare.ledger.local import LocalLedger

    assert isinstance(tmp_path, Path)
    ledger = LocalLedger(tmp_path / "ledger.jsonl")
    records: list[Record] = []
    per, batches = 1000, SMALL // 1000 + 2
    for n in range(batches):
        entries = tuple(IntentEntry(f"+1650{n:03d}{c:04d}", f"{n:016x}{c:016x}")
                        for c in range(per))
        records.append(Intent(f"b{n}", TIMES[0], "welcome", "Welcome", "v1", "", {}, entries))
        if n % 7:
            records.append(Outcome(f"b{n}", TIMES[1], "rejected" if n % 5 == 0 else "accepted"))
    again = tuple(IntentEntry(f"+1650001{c:04d}", "f" * 32) for c in range(0, per, 3))
    records += [Intent("again", TIMES[2], "welcome", "Welcome", "v2", "", {}, again),
                Outcome("again", TIMES[3], "unknown"),
                Resolution("Welcome", "+16500020007", "", "unsent", "ana", TIMES[3])]
    with ledger.lock("test"):
        ledger.append(records)
    state = ledger.read()
    assert isinstance(state.keys, KeyIndex)
    expected = fold([Header(lineage="x", created_at=TIMES[0]), *records])
    assert len(state.keys) == len(expected.keys) == batches * per
    assert as_dict(state.keys) == as_dict(expected.keys)
    assert state.serial == len(records) + 1


def _in_flight(rounds: int, window: int, multiple: bool) -> list[Record]:
    """A ledger as apply writes it with `window` requests in flight: each batch's intent
    `window` records before its outcome; `rounds` sends of the same clients (a resend
    under allow_multiple, another content each round)."""
    records: list[Record] = [Header(lineage="L", created_at=TIMES[0])]
    scope = "spring" if multiple else ""
    batches = [(r, b) for r in range(rounds) for b in range(40)]
    open_: list[str] = []
    for r, b in batches:
        batch = f"r{r}b{b}"
        clients = [f"+1650555{b:02d}{n:02d}" for n in range(5)]
        fp = f"{r:032x}"
        records.append(Intent(batch, TIMES[r % len(TIMES)], "spring", "spring", "v1", scope,
                              {}, tuple(IntentEntry(c, fp) for c in clients)))
        open_.append(batch)
        if len(open_) > window:
            records.append(Outcome(open_.pop(0), TIMES[r % len(TIMES)], "accepted",
                                   sendout_id="s1"))
    records += [Outcome(b, TIMES[0], "accepted", sendout_id="s1") for b in open_]
    return records


def test_a_ledger_written_with_requests_in_flight_folds_in_bulk() -> None:
    # apply keeps up to 16 requests in flight, so an intent's outcome comes ~16 records
    # later: paired by batch id, folded in bulk (never through the per-record Folder),
    # and a resend round whose requests did not overlap the first's walked as a chain
    import pytest

    from connectly_declare.ledger import fold as fold_module

    for rounds, multiple in ((1, False), (2, True), (3, True)):
        records = _in_flight(rounds, 16, multiple)
        expected = as_dict(fold(records).keys)
        with pytest.MonkeyPatch.context() as patch:
            def refuse(*_: object) -> None:
                raise AssertionError("replayed through the Folder")

            patch.setattr(fold_module.Folder, "add_intent", refuse)
            got = bulk(records)
        assert isinstance(got.keys, KeyIndex) and as_dict(got.keys) == expected
        assert len(got.keys) == 200
    # requests of two rounds in flight together for the same keys: replayed, same state
    overlapping = _in_flight(2, 60, True)
    assert as_dict(bulk(overlapping).keys) == as_dict(fold(overlapping).keys)


def test_a_key_twice_in_an_intent_whose_outcome_comes_later() -> None:
    # found by the property test: the Folder folds an intent whose outcome is the next
    # record in one pass, and one followed by anything else on its own first; a key twice
    # in that intent ends with a different fingerprint either way, so the replay must
    # fold it apart too when the file had another batch's intent between the two
    twice = (IntentEntry("+16505550001", "0" * 32),
             IntentEntry("+16505550001", "0123456789abcdef" * 2))
    for between in (True, False):
        records: list[Record] = [Header(lineage="L", created_at=TIMES[0]),
                                 Intent("b0", TIMES[0], "welcome", "Welcome", None, "", {},
                                        twice)]
        if between:
            records.append(Intent("b1", TIMES[0], "welcome", "Welcome", None, "", {}, ()))
        records.append(Outcome("b0", TIMES[0], "accepted"))
        if between:
            records.append(Outcome("b1", TIMES[0], "accepted"))
        for raw in (False, True):
            assert as_dict(bulk(records, raw=raw).keys) == as_dict(fold(records).keys)
