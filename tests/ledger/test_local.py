"""The local JSON Lines ledger: durable appends, torn and corrupt lines, binding, formats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connectly_declare.entry import make_key
from connectly_declare.errors import DeclareError, LedgerCorrupt, LedgerError
from connectly_declare.ledger import open_ledger
from connectly_declare.ledger.base import Header, Resolution
from connectly_declare.ledger.local import LocalLedger
from connectly_declare.workspace.config import LocalState, WorkspaceConfig

from .conftest import AT, intent, outcome

A, B, C = "+16505550001", "+16505550002", "+16505550003"


def lines(ledger: LocalLedger) -> list[str]:
    return ledger.path.read_text(encoding="utf-8").splitlines()


def test_missing_ledger_reads_as_empty(ledger: LocalLedger) -> None:
    state = ledger.read()
    assert (state.lineage, state.serial, state.keys) == (None, 0, {})
    assert list(ledger.records()) == []


def test_first_append_writes_header_then_records(ledger: LocalLedger) -> None:
    with ledger.lock("test"):
        assert ledger.append([intent("b1", [A, B])]) == 2
        assert ledger.append([outcome("b1", "accepted", sendout_id="s1")]) == 3
    rows = [json.loads(line) for line in lines(ledger)]
    assert [r["type"] for r in rows] == ["header", "intent", "outcome"]
    assert rows[0]["lineage"] == "lineage1" and rows[0]["business_id"] == "biz1"
    assert rows[1]["entries"] == [[A, "f1"], [B, "f1"]]
    state = ledger.read()
    assert (state.lineage, state.serial) == ("lineage1", 3)
    assert state.keys[make_key("Welcome", A)].status == "accepted"
    assert [type(r).__name__ for r in ledger.records()] == ["Header", "Intent", "Outcome"]


def test_append_needs_the_lock(ledger: LocalLedger) -> None:
    with pytest.raises(LedgerError, match="needs the writer lock"):
        ledger.append([intent("b1", [A])])
    assert not ledger.path.exists()


def test_round_trip_of_every_record_kind(ledger: LocalLedger) -> None:
    records = [intent("b1", [A], version=None), outcome(
        "b1", "rejected", http_status=404, error={"code": "X", "message": "campaña ✓"}),
        Resolution(campaign="Welcome", client=A, scope="", resolved_as="unsent", by="u@h",
                   at=AT, reason="checked the inbox")]
    with ledger.lock("test"):
        ledger.append(records)
    assert list(ledger.records())[1:] == records


def test_torn_final_line_is_a_warning_and_next_append_seals_it(ledger: LocalLedger) -> None:
    with ledger.lock("test"):
        ledger.append([intent("b1", [A])])
    with open(ledger.path, "ab") as fh:  # a crash in the middle of writing an outcome
        fh.write(b'{"type":"outcome","batch_id":"b1","at":"2026-11')
    state = ledger.read()
    assert state.serial == 2
    assert state.keys[make_key("Welcome", A)].status == "unknown"
    assert any(w.startswith(".declare/ledger.jsonl:3: the last line is damaged")
               for w in state.warnings)
    with ledger.lock("test"):
        serial = ledger.append([outcome("b1", "accepted")])
    text = lines(ledger)
    assert text[2] == '{"type":"outcome","batch_id":"b1","at":"2026-11'  # never glued
    assert json.loads(text[3]) == {"type": "torn", "line": 3}
    assert serial == 5 == len(text)
    state = ledger.read()
    assert state.serial == 5
    assert state.keys[make_key("Welcome", A)].status == "accepted"
    assert any(":3: a write torn by a crash was skipped" in w for w in state.warnings)
    with ledger.lock("test"):  # and it stays readable after further appends
        ledger.append([intent("b2", [B])])
    assert ledger.read().serial == 6


def test_damaged_complete_final_line_is_a_warning_and_acknowledged(ledger: LocalLedger) -> None:
    with ledger.lock("test"):
        ledger.append([intent("b1", [A])])
    with open(ledger.path, "ab") as fh:
        fh.write(b"\x00\x00\x00\n")
    assert "ledger.jsonl:3: the last line is damaged" in ledger.read().warnings[0]
    with ledger.lock("test"):
        assert ledger.append([outcome("b1", "accepted")]) == 5
    assert json.loads(lines(ledger)[3]) == {"type": "torn", "line": 3}
    assert ledger.read().keys[make_key("Welcome", A)].status == "accepted"


def test_corruption_before_the_last_line_refuses_naming_the_line(ledger: LocalLedger) -> None:
    with ledger.lock("test"):
        ledger.append([intent("b1", [A]), outcome("b1", "accepted"), intent("b2", [B])])
    text = lines(ledger)
    text[2] = text[2][:-5]  # someone edited line 3
    ledger.path.write_text("\n".join(text) + "\n", encoding="utf-8")
    with pytest.raises(LedgerCorrupt) as err:
        ledger.read()
    assert str(err.value).startswith(".declare/ledger.jsonl:3: damaged ledger record")
    assert "restore it from Git history" in str(err.value)


def test_a_valid_json_line_of_the_wrong_shape_is_corruption(ledger: LocalLedger) -> None:
    with ledger.lock("test"):
        ledger.append([intent("b1", [A]), outcome("b1", "accepted")])
    text = lines(ledger)
    text.insert(1, '{"type":"intent","batch_id":"b0"}')
    ledger.path.write_text("\n".join(text) + "\n", encoding="utf-8")
    with pytest.raises(LedgerCorrupt, match=r"ledger.jsonl:2: .*'at' must be a string"):
        ledger.read()


def test_torn_marker_without_torn_line_is_corruption(ledger: LocalLedger) -> None:
    with ledger.lock("test"):
        ledger.append([intent("b1", [A])])
    with open(ledger.path, "a", encoding="utf-8") as fh:
        fh.write('{"type":"torn","line":2}\n{"type":"outcome","batch_id":"b1","at":"x",'
                 '"status":"accepted"}\n')
    with pytest.raises(LedgerCorrupt, match=r"ledger.jsonl:3: .*torn-line marker"):
        ledger.read()


def test_header_must_come_first_and_only_once(ledger: LocalLedger) -> None:
    ledger.path.parent.mkdir(parents=True)
    ledger.path.write_text('{"type":"outcome","batch_id":"b","at":"x","status":"accepted"}\n'
                           '{"type":"outcome","batch_id":"c","at":"x","status":"accepted"}\n')
    with pytest.raises(LedgerCorrupt, match=r"ledger.jsonl:1: .*not a header"):
        ledger.read()


def test_newer_format_is_refused_with_upgrade_hint(ledger: LocalLedger) -> None:
    ledger.path.parent.mkdir(parents=True)
    ledger.path.write_text(json.dumps({"type": "header", "format_version": 99, "lineage": "L",
                                       "created_at": AT}) + "\n")
    with pytest.raises(LedgerError, match="format version 99 is newer") as err:
        ledger.read()
    assert not isinstance(err.value, LedgerCorrupt)
    assert "upgrade connectly-declare" in str(err.value)
    with ledger.lock("test"), pytest.raises(LedgerError, match="newer"):
        ledger.append([intent("b1", [A])])
    assert len(lines(ledger)) == 1


def test_ledger_of_another_business_is_refused(ledger: LocalLedger, tmp_path: Path) -> None:
    with ledger.lock("test"):
        ledger.append([intent("b1", [A])])
    other = LocalLedger(ledger.path, business_id="biz2")
    with pytest.raises(LedgerError, match="belongs to business biz1"):
        other.read()
    with other.lock("test"), pytest.raises(LedgerError, match="belongs to business biz1"):
        other.append([intent("b2", [C])])
    staging = LocalLedger(ledger.path, business_id="biz1", environment="staging")
    with pytest.raises(LedgerError, match="belongs to environment"):
        staging.read()
    assert len(lines(ledger)) == 2


def test_open_ledger_is_local_by_default_and_stays_in_the_workspace(tmp_path: Path) -> None:
    config = WorkspaceConfig(business_id_env="BIZ")
    ledger = open_ledger(tmp_path, config.for_environment(None), environ={"BIZ": "b-7"})
    assert isinstance(ledger, LocalLedger)
    assert ledger.path == (tmp_path / ".declare/ledger.jsonl").resolve()
    assert ledger.business_id == "b-7"
    assert ledger.describe() == "local ledger .declare/ledger.jsonl"
    outside = WorkspaceConfig(state=LocalState(path="../elsewhere.jsonl"))
    with pytest.raises(DeclareError, match="outside the workspace"):
        open_ledger(tmp_path, outside.for_environment(None), environ={})


def test_header_record_in_append_is_not_duplicated(ledger: LocalLedger) -> None:
    with ledger.lock("test"):
        ledger.append([Header(lineage="x", created_at=AT), intent("b1", [A])])
    assert [json.loads(x)["type"] for x in lines(ledger)] == ["header", "intent"]


def test_whole_record_missing_only_its_newline_is_kept_and_sealed(ledger: LocalLedger) -> None:
    with ledger.lock("test"):
        ledger.append([intent("b1", [A])])
    with open(ledger.path, "ab") as fh:  # the crash came after the record, before its "\n"
        fh.write(b'{"type":"outcome","batch_id":"b1","at":"x","status":"accepted"}')
    state = ledger.read()
    assert state.keys[make_key("Welcome", A)].status == "accepted" and state.serial == 2
    with ledger.lock("test"):
        assert ledger.append([intent("b2", [B])]) == 4
    assert [json.loads(x)["type"] for x in lines(ledger)] == ["header", "intent", "outcome",
                                                              "intent"]
    assert ledger.read().warnings == []


@pytest.mark.parametrize("pairs", ['[["+16505550009"]]', '[{"a":"b"}]', '[["+1650", 7]]', '"ab"',
                                   '[[1, "f"]]'])
def test_malformed_entries_are_caught_in_the_middle_and_ignored_at_the_end(
        ledger: LocalLedger, pairs: str) -> None:
    bad = ('{"type":"intent","batch_id":"x","at":"t","sendout":"s","campaign":"Welcome",'
           f'"version":null,"scope":"","options":{{}},"entries":{pairs}}}\n')
    with ledger.lock("test"):
        ledger.append([intent("b1", [A]), outcome("b1", "accepted")])
    with open(ledger.path, "a", encoding="utf-8") as fh:
        fh.write(bad)
    state = ledger.read()  # the last line: a warning, and none of it folded
    assert "ledger.jsonl:4: the last line is damaged" in state.warnings[0]
    assert list(state.keys) == [make_key("Welcome", A)]
    with open(ledger.path, "a", encoding="utf-8") as fh:
        fh.write('{"type":"outcome","batch_id":"b1","at":"x","status":"accepted"}\n')
    with pytest.raises(LedgerCorrupt, match=r"ledger.jsonl:4: .*'entries'"):
        ledger.read()


def test_incomplete_last_line_while_a_writer_holds_the_lock_is_not_called_a_crash(
        ledger: LocalLedger) -> None:
    with ledger.lock("apply --auto-approve"):
        ledger.append([intent("b1", [A])])
        with open(ledger.path, "ab") as fh:  # what a reader sees mid-append
            fh.write(b'{"type":"outcome","batch_id":"b1"')
        warnings = LocalLedger(ledger.path).read().warnings
    assert len(warnings) == 1
    assert "ledger.jsonl:3: the last line is being written by" in warnings[0]
    assert "`apply --auto-approve`" in warnings[0]


def test_appends_under_one_lock_keep_serials_exact_and_notice_a_changed_file(
    ledger: LocalLedger,
) -> None:
    # appends under one lock reuse what the previous append left (no re-count of the file);
    # if the file is not as this writer left it, it is read again: serials stay exact and a
    # torn tail is still sealed
    with ledger.lock("test"):
        serials = [ledger.append([intent(f"b{i}", [A])]) for i in range(5)]
        assert serials == [2, 3, 4, 5, 6]
        with open(ledger.path, "ab") as fh:
            fh.write(b'{"type":"outcome","batch_id":"b4"')
        assert ledger.append([outcome("b4", "accepted")]) == 9
    text = lines(ledger)
    assert len(text) == 9 and json.loads(text[7]) == {"type": "torn", "line": 7}
    assert ledger.read().serial == 9
