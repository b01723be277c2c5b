"""The local backend's fast read leaves an intent's entries array as bytes until the fold
asks for it (codec.split_intent, codec.LazyPairs). Whatever the file holds, well formed
or damaged anywhere in an entries array, reading it gives exactly what parsing every line
whole gives: the same state, or the same error naming the same line."""

from __future__ import annotations

import functools
import json
import tempfile
from dataclasses import astuple
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectly_declare.errors import DeclareError
from connectly_declare.ledger import bulkfold, codec, local
from connectly_declare.ledger.base import Record
from connectly_declare.ledger.fold import fold
from connectly_declare.ledger.local import LocalLedger

from .test_bulkfold_property import streams

# what a damaged byte may become: JSON structure, quotes, escapes, non-ASCII, nothing
DAMAGE = [b"", b'"', b"]", b"[", b",", b"\\", b"\\u0022", b"x", "\u00e9".encode(), b"\xff",
          b'"],["', b"]]", b'","', b'","","', b"0", b"+", b"\n"]


def _read(path: Path, *, lazy: bool, monkeypatch: pytest.MonkeyPatch) -> object:
    """The state's keys (as plain tuples) and warnings, or the error's text and line."""
    with monkeypatch.context() as patch:
        # every ledger in bulk, however small (the lazy path is the bulk fold's)
        patch.setattr(local, "BulkFolder", functools.partial(bulkfold.BulkFolder, threshold=0))
        if not lazy:
            patch.setattr(codec, "split_intent", lambda raw: None)
        try:
            state = LocalLedger(path).read()
        except DeclareError as err:
            return ("error", str(err), repr(err.problem))
        return ({k: astuple(s) for k, s in state.keys.items()}, state.warnings, state.serial)


def _write(path: Path, records: list[Record]) -> list[bytes]:
    lines = [codec.encode(r).encode("utf-8") + b"\n" for r in records]
    path.write_bytes(b"".join(lines))
    return lines


@settings(max_examples=200, deadline=None)
@given(streams())
def test_well_formed_ledgers_read_as_the_fold_of_their_records(records: list[Record]) -> None:
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as patch:
        path = Path(tmp) / "ledger.jsonl"
        _write(path, records)
        got = _read(path, lazy=True, monkeypatch=patch)
        assert got == _read(path, lazy=False, monkeypatch=patch)
        expected = fold(records)
        assert isinstance(got, tuple) and got[0] == {
            k: astuple(s) for k, s in expected.keys.items()}


@settings(max_examples=300, deadline=None)
@given(streams(), st.data())
def test_a_damaged_entries_array_reads_as_the_whole_line_parse_does(
        records: list[Record], data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as patch:
        path = Path(tmp) / "ledger.jsonl"
        lines = _write(path, records)
        intents = [n for n, line in enumerate(lines) if codec.split_intent(line) is not None]
        if not intents:
            return
        n = data.draw(st.sampled_from(intents))
        line = lines[n]
        start = line.rfind(b',"entries":[')
        at = data.draw(st.integers(start, len(line) - 2))  # in the array or its closing
        cut = data.draw(st.integers(0, 3))
        lines[n] = line[:at] + data.draw(st.sampled_from(DAMAGE)) + line[at + cut:]
        if data.draw(st.booleans()):  # and perhaps the same damage again elsewhere
            other = data.draw(st.sampled_from(intents))
            lines[other] = lines[other].replace(b'"],["', b'"],[ "', 1)
        path.write_bytes(b"".join(lines))
        assert _read(path, lazy=True, monkeypatch=patch) == \
            _read(path, lazy=False, monkeypatch=patch)


def test_the_cut_is_where_the_codec_puts_the_array() -> None:
    line = (b'{"type":"intent","batch_id":"b","at":"t","sendout":"s","campaign":"c",'
            b'"version":null,"scope":"","options":{"k":"v"},'
            b'"entries":[["+16505550001","' + b"0" * 32 + b'"],["+1","' + b"f" * 32 + b'"]]}\n')
    cut = codec.split_intent(line)
    assert cut is not None
    head, pairs = cut
    assert json.loads(head)["entries"] == [] and json.loads(head)["options"] == {"k": "v"}
    assert len(pairs) == 2 and pairs.load() == json.loads(line)["entries"]
    # escapes, another record type or a field after the array: parsed whole, as before
    assert codec.split_intent(line.replace(b'"+1"', b'"+\\u0031"')) is None
    assert codec.split_intent(line.replace(b'"intent"', b'"outcome"')) is None
    assert codec.split_intent(line.replace(b"]]}", b']],"x":1}')) is None
    # four more quotes, one pair fewer than they suggest: an error when read, not a
    # shorter list the fold would take for this line's entries
    wrong = codec.split_intent(line.replace(b'"+1"', b'"+1","",""'))
    assert wrong is not None and len(wrong[1]) == 3
    with pytest.raises(ValueError, match="entries"):
        wrong[1].load()
