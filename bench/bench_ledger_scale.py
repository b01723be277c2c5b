"""The PostgreSQL ledger at 1M and 10M keys: reading and folding it, and the diff done by
the database (ledger/pg_diff.py) against the diff done in memory, each as a ratio to a
baseline measured in the same run.

The ledger is filled directly with COPY (intents of 100 entries and their outcomes, in
the order apply writes them with 16 requests in flight, bench/apply_order.py: each
outcome after the next batches' intents; 1 batch in 50 ends `unknown`), not by applying,
and the
same records are written to a local JSON Lines ledger. Every measurement runs in a child
process of its own, so its peak RSS (ru_maxrss) is its own:

- copy_to     COPY (SELECT seq, payload ... ORDER BY seq) TO STDOUT, drained: the rows'
              transport alone, the floor of any read            (baseline of pg_read)
- pg_rows     PostgresLedger's own row stream (server-side cursor, 2,000 rows a fetch),
              nothing decoded: what streaming the rows costs over the bare COPY
- local_read  LocalLedger.read() of the same records            (baseline of pg_read)
- pg_read     PostgresLedger.read(): streamed rows folded in memory (BulkFolder: a
              compact KeyIndex past 50,000 entries)
- mem_diff    pg_read, then every audience entry looked up in the folded state as the plan
              does (keyview.classify, 4,096 entries at a time)
- pg_diff     pg_diff.matched_state: the audience keys COPYed into a temporary table and
              joined by the server; only records touching them come back and are folded
- python      the interpreter with the same imports: the RSS nothing can go below

Wall time on a shared machine includes the neighbours: each child also reports its own
CPU seconds (the runner's share; the server's is not in it). "server" is the server's own
time, without transfer: for a read, `SELECT count(*), sum(length(payload))` over the same
rows (scans and decompresses every payload); for pg_diff, its join and batch steps. The
audience has as many keys as the ledger, ``--overlap`` of them (default 1%) already in it
(the rest fresh).

PostgreSQL: the server of DECLARE_TEST_PG_DSN, else a throwaway one (tests/support/pg.py).

    .venv/bin/python bench/bench_ledger_scale.py [--keys 1000000 10000000] [--overlap 0.01]
        [--skip OP ...]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
from psycopg import sql

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from apply_order import in_flight_order  # noqa: E402

from connectly_declare.entry import make_key  # noqa: E402
from connectly_declare.ledger import codec  # noqa: E402
from connectly_declare.ledger.base import Header, Intent, IntentEntry, Outcome  # noqa: E402
from connectly_declare.ledger.pg_schema import ensure_schema  # noqa: E402
from tests.support.pg import postgres_server  # noqa: E402

CAMPAIGN = "bench campaign"
BUSINESS = "bench-business"
LEDGER = "scale"
PER_INTENT = 100
OPS = ("python", "copy_to", "pg_rows", "local_read", "pg_read", "mem_diff", "pg_diff")


def client(n: int) -> str:
    return f"+1{n:010d}"


def payloads(keys: int) -> Iterator[tuple[str, str]]:
    """(type, payload) of every record of a `keys`-key ledger, header first."""
    yield "header", codec.encode(Header(lineage="bench-scale", created_at="2026-01-01T00:00:00Z",
                                        business_id=BUSINESS))
    yield from in_flight_order(pairs(keys))


def pairs(keys: int) -> Iterator[tuple[tuple[str, str], tuple[str, str]]]:
    """Each batch's (intent, outcome) records as (type, payload)."""
    options = {"if_duplicate_check_unspecified": "allow_one"}
    for b in range(keys // PER_INTENT):
        batch = f"batch-{b:08d}"
        start = b * PER_INTENT
        entries = tuple(IntentEntry(client(start + i), f"{start + i:032x}")
                        for i in range(PER_INTENT))
        status = "unknown" if b % 50 == 49 else "accepted"
        yield (("intent", codec.encode(Intent(batch, "2026-01-01T00:00:00Z", "bench", CAMPAIGN,
                                              "v1", "", options, entries))),
               ("outcome", codec.encode(Outcome(batch, "2026-01-01T00:00:01Z", status,  # type: ignore[arg-type]
                                                accepted_count=PER_INTENT,
                                                sendout_id=f"so-{b}", http_status=200))))


def audience(keys: int, overlap: float) -> Iterator[tuple[str, str]]:
    """(client, fingerprint) of `keys` entries, every (1/overlap)-th one already in the
    ledger with the same fingerprint."""
    step = max(round(1 / overlap), 1) if overlap > 0 else 0
    for i in range(keys):
        n = i if step and i % step == 0 else keys * 10 + i
        yield client(n), f"{n:032x}"


def fill(dsn: str, schema: str, keys: int, local: Path) -> tuple[float, int]:
    """COPY the ledger into `schema` and write it to `local`; (seconds, records)."""
    started = time.perf_counter()
    count = 0
    with psycopg.connect(dsn, autocommit=True) as conn, local.open("w", encoding="utf-8") as out:
        ensure_schema(conn, schema)
        ident = sql.Identifier(schema)
        with conn.transaction():
            conn.execute(sql.SQL("INSERT INTO {}.ledgers (name, lineage, business_id, created_at)"
                                 " VALUES (%s, 'bench-scale', %s, '2026-01-01T00:00:00Z')")
                         .format(ident), (LEDGER, BUSINESS))
            with conn.cursor().copy(sql.SQL("COPY {}.records (ledger, seq, type, payload) FROM "
                                            "STDIN").format(ident)) as copy:
                for count, (kind, payload) in enumerate(payloads(keys), start=1):
                    copy.write_row((LEDGER, count, kind, payload))
                    out.write(payload + "\n")
        conn.execute(sql.SQL("VACUUM ANALYZE {}.records").format(ident))
    return time.perf_counter() - started, count


def server_read_seconds(dsn: str, schema: str) -> float:
    with psycopg.connect(dsn, autocommit=True) as conn:
        started = time.perf_counter()
        conn.execute(sql.SQL("SELECT count(*), sum(length(payload)) FROM {}.records"
                             " WHERE ledger = %s").format(sql.Identifier(schema)), (LEDGER,))
        return time.perf_counter() - started


def child(op: str, dsn: str, schema: str, keys: int, overlap: float, local: Path
          ) -> dict[str, float]:
    from connectly_declare.ledger.keyview import ABSENT, classify
    from connectly_declare.ledger.local import LocalLedger
    from connectly_declare.ledger.pg_diff import matched_state
    from connectly_declare.ledger.postgres import PostgresLedger

    result: dict[str, float] = {}
    started = time.perf_counter()
    if op == "copy_to":
        size = 0
        with psycopg.connect(dsn, autocommit=True) as conn, conn.cursor().copy(
                sql.SQL("COPY (SELECT seq, payload FROM {}.records WHERE ledger = {}"
                        " ORDER BY seq) TO STDOUT").format(sql.Identifier(schema),
                                                           sql.Literal(LEDGER))) as copy:
            for block in copy:
                size += len(block)
        result["bytes"] = size
    elif op == "pg_rows":
        ledger = PostgresLedger(dsn=dsn, schema=schema, name=LEDGER, business_id=BUSINESS)
        result["rows"] = sum(1 for _ in ledger._rows())
        ledger.close()
    elif op == "local_read":
        result["keys"] = len(LocalLedger(local, business_id=BUSINESS).read().keys)
    elif op in ("pg_read", "mem_diff"):
        ledger = PostgresLedger(dsn=dsn, schema=schema, name=LEDGER, business_id=BUSINESS)
        state = ledger.read()
        ledger.close()
        result["keys"] = len(state.keys)
        if op == "mem_diff":  # the plan's bulk lookup (keyview.classify), 4,096 at a time
            result["read_seconds"] = time.perf_counter() - started
            result["matched"] = 0
            entries = audience(keys, overlap)
            while chunk := list(itertools.islice(entries, 4096)):
                verdicts = classify(state.keys, CAMPAIGN, "", "bench",
                                    [c for c, _ in chunk], [f for _, f in chunk])
                result["matched"] += sum(1 for v in verdicts if v != ABSENT)
    elif op == "pg_diff":
        timings: dict[str, float] = {}
        with psycopg.connect(dsn, autocommit=True) as conn:
            wanted = (make_key(CAMPAIGN, c) for c, _ in audience(keys, overlap))
            state = matched_state(conn, schema, LEDGER, wanted, timings)
        result.update(timings)
        result["matched"] = len(state.keys)
    result["seconds"] = time.perf_counter() - started
    result["cpu"] = time.process_time()  # this process's own CPU: its neighbours' excluded
    result["rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def run_child(op: str, dsn: str, schema: str, keys: int, overlap: float, local: Path
              ) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", op, "--dsn-env", "BENCH_SCALE_DSN",
         "--schema", schema, "--keys", str(keys), "--overlap", str(overlap),
         "--local", str(local)],
        check=True, capture_output=True, text=True,
        env={**os.environ, "BENCH_SCALE_DSN": dsn}).stdout
    data: dict[str, float] = json.loads(out)
    return data


