"""Recovery (plan/recovery.py) over the compact folded ledger (a KeyIndex, what a large
ledger folds into) decides exactly as over the plain dict, for random ledgers (hypothesis):
several campaigns and scopes, every status, rejections saying or not saying "received
already", accepted fingerprints kept under a later attempt, resolutions, and keys the index
keeps whole (a client that is not E.164, a fingerprint that is not 32 hex digits, names
holding the key separator). Over the index it never walks the keys: it looks up each
in-doubt key's campaign and client (KeyIndex.states_of_campaign_client)."""

from __future__ import annotations

import json
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any, NoReturn
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

from connectly_declare.entry import KEY_SEPARATOR
from connectly_declare.ledger.base import (
    ALREADY_RECEIVED,
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
from connectly_declare.ledger.keyindex import KeyIndex
from connectly_declare.ledger.keyview import states_of_campaign_client
from connectly_declare.ledger.local import LocalLedger
from connectly_declare.plan.recovery import IN_DOUBT, Recovery, _maybe_delivered

from .conftest import AT

CAMPAIGNS = ["Welcome", "Promo", f"odd{KEY_SEPARATOR}name"]
SCOPES = ["", "promo", "other", f"x{KEY_SEPARATOR}promo"]  # "": allow_one
CLIENTS = [f"+1650555{n:04d}" for n in range(4)] + ["16505550099"]  # the last: not E.164
FPS = ["0123456789abcdef" * 2, "fedcba9876543210" * 2, "not-hex"]
ERRORS = [None, {"code": ALREADY_RECEIVED}, {"code": "ERROR_CODE_CAMPAIGN_ENTRY_INVALID"},
          {"code": "TEMPLATE_NOT_FOUND"}, {"message": "inferred: already received"}]


@st.composite
def ledgers(draw: st.DrawFn) -> list[Record]:
    records: list[Record] = [Header(lineage="L", created_at=AT)]
    for n in range(draw(st.integers(1, 14))):
        campaign, scope = draw(st.sampled_from(CAMPAIGNS)), draw(st.sampled_from(SCOPES))
        if draw(st.integers(0, 6)) == 0:
            records.append(Resolution(
                campaign, draw(st.sampled_from(CLIENTS)), scope,
                draw(st.sampled_from(["accepted", "rejected", "unknown", "unsent"])), "ana", AT))
            continue
        clients = draw(st.lists(st.sampled_from(CLIENTS), min_size=1, max_size=4, unique=True))
        records.append(Intent(f"b{n}", AT, scope or "welcome", campaign, "v1", scope, {},
                              tuple(IntentEntry(c, draw(st.sampled_from(FPS)))
                                    for c in clients)))
        status = draw(st.sampled_from(["accepted", "rejected", "partial", "unknown", "none"]))
        if status != "none":  # "none": an intent without its outcome (a crash)
            records.append(Outcome(f"b{n}", AT, status,  # type: ignore[arg-type]
                                   error=draw(st.sampled_from(ERRORS))))
    return records


def _no_walk(*_: Any) -> NoReturn:
    raise AssertionError("recovery walked every key of the compact index")


def decisions(state: LedgerState, known: list[KeyState],
              enabled: bool) -> tuple[list[object], list[list[str]]]:
    """Recovery's answers (safe, action, reason) for these keys, then its notes."""
    recovery = Recovery(state, enabled)
    made: list[object] = []
    for one in known:
        action = recovery.action(one, one.sendout)
        made.append((one.key, recovery.safe(one), action, recovery.reason(action, one)))
    return made, [recovery.notes(s) for s in ("welcome", "promo", "other")]


@settings(max_examples=400, deadline=None)
@given(ledgers())
def test_recovery_decides_alike_over_the_index_and_the_dict(records: list[Record]) -> None:
    plain = fold(records)
    folder = BulkFolder(threshold=0)
    for record in records:
        folder.add(record)
    compact = folder.state()
    assert isinstance(compact.keys, KeyIndex) and isinstance(plain.keys, dict)
    assert dict(compact.keys.items()) == plain.keys
    known = [plain.keys[k] for k in sorted(plain.keys)]
    expected = {enabled: decisions(plain, known, enabled) for enabled in (False, True)}
    with ExitStack() as stack:  # the compact side must answer without walking the keys
        for name in ("__iter__", "values", "items", "sorted_states"):
            stack.enter_context(mock.patch.object(KeyIndex, name, _no_walk))
        for one in known:
            prefix = one.key.rpartition(KEY_SEPARATOR)[0]
            same = [s for s in known if s.key.rpartition(KEY_SEPARATOR)[0] == prefix]
            campaign, _, client = prefix.partition(KEY_SEPARATOR)
            assert compact.keys.states_of_campaign_client(campaign, client) == same
            assert states_of_campaign_client(plain.keys, campaign, client) == same
            safe = one.status in IN_DOUBT and one.accepted_fingerprint is None \
                and sum(map(_maybe_delivered, same)) == 1
            assert Recovery(compact, False).safe(one) is safe
        for enabled in (False, True):
            assert decisions(compact, known, enabled) == expected[enabled]


def test_the_lookup_counts_other_scopes_and_odd_keys() -> None:
    """One in-doubt key per client, each with another possible delivery elsewhere: in
    another scope, under allow_one, in a key kept whole (odd fingerprint) ... or none."""
    a, b, c, d = CLIENTS[:4]
    fp, odd = FPS[0], FPS[2]

    def batch(n: int, scope: str, client: str, status: str, fprint: str = fp,
              error: dict[str, Any] | None = None) -> list[Record]:
        return [Intent(f"b{n}", AT, scope or "welcome", "Promo", "v1", scope, {},
                       (IntentEntry(client, fprint),)),
                Outcome(f"b{n}", AT, status, error=error)]  # type: ignore[arg-type]

    records: list[Record] = [
        Header(lineage="L", created_at=AT),
        *batch(1, "promo", a, "unknown"), *batch(2, "other", a, "partial"),  # in doubt twice
        *batch(3, "promo", b, "unknown"), *batch(4, "", b, "accepted"),  # under allow_one
        *batch(5, "promo", c, "unknown"),  # "received already", in a key kept whole
        *batch(6, "other", c, "rejected", odd, {"code": ALREADY_RECEIVED}),
        *batch(7, "promo", d, "unknown"),  # refused for another reason: not a delivery
        *batch(8, "other", d, "rejected", error={"code": "TEMPLATE_NOT_FOUND"})]
    folder = BulkFolder(threshold=0)
    for record in records:
        folder.add(record)
    compact = folder.state()
    assert isinstance(compact.keys, KeyIndex) and len(compact.keys.extra) == 1
    for state in (compact, fold(records)):
        recovery = Recovery(state, True)
        in_doubt = {client: recovery.action(state.keys[f"Promo{KEY_SEPARATOR}{client}"
                                                       f"{KEY_SEPARATOR}promo"], "promo")
                    for client in (a, b, c, d)}
        assert in_doubt == {a: "blocked", b: "blocked", c: "blocked", d: "recover"}


# -- through the CLI, on a ledger big enough to fold into the compact index ---------------

WORKSPACE = """kind: Campaign
name: spring
versions:
  - version: v1
    variables: [name]
---
kind: Audience
name: people
sources:
  - csv: data/people.csv
---
kind: Sendout
name: promo
campaign: spring
version: v1
audience: people
options:
  if_duplicate_check_unspecified: allow_multiple
variables:
  name: "{{ recipient.name }}"
"""


def _line(record: dict[str, Any]) -> str:
    return json.dumps(record) + "\n"


def _workspace(root: Path, keys: int, lost: list[str]) -> None:
    """A sendout `promo` (allow_multiple) to the `lost` clients, whose attempts ended
    unknown, and a ledger of `keys` accepted keys of the same campaign under allow_one
    (more than ledger.bulkfold.SMALL: it folds into a KeyIndex), the first lost client
    among them."""
    (root / "declare.yaml").write_text(
        "version: 1\nbusiness_id: biz\napi_key_env: CONNECTLY_API_KEY\ndefault_region: US\n"
        "manifests: [manifests/*.yaml]\nstate:\n  backend: local\n"
        "  path: .declare/ledger.jsonl\n", encoding="utf-8")
    (root / "data").mkdir()
    (root / "data" / "people.csv").write_text(
        "phone,name\n" + "".join(f"{c},Ana\n" for c in lost), encoding="utf-8")
    (root / "manifests").mkdir()
    (root / "manifests" / "promo.yaml").write_text(WORKSPACE, encoding="utf-8")
    fp = FPS[0]
    clients = [lost[0]] + [f"+1650{5_000_000 + n:07d}" for n in range(keys - 1)]
    lines = [_line({"type": "header", "format_version": 1, "lineage": "L", "created_at": AT,
                    "environment": None, "business_id": None})]
    for start in range(0, keys, 1000):
        part = clients[start:start + 1000]
        lines += [_line({"type": "intent", "batch_id": f"b{start}", "at": AT,
                         "sendout": "old", "campaign": "spring", "version": None, "scope": "",
                         "options": {}, "entries": [[c, fp] for c in part]}),
                  _line({"type": "outcome", "batch_id": f"b{start}", "at": AT,
                         "status": "accepted", "accepted": len(part), "rejected": 0,
                         "sendout_id": "sid-1"})]
    lines += [_line({"type": "intent", "batch_id": "lost", "at": AT, "sendout": "promo",
                     "campaign": "spring", "version": "v1", "scope": "promo", "options": {},
                     "entries": [[c, fp] for c in lost]}),
              _line({"type": "outcome", "batch_id": "lost", "at": AT, "status": "unknown",
                     "accepted": 0, "rejected": 0, "sendout_id": None})]
    (root / ".declare").mkdir()
    (root / ".declare" / "ledger.jsonl").write_text("".join(lines), encoding="utf-8")


def test_plan_recovers_in_doubt_keys_of_a_compact_ledger(tmp_path: Path) -> None:
    delivered, alone = "+14152000001", "+14152000002"
    _workspace(tmp_path, 60_000, [delivered, alone])
    state = LocalLedger(tmp_path / ".declare" / "ledger.jsonl").read()
    assert isinstance(state.keys, KeyIndex)  # the path under test
    out = tmp_path / "reviewed.plan.json"
    for args in ((), ("--recover-in-doubt", "--out", str(out))):
        done = subprocess.run([sys.executable, "-m", "connectly_declare", "-C", str(tmp_path),
                               "plan", *args], capture_output=True, text=True, timeout=300,
                              check=False)
        assert done.returncode == 0, done.stderr
        if not args:
            assert "promo (spring v1, allow_multiple): 2 blocked" in done.stdout, done.stdout
            assert "recoverable: 1 of the blocked client has no other delivery" in done.stdout
    # the client the ledger delivered to under allow_one stays blocked; the other (its
    # lost attempt is its only possible delivery) is recovered
    assert "1 recover)" in done.stdout and "1 blocked" in done.stdout, done.stdout
    plan = json.loads(out.read_text(encoding="utf-8").splitlines()[0])["plan"]
    assert {s[1]: s[0] for s in plan["sendouts"][0]["samples"]} == {
        alone: "recover", delivered: "blocked"}
