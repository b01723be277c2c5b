"""`connectly-declare state migrate --to postgres`: copy a local ledger into PostgreSQL,
verified record for record.

Both ledgers are locked for the whole copy, so no apply can write to either meanwhile.
The copy is one transaction that reads its own rows back and compares them with the
source before it commits; after the commit a fresh snapshot is compared again, record by
record and key by key. A destination that already holds records of another lineage is refused
(two histories must never be merged); one that already holds exactly this ledger is
reported as migrated, so running the command twice is harmless, and one that holds an
earlier part of it (applies went on writing the local ledger before the switch) is caught
up.
"""

from __future__ import annotations

from dataclasses import dataclass

from connectly_declare.errors import LedgerCorrupt, LedgerError
from connectly_declare.ledger.base import Header, Ledger, Record
from connectly_declare.ledger.postgres import PostgresLedger


@dataclass(frozen=True)
class MigrateResult:
    source: str  # describe() of both: no secrets
    destination: str
    lineage: str
    records: int
    keys: int
    already: bool  # the destination already held exactly this ledger


def migrate_to_postgres(source: Ledger, destination: PostgresLedger, *, lock_timeout: float = 0.0,
                        command: str = "connectly-declare state migrate") -> MigrateResult:
    """Copy `source` into the empty `destination` and verify it (see the module docstring)."""
    with source.lock(command, timeout=lock_timeout), \
            destination.lock(command, timeout=lock_timeout):
        records = list(source.records())
        if not records or not isinstance(records[0], Header):
            raise LedgerError(f"{source.describe()} has no records to migrate",
                              hint="nothing to do: a new postgres ledger starts itself")
        lineage = records[0].lineage
        existing = list(destination.records())
        already = False
        if existing:
            first = existing[0]
            theirs = first.lineage if isinstance(first, Header) else "(no header)"
            if theirs != lineage:
                raise LedgerError(
                    f"{destination.describe()} already holds ledger {theirs}, not {lineage}: "
                    f"refusing to mix two histories",
                    hint="migrate into another schema (state.schema) or another environment")
            if existing == records[:len(existing)] and len(existing) < len(records):
                # The copy fell behind (applies went on writing the local ledger before
                # declare.yaml was switched): append what is missing, in one transaction.
                destination.append(records[len(existing):])
            elif existing != records:
                raise LedgerError(
                    f"{destination.describe()} already holds ledger {lineage} with "
                    f"{len(existing)} records that differ from the {len(records)} of "
                    f"{source.describe()}",
                    hint="it has been written to since an earlier migration: keep using "
                         "the postgres ledger; do not migrate again")
            else:
                already = True
        else:
            destination.import_records(records)
        _verify(records, destination)
        source_keys = source.read().keys
        dest_keys = destination.read().keys
        if source_keys != dest_keys:
            raise LedgerCorrupt(f"{destination.describe()}: the folded keys differ from "
                                f"{source.describe()} after the copy",
                                hint="report this as a bug; the local ledger is unchanged")
    return MigrateResult(source.describe(), destination.describe(), lineage, len(records),
                         len(dest_keys), already)


def _verify(records: list[Record], destination: PostgresLedger) -> None:
    count = 0
    for count, got in enumerate(destination.records(), start=1):
        if count > len(records) or records[count - 1] != got:
            raise LedgerCorrupt(f"{destination.describe()}: record {count} differs from the source "
                                f"after the copy", hint="report this as a bug")
    if count != len(records):
        raise LedgerCorrupt(f"{destination.describe()}: {count} records read back, "
                            f"{len(records)} copied", hint="report this as a bug")


__all__ = ["MigrateResult", "migrate_to_postgres"]
