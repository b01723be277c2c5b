"""A crash may cut an append at any byte: reading never fails, nothing durable is lost,
and the next append recovers (hypothesis chooses the cut)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from connectly_declare.entry import make_key
from connectly_declare.ledger.local import LocalLedger

from .conftest import intent, outcome

A, B, C = "+16505550001", "+16505550002", "+16505550003"


@settings(max_examples=60, deadline=None)
@given(cut=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
       twice=st.booleans())
def test_any_torn_append_is_recoverable(cut: float, twice: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ledger = LocalLedger(Path(tmp) / "ledger.jsonl")
        with ledger.lock("test"):
            ledger.append([intent("b1", [A]), outcome("b1", "accepted")])
        durable = ledger.path.read_bytes()
        with ledger.lock("test"):  # the append a crash will cut
            ledger.append([intent("b2", [B]), outcome("b2", "accepted")])
        full = ledger.path.read_bytes()
        ledger.path.write_bytes(full[: len(durable) + int(cut * (len(full) - len(durable)))])
        state = ledger.read()  # never raises
        assert state.keys[make_key("Welcome", A)].status == "accepted"
        assert state.serial >= 3
        rounds = 2 if twice else 1
        for n in range(rounds):  # recover, possibly after a second torn write
            with ledger.lock("test"):
                ledger.append([intent(f"c{n}", [C]), outcome(f"c{n}", "rejected")])
            if twice and n == 0:
                with open(ledger.path, "ab") as fh:
                    fh.write(b'{"type":"intent","ba')
        state = ledger.read()
        assert state.keys[make_key("Welcome", A)].status == "accepted"
        assert state.keys[make_key("Welcome", C)].status == "rejected"
        # the cut append counts only as far as whole records reached the disk
        b = state.keys.get(make_key("Welcome", B))
        assert b is None or b.status in ("unknown", "accepted")
        assert all("damaged" in w or "torn" in w for w in state.warnings)
