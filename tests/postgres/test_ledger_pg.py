"""The postgres ledger against a real server: storage, versioning, environments, secrets."""

from __future__ import annotations

import threading
from collections.abc import Callable

import psycopg
import pytest
from psycopg import sql

from connectly_declare.entry import make_key
from connectly_declare.errors import LedgerCorrupt, LedgerError
from connectly_declare.ledger.base import Header, Outcome, Resolution
from connectly_declare.ledger.pg_open import open_postgres
from connectly_declare.ledger.pg_schema import SCHEMA_VERSION
from connectly_declare.ledger.postgres import PostgresLedger
from connectly_declare.workspace.config import PostgresState
from tests.postgres.helpers import intent, outcome, put
from tests.support.pg import PgServer

Make = Callable[..., PostgresLedger]


def test_a_new_ledger_reads_empty_and_creates_nothing(make_ledger: Make, pg_dsn: str,
                                                      pg_schema: str) -> None:
    state = make_ledger().read()
    assert state.lineage is None and state.serial == 0 and state.keys == {}
    with psycopg.connect(pg_dsn) as conn:
        found = conn.execute("SELECT count(*) FROM information_schema.schemata"
                             " WHERE schema_name = %s", (pg_schema,)).fetchone()
    assert found == (0,)  # a read-only `plan` must not need CREATE rights


def test_append_creates_tables_header_and_folds(make_ledger: Make) -> None:
    ledger = make_ledger()
    assert put(ledger, [intent("b1", "+16505550001", "+16505550002")]) == 2
    assert put(ledger, [outcome("b1", accepted=2)]) == 3
    state = make_ledger().read()  # a second connection sees the committed records
    assert state.serial == 3 and state.lineage is not None
    assert state.environment == "staging" and state.business_id == "biz-1"
    key = make_key("spring promo", "+16505550001")
    assert state.keys[key].status == "accepted" and state.keys[key].sendout_id == "so-1"
    records = list(ledger.records())
    assert isinstance(records[0], Header) and records[1:] == [
        intent("b1", "+16505550001", "+16505550002"), outcome("b1", accepted=2)]


def test_records_round_trip_every_kind_exactly(make_ledger: Make) -> None:
    header = Header(lineage="lin-1", created_at="2026-01-01T00:00:00Z", environment="staging",
                    business_id="biz-1")
    everything = [header, intent("b1", "+16505550001", campaign="campaña ✓"),
                  Outcome(batch_id="b1", at="t", status="rejected", rejected_count=1,
                          error={"code": "ERROR_CODE_CAMPAIGN_ENTRY_INVALID", "msg": "a\\b\n"}),
                  Resolution(campaign="campaña ✓", client="+16505550001", scope="",
                             resolved_as="unsent", by="ana@ci", at="t", reason="checked")]
    ledger = make_ledger()
    assert put(ledger, everything) == 4
    assert list(make_ledger().records()) == everything
    assert make_ledger().read().lineage == "lin-1"


def test_a_second_header_is_refused(make_ledger: Make) -> None:
    ledger = make_ledger()
    put(ledger, [intent("b1", "+16505550001")])
    with pytest.raises(LedgerCorrupt, match="second header"):
        put(ledger, [Header(lineage="x", created_at="t", environment="staging")])
    assert make_ledger().read().serial == 2  # nothing partial


def test_the_ledger_refuses_another_environment(make_ledger: Make) -> None:
    put(make_ledger(name="shared", environment="staging"), [intent("b1", "+16505550001")])
    other = make_ledger(name="shared", environment="production")
    with pytest.raises(LedgerError, match="belongs to environment staging, not production"):
        other.read()
    with pytest.raises(LedgerError, match="belongs to environment staging"):
        put(other, [intent("b2", "+16505550002")])
    # ...and a header of another environment cannot start a ledger either.
    with pytest.raises(LedgerError, match="belongs to environment production"):
        put(make_ledger(name="fresh", environment="staging"),
            [Header(lineage="l", created_at="t", environment="production")])


def test_environments_are_separate_ledgers_in_one_schema(make_ledger: Make) -> None:
    put(make_ledger(environment="staging"), [intent("b1", "+16505550001")])
    production = make_ledger(environment="production")
    assert production.read().lineage is None
    put(production, [intent("b9", "+16505550009")])
    assert set(production.read().keys) == {make_key("spring promo", "+16505550009")}


