"""Letting PostgreSQL find which of a plan's keys its ledger knows: a prototype, measured by
bench/bench_ledger_scale.py and not used by the plan (README, "At ten million keys": the
runner's memory stays flat, but it is slower than the compact in-memory fold, the server
parses every record on every plan, and all keys must be known before the first lookup).

The runner COPYs the keys it is about to diff into a temporary table; the server parses the
ledger's records and joins their keys against it, and sends back only the records that
touch one of those keys, cut down by the server to the pairs or keys it matched. The
runner folds them with the ordinary :class:`~connectly_declare.ledger.fold.Folder`, so
what it holds grows with the keys both sides share, not with the ledger: for a fresh
audience, next to nothing.

Why the result is the full fold restricted to the wanted keys: the fold is per key except
for how an outcome finds its intent (by batch id, the latest intent of that batch), so
*every* intent of a batch that touches a wanted key is sent (cut to its wanted pairs,
possibly none), with every outcome of those batches; resolutions are cut to their wanted
keys. What is not reproduced is the ledger-wide part of the state: warnings about records
of other keys. The action rules stay in Python (`plan.sendout_diff`), in one place.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import psycopg
from psycopg import sql

from connectly_declare.entry import KEY_SEPARATOR
from connectly_declare.gcpause import no_gc
from connectly_declare.ledger import codec
from connectly_declare.ledger.base import LedgerState, Resolution
from connectly_declare.ledger.fold import Folder
from connectly_declare.ledger.pg_schema import installed_version

_COPY_ROWS = 10_000  # keys written to COPY per write call

# One row per (record, matched key): the server's join, keeping the record's item for it
# (an intent's [client, fingerprint] pair; a resolution's one key, or each of a bulk
# one's keys, as [campaign, client, scope]) and its position. OFFSET 0
# keeps each payload parsed once: flattened, the planner re-parses it for every entry.
_HITS = """
CREATE TEMP TABLE pd_hit ON COMMIT DROP AS
SELECT x.seq, x.ord, x.item FROM (
    SELECT i.seq, e.ord, e.pair AS item, i.prefix || (e.pair->>0) || i.suffix AS key
      FROM (SELECT seq, (j->>'campaign') || %(sep)s AS prefix,
                   %(sep)s || (j->>'scope') AS suffix, j->'entries' AS entries
              FROM (SELECT seq, payload::jsonb AS j FROM {s}.records
                     WHERE ledger = %(n)s AND type = 'intent' OFFSET 0) AS p
            OFFSET 0) AS i,
           jsonb_array_elements(i.entries) WITH ORDINALITY AS e(pair, ord)
    UNION ALL
    SELECT r.seq, k.ord, k.k, (k.k->>0) || %(sep)s || (k.k->>1) || %(sep)s || (k.k->>2)
      FROM (SELECT seq, CASE WHEN j->>'type' = 'resolutions' THEN j->'keys'
                   ELSE jsonb_build_array(jsonb_build_array(j->'campaign', j->'client',
                                                            j->'scope')) END AS keys
              FROM (SELECT seq, payload::jsonb AS j FROM {s}.records
                     WHERE ledger = %(n)s AND type = 'resolution' OFFSET 0) AS p
            OFFSET 0) AS r,
           jsonb_array_elements(r.keys) WITH ORDINALITY AS k(k, ord)
) AS x
WHERE EXISTS (SELECT 1 FROM pd_want AS w WHERE w.key = x.key)
"""

# The batch id of an intent or outcome. codec.encode writes "type" then "batch_id" first,
# so a regular expression on the row's head reads it without parsing the whole document
# (an intent carries its entries); any other layout falls back to parsing it.
_BATCH_HEAD = r'^\{{"type":"(?:intent|outcome)","batch_id":("(?:[^"\\]|\\.)*")'
_BATCH = ("coalesce((substring(left({p}, 400) from '" + _BATCH_HEAD + "'))::jsonb #>> '{{}}', "
          "{p}::jsonb->>'batch_id')")

_BATCHES = """
CREATE TEMP TABLE pd_batch ON COMMIT DROP AS
SELECT DISTINCT {batch} AS batch FROM {s}.records AS r
 WHERE r.ledger = %(n)s AND r.seq IN (SELECT seq FROM pd_hit) AND r.type = 'intent'