def measure(dsn: str, tmp: Path, keys: int, overlap: float, skip: set[str]) -> None:
    schema = f"bench_scale_{secrets.token_hex(4)}"
    local = tmp / f"ledger-{keys}.jsonl"
    try:
        seconds, records = fill(dsn, schema, keys, local)
        print(f"\n{keys:,} keys: {records:,} records COPYed in {seconds:.1f} s "
              f"({local.stat().st_size / 2**20:,.0f} MiB of JSON Lines)", flush=True)
        server = server_read_seconds(dsn, schema)
        got: dict[str, dict[str, float]] = {}
        for op in OPS:
            if op in skip:
                continue
            got[op] = r = run_child(op, dsn, schema, keys, overlap, local)
            extra = ", ".join(f"{k} {v:,.2f}" for k, v in r.items()
                              if k not in ("seconds", "rss_mib", "cpu"))
            print(f"  {op:10} {r['seconds']:7.2f} s ({r['cpu']:6.2f} s CPU)  "
                  f"peak RSS {r['rss_mib']:7,.0f} MiB"
                  + (f"  ({extra})" if extra else ""), flush=True)
        print(f"  server: scan + decompress every payload {server:.2f} s", flush=True)

        def ratio(a: str, b: str, what: str = "seconds") -> str:
            if a not in got or b not in got:
                return "n/a"
            return f"{got[a][what] / got[b][what]:.2f}x"

        print(f"  pg_rows / copy_to {ratio('pg_rows', 'copy_to')} (time), "
              f"{ratio('pg_rows', 'python', 'rss_mib')} of bare python's RSS")
        print(f"  pg_read / copy_to {ratio('pg_read', 'copy_to')}, "
              f"pg_read / local_read {ratio('pg_read', 'local_read')} (time); "
              f"pg_read / local_read {ratio('pg_read', 'local_read', 'rss_mib')} (RSS)")
        print(f"  pg_diff / mem_diff {ratio('pg_diff', 'mem_diff')} (time), "
              f"{ratio('pg_diff', 'mem_diff', 'cpu')} (runner CPU), "
              f"{ratio('pg_diff', 'mem_diff', 'rss_mib')} (RSS); pg_diff RSS / bare python "
              f"{ratio('pg_diff', 'python', 'rss_mib')}", flush=True)
        if "pg_diff" in got and "mem_diff" in got:
            assert got["pg_diff"]["matched"] == got["mem_diff"]["matched"], got
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE")
                         .format(sql.Identifier(schema)))
        local.unlink(missing_ok=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keys", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--overlap", type=float, default=0.01)
    parser.add_argument("--skip", nargs="*", default=[], choices=OPS)
    parser.add_argument("--child", choices=OPS)
    parser.add_argument("--dsn-env")
    parser.add_argument("--schema")
    parser.add_argument("--local", type=Path)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, os.environ[args.dsn_env], args.schema,
                               args.keys[0], args.overlap, args.local)))
        return 0
    with postgres_server() as server, tempfile.TemporaryDirectory() as tmp:
        print(f"PostgreSQL ledger at scale: intents of {PER_INTENT}, audience as large as the "
              f"ledger, {args.overlap:.0%} of it already in the ledger")
        for keys in args.keys:
            measure(server.dsn, Path(tmp), keys, args.overlap, set(args.skip))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
