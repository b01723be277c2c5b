"""Walking a large folded ledger's keys in order without holding them all as strings
(KeyIndex.sorted_states, KeyIndex.states_of_client, ledger.keyview): the same keys, the
same states, in exactly the order `sorted()` gives the plain dict, whatever the campaign,
scope and client strings (hypothesis), and through the real CLI on a ledger big enough to
fold into the compact index."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from connectly_declare.entry import KEY_SEPARATOR, make_key, split_key
from connectly_declare.ledger.base import KeyState
from connectly_declare.ledger.indexbuilder import index_of
from connectly_declare.ledger.keycodes import STATUSES, text_order
from connectly_declare.ledger.keyindex import KeyIndex
from connectly_declare.ledger.keyview import (
    sendouts_of_clients,
    sorted_states,
    states_of_client,
)

FP = "0123456789abcdef" * 2
AT = "2026-11-01T00:00:00+00:00"
# characters around the separator (\x1f) and the digits, so that string order and any
# shortcut through codes or pairs would disagree if the walk took one
NAME = st.text(alphabet="a0+ \x1e\x20~é9", max_size=3)
NUMBERS = st.one_of(st.integers(0, 10**15 - 1), st.sampled_from(
    [0, 1, 12, 120, 1200, 13, 16505550100, 1650555010, 165055501000, 10**14, 99]))
ODD_CLIENTS = st.sampled_from(["+012", "16505550100", "+", "+1" * 9, "+١٢٣٤٥٦٧"])


def _state(key: str, status: str, n: int, fp: str) -> KeyState:
    return KeyState(key, status, fp, f"sendout{n % 3}", "v1", f"b{n}",  # type: ignore[arg-type]
                    AT, AT, None, None, fp if status == "accepted" else None)


@st.composite
def ledgers(draw: st.DrawFn) -> list[KeyState]:
    pairs = draw(st.lists(st.tuples(NAME, NAME), min_size=1, max_size=4, unique=True))
    clients = draw(st.lists(st.one_of(NUMBERS.map(lambda n: f"+{n}"), ODD_CLIENTS),
                            min_size=1, max_size=40, unique=True))
    states: dict[str, KeyState] = {}
    for n, client in enumerate(clients):
        for campaign, scope in draw(st.lists(st.sampled_from(pairs), min_size=1, max_size=3,
                                             unique=True)):
            key = make_key(campaign, client, scope)
            fp = draw(st.sampled_from([FP, FP, "not-hex"]))  # an odd one stays whole
            states[key] = _state(key, draw(st.sampled_from(STATUSES)), n, fp)
    return list(states.values())


@settings(max_examples=300, deadline=None)
@given(ledgers(), st.sets(st.sampled_from([*STATUSES, "failed"])))
def test_the_sorted_walk_is_sorted_of_the_dict(states: list[KeyState],
                                               statuses: set[str]) -> None:
    plain = {s.key: s for s in states}
    index = index_of(states)
    assert isinstance(index, KeyIndex)
    walked = list(index.sorted_states())
    assert [s.key for s in walked] == sorted(plain)
    assert walked == [plain[k] for k in sorted(plain)]
    assert list(sorted_states(index, statuses)) == list(sorted_states(plain, statuses)) == [
        plain[k] for k in sorted(plain) if plain[k].status in statuses]
    for client in {split_key(k)[1] for k in plain} | {"+16505550199", "nobody"}:
        expected = [plain[k] for k in sorted(plain) if split_key(k)[1] == client]
        assert index.states_of_client(client) == expected
        assert states_of_client(plain, client) == expected


@settings(max_examples=200, deadline=None)
@given(st.lists(NUMBERS, max_size=60))
def test_text_order_is_the_order_of_the_numbers_as_text(numbers: list[int]) -> None:
    array = np.array(numbers, dtype=np.uint64)
    ordered = array[text_order(array)].tolist()
    assert [f"+{n}" for n in ordered] == sorted(f"+{n}" for n in numbers)


# -- through the CLI, on a ledger that folds into the compact index -----------------------

def _ledger(path: Path, keys: int) -> list[str]:
    """A local ledger of `keys` accepted keys over two campaigns (more than
    ledger.bulkfold.SMALL, so it folds into a KeyIndex), clients of 10 to 12 digits whose
    numeric and text orders differ; returns their keys."""
    lines = [{"type": "header", "format_version": 1, "lineage": "walk", "created_at": AT,
              "environment": None, "business_id": None}]
    made: list[str] = []
    clients = [f"+1650555{n:0{(n % 3) + 2}d}" for n in range(keys // 2)]
    for campaign in ("spring", "autumn"):
        for start in range(0, len(clients), 1000):
            part = clients[start:start + 1000]
            batch = f"{campaign}-{start}"
            lines.append({"type": "intent", "batch_id": batch, "at": AT, "sendout": campaign,
                          "campaign": campaign, "version": None, "scope": "",
                          "options": {}, "entries": [[c, FP] for c in part]})
            lines.append({"type": "outcome", "batch_id": batch, "at": AT,
                          "status": "accepted", "accepted": len(part), "rejected": 0,
                          "sendout_id": "sid-1"})
            made += [make_key(campaign, c, "") for c in part]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return made


def _cli(root: Path, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "connectly_declare", "-C", str(root),
                           "state", *args], capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_state_commands_walk_a_compact_ledger_in_key_order(tmp_path: Path) -> None:
    (tmp_path / "declare.yaml").write_text(
        "version: 1\nbusiness_id: walk\napi_key_env: CONNECTLY_API_KEY\n"
        "default_region: US\nstate:\n  backend: local\n  path: .declare/ledger.jsonl\n",
        encoding="utf-8")
    keys = _ledger(tmp_path / ".declare" / "ledger.jsonl", 60_000)
    export = json.loads(_cli(tmp_path, "export"))
    exported = [make_key(k["campaign"], k["client"], k["scope"]) for k in export["keys"]]
    assert exported == sorted(keys)  # text order: +16505551 after +165055510000
    listed = _cli(tmp_path, "list", "--show-recipients").splitlines()
    assert len(listed) == len(keys) + 1
    assert listed[-1].startswith(f"{len(keys):,} of {len(keys):,} keys")
    assert [line.split()[1] for line in listed[:-1]] == [split_key(k)[1] for k in sorted(keys)]
    client = "+16505550002"  # in both campaigns
    shown = _cli(tmp_path, "show", client, "--show-recipients")
    assert [line.split()[2] for line in shown.splitlines() if "accepted" in line] == [
        "'autumn'", "'spring'"]
    assert shown.count(client + " ") == 2 and KEY_SEPARATOR not in shown


@settings(max_examples=300, deadline=None)
@given(ledgers(), st.data())
def test_sendouts_of_clients_count_as_the_dict_does(states: list[KeyState],
                                                    data: st.DataObject) -> None:
    """KeyIndex.sendouts_of_clients (one search of the codes, the keys kept whole looked
    up apart) counts each recorded sendout's keys of (campaign, client, scope) as reading
    the dict's keys one by one does, for clients given as numbers and as strings."""
    plain = {s.key: s for s in states}
    index = index_of(states)
    campaign, _, scope = split_key(data.draw(st.sampled_from(sorted(plain))))
    clients = data.draw(st.lists(st.one_of(
        st.sampled_from([split_key(k)[1] for k in plain]), NUMBERS.map(lambda n: f"+{n}"),
        ODD_CLIENTS, st.just("+1234567890123456")), unique=True, max_size=20))
    expected: dict[str, int] = {}
    for client in clients:
        known = plain.get(make_key(campaign, client, scope))
        if known is not None:
            expected[known.sendout] = expected.get(known.sendout, 0) + 1
    as_numbers = [c for c in clients if c[1:].isdigit() and c == f"+{int(c[1:])}"
                  and int(c[1:]) < 2**64]
    numbers = np.array([int(c[1:]) for c in as_numbers], dtype=np.uint64)
    strings = [c for c in clients if c not in as_numbers]
    for keys in (plain, index):
        assert sendouts_of_clients(keys, campaign, scope, None, clients) == expected
        assert sendouts_of_clients(keys, campaign, scope, numbers, strings) == expected
