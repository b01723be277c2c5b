"""`state migrate --to postgres` core: a local ledger copied into PostgreSQL, verified."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from connectly_declare.errors import LedgerError
from connectly_declare.ledger.base import Header, Resolution
from connectly_declare.ledger.local import LocalLedger
from connectly_declare.ledger.migrate import migrate_to_postgres
from connectly_declare.ledger.postgres import PostgresLedger
from tests.postgres.helpers import intent, outcome, put

Make = Callable[..., PostgresLedger]


def local_ledger(path: Path, environment: str | None = "staging") -> LocalLedger:
    ledger = LocalLedger(path, environment=environment, business_id="biz-1")
    for i in range(30):
        clients = [f"+1650555{i:02d}{j:02d}" for j in range(20)]
        put(ledger, [intent(f"b{i}", *clients)])
        put(ledger, [outcome(f"b{i}", "accepted" if i % 3 else "unknown", accepted=20)])
    put(ledger, [Resolution(campaign="spring promo", client="+16505550000", scope="",
                            resolved_as="accepted", by="ana@ci", at="t")])
    return ledger


def test_a_local_ledger_is_copied_record_for_record(tmp_path: Path, make_ledger: Make) -> None:
    source = local_ledger(tmp_path / "ledger.jsonl")
    destination = make_ledger()
    result = migrate_to_postgres(source, destination)
    assert result.records == 62 and result.keys == 600 and not result.already
    assert list(make_ledger().records()) == list(source.records())
    copied, original = make_ledger().read(), source.read()
    assert copied.lineage == original.lineage and copied.serial == original.serial
    assert copied.keys == original.keys
    # Twice is harmless: the destination already holds exactly this ledger.
    assert migrate_to_postgres(source, make_ledger()).already
    # The copy is a working ledger: the next apply appends after it.
    assert put(make_ledger(), [intent("next", "+16505559999")]) == 63


def test_a_target_of_another_lineage_is_refused(tmp_path: Path, make_ledger: Make) -> None:
    put(make_ledger(), [intent("b1", "+16505550001")])
    before = list(make_ledger().records())
    with pytest.raises(LedgerError, match="refusing to mix two histories"):
        migrate_to_postgres(local_ledger(tmp_path / "ledger.jsonl"), make_ledger())
    assert list(make_ledger().records()) == before


def test_a_target_written_since_is_refused(tmp_path: Path, make_ledger: Make) -> None:
    source = local_ledger(tmp_path / "ledger.jsonl")
    migrate_to_postgres(source, make_ledger())
    put(make_ledger(), [intent("later", "+16505559999")])
    with pytest.raises(LedgerError, match="differ"):
        migrate_to_postgres(source, make_ledger())


def test_a_ledger_of_another_environment_is_not_migrated(tmp_path: Path,
                                                        make_ledger: Make) -> None:
    source = local_ledger(tmp_path / "ledger.jsonl", environment="production")
    with pytest.raises(LedgerError, match="environment"):
        migrate_to_postgres(source, make_ledger(environment="staging"))
    assert make_ledger().read().lineage is None  # nothing partial


def test_an_empty_local_ledger_has_nothing_to_migrate(tmp_path: Path,
                                                      make_ledger: Make) -> None:
    with pytest.raises(LedgerError, match="no records to migrate"):
        migrate_to_postgres(LocalLedger(tmp_path / "none.jsonl", environment="staging"),
                            make_ledger())


def test_import_needs_an_empty_destination_and_a_header(make_ledger: Make) -> None:
    destination = make_ledger()
    with destination.lock("t"):
        with pytest.raises(LedgerError, match="must start with its header"):
            destination.import_records([intent("b1", "+16505550001")])
        destination.import_records([Header(lineage="l1", created_at="t", environment="staging"),
                               intent("b1", "+16505550001")])
        with pytest.raises(LedgerError, match="not empty"):
            destination.import_records([Header(lineage="l2", created_at="t",
                                          environment="staging")])
    assert make_ledger().read().lineage == "l1"