"""

_RELEVANT = """
SELECT r.seq, r.type,
       CASE WHEN r.type = 'intent' THEN (r.payload::jsonb - 'entries')::text
            ELSE r.payload END,
       h.items
  FROM {s}.records AS r
  LEFT JOIN (SELECT seq, jsonb_agg(item ORDER BY ord) AS items FROM pd_hit GROUP BY seq)
         AS h
         ON h.seq = r.seq
 WHERE r.ledger = %(n)s AND (
       r.type = 'header'
    OR (r.type = 'resolution' AND h.seq IS NOT NULL)
    OR (r.type IN ('intent', 'outcome') AND EXISTS (SELECT 1 FROM pd_batch)
        AND {batch} IN (SELECT batch FROM pd_batch)))
 ORDER BY r.seq
"""


def matched_state(conn: psycopg.Connection[tuple[object, ...]], schema: str, ledger: str,
                  keys: Iterable[str], timings: dict[str, float] | None = None
                  ) -> LedgerState:
    """The folded states of those of `keys` the ledger `ledger` in `schema` knows (a key it
    does not know is absent: plan `send`), read from one snapshot. `serial` is the
    ledger's, as :meth:`PostgresLedger.read` gives it. `conn` is in autocommit mode.
    `timings`, when given, receives the seconds of each step (for the benchmark)."""
    times = {} if timings is None else timings
    clock = time.perf_counter()

    def lap(step: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        times[step], clock = now - clock, now

    ident = sql.Identifier(schema)
    folder = Folder()
    serial = 0
    with conn.transaction():
        # Not READ ONLY: that refuses CREATE, even of a temporary table. Nothing else is
        # written; a role needs only the TEMP privilege (PUBLIC has it by default).
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        if installed_version(conn, schema) is None:
            return folder.state(serial=0)
        conn.execute("CREATE TEMP TABLE pd_want (key text NOT NULL) ON COMMIT DROP")
        with conn.cursor().copy("COPY pd_want (key) FROM STDIN") as copy:
            chunk: list[str] = []
            for key in keys:
                chunk.append(key.replace("\\", "\\\\").replace("\n", "\\n")
                             .replace("\r", "\\r").replace("\t", "\\t"))
                if len(chunk) >= _COPY_ROWS:
                    copy.write("\n".join(chunk) + "\n")
                    chunk.clear()
            if chunk:
                copy.write("\n".join(chunk) + "\n")
        conn.execute("ANALYZE pd_want")
        lap("copy_keys")
        params = {"n": ledger, "sep": KEY_SEPARATOR}
        batch = sql.SQL(_BATCH.format(p="r.payload"))
        conn.execute(sql.SQL(_HITS).format(s=ident), params)
        lap("server_join")
        conn.execute(sql.SQL(_BATCHES).format(s=ident, batch=batch), params)
        lap("server_batches")
        row = conn.execute(sql.SQL("SELECT coalesce(max(seq), 0) FROM {}.records"
                                   " WHERE ledger = %s").format(ident), (ledger,)).fetchone()
        serial = int(str(row[0])) if row else 0
        cursor = conn.cursor(name="connectly_declare_pg_diff")
        cursor.itersize = 2000
        cursor.execute(sql.SQL(_RELEVANT).format(s=ident, batch=batch), params)
        with no_gc():
            for seq, kind, payload, items in cursor:
                _fold_row(folder, int(str(seq)), str(kind), str(payload),
                          items if isinstance(items, list) else [])
        lap("fetch_fold")
    return folder.state(serial=serial)


def _fold_row(folder: Folder, seq: int, kind: str, payload: str, items: list[Any]) -> None:
    """One record into `folder`, cut down to `items`, its matched pairs or keys (an intent
    comes without its entries: the server cut them off)."""
    try:
        if kind == "intent":
            obj = json.loads(payload)
            obj["entries"] = items
            intent, pairs = codec.intent_from_json(obj)
            folder.add_intent(intent, pairs)
            return
        record = codec.decode(payload)
        if isinstance(record, Resolution):
            if not all(type(k) is list and len(k) == 3 and all(type(p) is str for p in k)
                       for k in items) or not items:
                raise ValueError("a resolution's keys must be [campaign, client, scope]")
            (campaign, client, scope), *more = items
            record = replace(record, campaign=campaign, client=client, scope=scope,
                             more=tuple((c, k, s) for c, k, s in more))
    except (ValueError, TypeError) as err:
        raise ValueError(f"record {seq} is damaged: {err}") from None
    folder.add(record)


__all__ = ["matched_state"]