def test_a_newer_table_layout_is_refused(make_ledger: Make, pg_dsn: str,
                                         pg_schema: str) -> None:
    put(make_ledger(), [intent("b1", "+16505550001")])
    with psycopg.connect(pg_dsn) as conn:
        conn.execute(sql.SQL("INSERT INTO {}.schema_version (version) VALUES (%s)")
                     .format(sql.Identifier(pg_schema)), (SCHEMA_VERSION + 1,))
    for action in (lambda led: led.read(), lambda led: put(led, [intent("b2", "+1650555")])):
        with pytest.raises(LedgerError, match="newer than this connectly-declare") as err:
            action(make_ledger())
        assert "upgrade" in err.value.problem.hint


def test_a_damaged_row_is_reported_with_its_serial(make_ledger: Make, pg_dsn: str,
                                                   pg_schema: str) -> None:
    put(make_ledger(), [intent("b1", "+16505550001")])
    with psycopg.connect(pg_dsn) as conn:
        conn.execute(sql.SQL("UPDATE {}.records SET payload = '{{\"type\": 1' WHERE seq = 2")
                     .format(sql.Identifier(pg_schema)))
    with pytest.raises(LedgerCorrupt, match="record 2 is damaged"):
        make_ledger().read()


def test_concurrent_first_uses_create_the_tables_once(make_ledger: Make) -> None:
    errors: list[BaseException] = []
    names = [f"env{i}" for i in range(6)]

    def first_use(name: str) -> None:
        try:
            put(make_ledger(environment=name), [intent("b", "+16505550001")])
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=first_use, args=(n,)) for n in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert all(make_ledger(environment=n).read().serial == 2 for n in names)


def test_the_dsn_comes_from_the_named_variable(pg_dsn: str, pg_schema: str) -> None:
    state = PostgresState(backend="postgres", dsn_env="MY_LEDGER_DSN", schema=pg_schema)
    with pytest.raises(LedgerError, match="MY_LEDGER_DSN is not set"):
        open_postgres(state, environment=None, business_id=None, environ={})
    ledger = open_postgres(state, environment=None, business_id="b",
                           environ={"MY_LEDGER_DSN": pg_dsn})
    try:
        put(ledger, [intent("b1", "+16505550001")])
        assert ledger.read().serial == 2 and ledger.name == "default"
    finally:
        ledger.close()


def test_secrets_never_reach_messages(pg_server: PgServer, pg_schema: str) -> None:
    password = pg_server.password
    assert password
    wrong = pg_server.dsn.replace(password, password[::-1])
    ledger = PostgresLedger(dsn=wrong, schema=pg_schema)
    assert password not in ledger.describe() and "127.0.0.1" in ledger.describe()
    with pytest.raises(LedgerError) as err:
        put(ledger, [intent("b1", "+16505550001")])
    assert "password authentication failed" in str(err.value)
    assert password[::-1] not in str(err.value) and password not in str(err.value)
    # A malformed key=value DSN makes libpq quote it back: still redacted.
    broken = f"host=127.0.0.1 password={password} dbname"
    with pytest.raises(LedgerError) as err2:
        PostgresLedger(dsn=broken, schema=pg_schema).read()
    assert password not in str(err2.value)
    assert password not in PostgresLedger(dsn=broken, schema=pg_schema).describe()


def test_the_ledger_refuses_another_business(make_ledger: Make) -> None:
    put(make_ledger(business_id="biz-1"), [intent("b1", "+16505550001")])
    with pytest.raises(LedgerError, match="belongs to business biz-1, not biz-2"):
        put(make_ledger(business_id="biz-2"), [intent("b2", "+16505550002")])
    with pytest.raises(LedgerError, match="belongs to business biz-1"):
        make_ledger(business_id="biz-2").read()
    assert make_ledger(business_id=None).read().serial == 2  # plan needs no business id


def test_the_lock_uses_its_own_connection_string(pg_server: PgServer, pg_schema: str) -> None:
    state = PostgresState(backend="postgres", dsn_env="DATA_DSN", lock_dsn_env="LOCK_DSN",
                          schema=pg_schema)
    bad_lock = pg_server.dsn.replace(pg_server.password, "not-the-password")
    ledger = open_postgres(state, environment=None, business_id=None,
                           environ={"DATA_DSN": pg_server.dsn, "LOCK_DSN": bad_lock})
    try:
        assert ledger.read().serial == 0  # reads use the data connection
        with pytest.raises(LedgerError, match="password authentication failed") as err:
            with ledger.lock("apply"):
                pass
        assert "not-the-password" not in str(err.value)
    finally:
        ledger.close()
    with pytest.raises(LedgerError, match="LOCK_DSN"):
        open_postgres(state, environment=None, business_id=None,
                      environ={"DATA_DSN": pg_server.dsn})
