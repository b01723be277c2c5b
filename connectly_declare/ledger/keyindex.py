"""The folded ledger as a compact key index: ten million keys in a few hundred MiB.

A key is (campaign, E.164 client, scope). :class:`KeyIndex` maps each (campaign, scope)
pair to a small id and the client's digits to an integer, so a key is one ``uint64``
(``pair id << 50 | digits``) in a sorted numpy array; parallel arrays hold per key:

- ``flags`` (uint8): the status (bits 0-1, :data:`STATUSES`), :data:`ACCEPTED_FP` (the
  accepted fingerprint is the fingerprint), :data:`SIDE` (rare fields in a side dict);
- ``fp`` (2 × big-endian uint64): the 32-hex-digit fingerprint as its 16 bytes;
- ``group`` (uint32): an index into a table of :class:`Group` tuples, the fields a whole
  batch shares (sendout, version, batch id, first/last time, sendoutId, error).

About 29 bytes a key. Rare fields (an accepted fingerprint other than the fingerprint,
who resolved the key, as what, why) live in ``side`` keyed by the key's code; keys that
cannot be encoded (a client that is not ``+`` and 1-15 digits, a fingerprint that is not
32 lowercase hex digits, more than 16,384 (campaign, scope) pairs) stay whole
:class:`KeyState` objects in ``extra``.

The index is a ``Mapping[str, KeyState]``: reading a key builds a fresh KeyState (a copy:
changing it changes nothing in the index). Code that touches every key of a large ledger
should use the bulk methods instead, which :mod:`ledger.keyview` also answers over any
mapping (a plain dict for a small ledger, which never imports numpy):

- :meth:`KeyIndex.classify`: one sendout's entries, a chunk at a time, one
  ``np.searchsorted`` (the plan);
- :meth:`KeyIndex.sendout_counts`, :meth:`KeyIndex.sendout_campaign_counts`,
  :meth:`KeyIndex.keys_with_status`: counts and in-doubt keys (orphans, apply);
- :meth:`KeyIndex.sorted_states` and :meth:`KeyIndex.states_of_client`: the keys in
  ``sorted()`` order, streamed, and one client's keys (``state`` commands);
- :meth:`KeyIndex.states_of_campaign_client`: one campaign's keys to one client, any
  scope (recovery of in-doubt keys);
- :meth:`KeyIndex.sendouts_of_clients`: the recorded sendouts of one campaign's keys to
  many clients, given as numbers and strings (a shared campaign's orphans, plan.shared);
- :meth:`KeyIndex.delivered_rows`: delivered keys' client numbers and batch groups
  (frequency caps, plan.capcount; the index only).

Build one with :class:`~ledger.indexbuilder.IndexBuilder` (``add_rows`` for columns,
``add_state`` for a KeyState, then ``build``); :mod:`ledger.bulkfold` folds records into
one. How a key, its flags and its fingerprint are coded: :mod:`ledger.keycodes`.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from functools import cached_property
from operator import attrgetter
from typing import Any

import numpy as np
import numpy.typing as npt

from connectly_declare.entry import KEY_SEPARATOR
from connectly_declare.ledger import keyview
from connectly_declare.ledger.base import KeyState
from connectly_declare.ledger.keycodes import (
    ACCEPTED_FP,
    CLIENT_BITS,
    CLIENT_MASK,
    SIDE,
    STATUS_CODE,
    STATUS_MASK,
    STATUSES,
    U64,
    Group,
    Side,
    client_digits,
    digits,
    fingerprint_bytes,
    text_order,
)
from connectly_declare.ledger.keyview import ABSENT, CHANGED, OTHER, SAME

_WALK = 4_096  # keys made into strings at a time by the sorted walk


def _sorted_search(haystack: npt.NDArray[np.uint64],
                   probes: npt.NDArray[np.uint64]) -> npt.NDArray[np.intp]:
    """`np.searchsorted(haystack, probes)`, searched in the probes' sorted order: one
    pass through the index instead of a random jump each (a chunk of 4,096 entries' keys
    against a million: 5 -> 2 ms under load)."""
    order = np.argsort(probes)  # equal probes (one key twice in a chunk) find one row
    found = np.searchsorted(haystack, probes[order])
    rows = np.empty_like(found)
    rows[order] = found
    return rows


class KeyIndex(Mapping[str, KeyState]):
    """The folded ledger's keys; see the module docstring. Built by :class:`IndexBuilder`."""

    def __init__(self, pairs: list[tuple[str, str]], codes: U64, flags: npt.NDArray[np.uint8],
                 fp: npt.NDArray[Any], group: npt.NDArray[np.uint32], groups: list[Group],
                 side: dict[int, Side], extra: dict[str, KeyState]) -> None:
        self.pairs = pairs  # (campaign, scope) by id
        self.pair_ids = {p: n for n, p in enumerate(pairs)}
        self.codes, self.flags, self.fp, self.group = codes, flags, fp, group
        self.groups, self.side, self.extra = groups, side, extra
        self._sendout_of_group: npt.NDArray[np.uint32] | None = None
        self._sendouts: list[str] = []
        self._simple: dict[str, npt.NDArray[np.bool_]] = {}  # sendout -> per group

    # -- the Mapping --
    def encode(self, key: str) -> int | None:
        """The code of `key`, or None when it cannot be in the arrays."""
        parts = key.split(KEY_SEPARATOR)
        if len(parts) != 3:
            return None
        pair = self.pair_ids.get((parts[0], parts[2]))
        number = digits(parts[1])
        if pair is None or number < 0:
            return None
        return pair << CLIENT_BITS | number

    def _row(self, code: int) -> int:
        row = int(np.searchsorted(self.codes, np.uint64(code)))
        if row < len(self.codes) and int(self.codes[row]) == code:
            return row
        return -1

    def state(self, row: int) -> KeyState:
        """The KeyState of the key in `row` of the arrays."""
        code = int(self.codes[row])
        campaign, scope = self.pairs[code >> CLIENT_BITS]
        key = f"{campaign}{KEY_SEPARATOR}+{code & CLIENT_MASK}{KEY_SEPARATOR}{scope}"
        flags = int(self.flags[row])
        fp = self.fp[row].tobytes().hex()
        g = self.groups[int(self.group[row])]
        state = KeyState(key, STATUSES[flags & STATUS_MASK], fp, g.sendout, g.version,
                         g.batch_id, g.first_at, g.last_at, g.sendout_id, g.error,
                         fp if flags & ACCEPTED_FP else None)
        if flags & SIDE:
            side = self.side[code]
            if side.accepted_fingerprint is not None:
                state.accepted_fingerprint = side.accepted_fingerprint
            state.resolved_by, state.resolved_as = side.resolved_by, side.resolved_as
            state.resolution_reason = side.resolution_reason
        return state

    def __getitem__(self, key: str) -> KeyState:
        code = self.encode(key)
        row = -1 if code is None else self._row(code)
        if row < 0:
            return self.extra[key]
        return self.state(row)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        code = self.encode(key)
        return (code is not None and self._row(code) >= 0) or key in self.extra

    def __len__(self) -> int:
        return len(self.codes) + len(self.extra)

    def __eq__(self, other: object) -> bool:
        """Equal as mappings; two indexes built alike (same pairs, groups and side
        fields: e.g. the same records folded twice) are compared array by array."""
        if isinstance(other, KeyIndex) and self.pairs == other.pairs \
                and self.groups == other.groups and self.side == other.side \
                and self.extra == other.extra:
            return all(np.array_equal(a, b) for a, b in (
                (self.codes, other.codes), (self.flags, other.flags), (self.fp, other.fp),
                (self.group, other.group)))
        return Mapping.__eq__(self, other)

    __hash__ = None  # type: ignore[assignment]

    def __iter__(self) -> Iterator[str]:
        pairs = self.pairs
        for code in self.codes.tolist():
            campaign, scope = pairs[code >> CLIENT_BITS]
            yield f"{campaign}{KEY_SEPARATOR}+{code & CLIENT_MASK}{KEY_SEPARATOR}{scope}"
        yield from self.extra

    def values(self) -> Iterator[KeyState]:  # type: ignore[override]
        for row in range(len(self.codes)):
            yield self.state(row)
        yield from self.extra.values()

    def items(self) -> Iterator[tuple[str, KeyState]]:  # type: ignore[override]
        for state in self.values():
            yield state.key, state

    def sorted_states(self, statuses: Collection[str] | None = None) -> Iterator[KeyState]:
        """Every key's KeyState in the order of ``sorted(index)`` (the keys as strings),
        only those whose status is in `statuses` if given: what `state list`, `state
        export` and bulk `state resolve` walk. Never all the keys as strings at once: per
        (campaign, scope) pair the rows are ordered as their clients sort as text
        (:func:`text_order`, 8 bytes a key), and the pairs' streams and the keys outside
        the arrays are merged by their strings (a pair's keys share prefix and suffix, and
        the separator sorts before every digit)."""
        wanted = None if statuses is None else set(statuses)
        mask = None
        if wanted is not None:
            codes = [STATUS_CODE[s] for s in wanted if s in STATUS_CODE]
            mask = np.isin(self.flags & STATUS_MASK, np.array(codes, dtype=np.uint8))
        starts = [int(np.searchsorted(self.codes, np.uint64(p << CLIENT_BITS)))
                  for p in range(len(self.pairs))] + [len(self.codes)]
        streams: list[Iterator[tuple[str, int]]] = [
            self._pair_walk(p, starts[p], starts[p + 1], mask) for p in range(len(self.pairs))
            if starts[p] < starts[p + 1]]
        extra = sorted(k for k, s in self.extra.items() if wanted is None or s.status in wanted)
        if extra:
            streams.append((key, -1) for key in extra)
        walk = streams[0] if len(streams) == 1 else heapq.merge(*streams)
        for key, row in walk:
            yield self.extra[key] if row < 0 else self.state(row)

    def _pair_walk(self, pair: int, start: int, end: int,
                   mask: npt.NDArray[np.bool_] | None) -> Iterator[tuple[str, int]]:
        """(key, row) of a pair's rows (`start` to `end`, those `mask` keeps), in the
        order of their keys as strings."""
        rows = np.arange(start, end) if mask is None else start + np.flatnonzero(mask[start:end])
        rows = rows[text_order(self.codes[rows] & np.uint64(CLIENT_MASK))]
        campaign, scope = self.pairs[pair]
        prefix, suffix = f"{campaign}{KEY_SEPARATOR}+", f"{KEY_SEPARATOR}{scope}"
        for at in range(0, len(rows), _WALK):
            part = rows[at:at + _WALK]
            numbers = (self.codes[part] & np.uint64(CLIENT_MASK)).tolist()
            for number, row in zip(numbers, part.tolist(), strict=True):
                yield f"{prefix}{number}{suffix}", row

    def states_of_client(self, client: str) -> list[KeyState]:
        """The KeyStates of every key of `client` (any campaign, any scope), in key
        order: one pass over the codes, no key made into a string but these."""
        found: list[KeyState] = []
        number = digits(client)
        if number >= 0 and len(self.codes):
            rows = np.flatnonzero((self.codes & np.uint64(CLIENT_MASK)) == np.uint64(number))
            found = [self.state(row) for row in rows.tolist()]
        found += [s for k, s in self.extra.items() if k.split(KEY_SEPARATOR)[1:2] == [client]]
        return sorted(found, key=attrgetter("key"))

    @cached_property
    def _campaign_pairs(self) -> tuple[dict[str, list[int]], list[tuple[int, str]]]:
        """campaign -> the ids of its (campaign, scope) pairs; and apart, (id, the scope's
        part before its last separator) of the pairs whose scope holds the separator
        (never from a workspace, which forbids control characters in names)."""
        plain: dict[str, list[int]] = {}
        odd: list[tuple[int, str]] = []
        for pair, (campaign, scope) in enumerate(self.pairs):
            if KEY_SEPARATOR in scope:
                odd.append((pair, scope.rpartition(KEY_SEPARATOR)[0]))
            else:
                plain.setdefault(campaign, []).append(pair)
        return plain, odd

    def states_of_campaign_client(self, campaign: str, client: str) -> list[KeyState]:
        """The KeyStates of every key of `campaign` to `client`, whatever the scope, in
        key order: the keys ``k`` with ``k.rpartition(KEY_SEPARATOR)[0] == campaign +
        KEY_SEPARATOR + client``. One `_row` lookup per (campaign, scope) pair of the
        campaign, and the keys kept whole in `extra`: what recovery asks of an in-doubt
        key (:mod:`plan.recovery`), instead of walking every key."""
        prefix = campaign + KEY_SEPARATOR + client
        plain, odd = self._campaign_pairs
        # a key in the arrays is pair campaign SEP "+digits" SEP scope: its prefix is
        # campaign SEP "+digits" when the scope holds no separator, else longer
        head, _, tail = prefix.rpartition(KEY_SEPARATOR)
        wanted = [(pair, tail) for pair in plain.get(head, ())]
        for pair, scope_head in odd:
            end = KEY_SEPARATOR + scope_head
            if prefix.endswith(end):
                rest, _, rest_tail = prefix[:-len(end)].rpartition(KEY_SEPARATOR)
                if rest == self.pairs[pair][0]:
                    wanted.append((pair, rest_tail))
        found: list[KeyState] = []
        for pair, who in wanted:
            number = digits(who)
            row = self._row(pair << CLIENT_BITS | number) if number >= 0 else -1
            if row >= 0:
                found.append(self.state(row))
        found += self._extra_by_prefix.get(prefix, ())
        return sorted(found, key=attrgetter("key"))

    @cached_property
    def _extra_by_prefix(self) -> dict[str, list[KeyState]]:
        """The keys kept whole by ``key.rpartition(KEY_SEPARATOR)[0]``."""
        found: dict[str, list[KeyState]] = {}
        for key, state in self.extra.items():
            found.setdefault(key.rpartition(KEY_SEPARATOR)[0], []).append(state)
        return found

    # -- bulk --
    def _sendout_ids(self) -> npt.NDArray[np.uint32]:
        if self._sendout_of_group is None:
            ids: dict[str, int] = {}
            of_group = [ids.setdefault(g.sendout, len(ids)) for g in self.groups]
            self._sendouts = list(ids)
            self._sendout_of_group = np.array(of_group, dtype=np.uint32)
        return self._sendout_of_group

    def sendout_counts(self) -> Counter[str]:
        """How many keys each recorded sendout has."""
        counts: Counter[str] = Counter()
        if len(self.codes):
            per = np.bincount(self._sendout_ids()[self.group], minlength=len(self._sendouts))
            found = zip(self._sendouts, per.tolist(), strict=True)
            counts.update({s: int(n) for s, n in found if n})
        counts.update(s.sendout for s in self.extra.values())
        return counts

    def keys_with_status(self, statuses: Iterable[str]) -> list[str]:
        """The keys whose status is one of `statuses`."""
        codes = [STATUS_CODE[s] for s in statuses if s in STATUS_CODE]
        rows = np.flatnonzero(np.isin(self.flags & STATUS_MASK, np.array(codes, dtype=np.uint8)))
        found = [self.state(row).key for row in rows.tolist()]
        wanted = set(statuses)
        return found + [key for key, s in self.extra.items() if s.status in wanted]

    def sendout_campaign_counts(self, sendouts: Iterable[str]) -> Counter[tuple[str, str]]:
        """How many keys each (recorded sendout, campaign) has, for these sendouts."""
        wanted = set(sendouts)
        counts: Counter[tuple[str, str]] = Counter()
        if len(self.codes) and wanted:
            of_group = self._sendout_ids()
            sendout = of_group[self.group]
            chosen = [n for n, s in enumerate(self._sendouts) if s in wanted]
            mask = np.isin(sendout, np.array(chosen, dtype=np.uint32))
            pair = (self.codes[mask] >> np.uint64(CLIENT_BITS)).astype(np.int64)
            combined = sendout[mask].astype(np.int64) * len(self.pairs) + pair
            values, per = np.unique(combined, return_counts=True)
            for value, n in zip(values.tolist(), per.tolist(), strict=True):
                s, p = divmod(value, len(self.pairs))
                counts[(self._sendouts[s], self.pairs[p][0])] += n
        for state in self.extra.values():
            if state.sendout in wanted:
                counts[(state.sendout, state.key.split(KEY_SEPARATOR)[0])] += 1
        return counts

    def sendouts_of_clients(self, campaign: str, scope: str, numbers: U64 | None,
                            clients: Sequence[str]) -> Counter[str]:
        """How many keys (`campaign`, client, `scope`) each recorded sendout has among
        these distinct clients, given as E.164 numbers (the uint64 of ``"+<n>"``, e.g. a
        SeenSet's) and as strings: one search of the codes for all that the arrays can
        hold, the keys kept whole looked up one by one for the others."""
        counts: Counter[str] = Counter()
        digits_of = client_digits(clients)
        numbered = digits_of >= 0
        rest = [c for c, ok in zip(clients, numbered.tolist(), strict=True) if not ok]
        together = digits_of[numbered].astype(np.uint64)
        if numbers is not None and len(numbers):
            together = np.concatenate((numbers.astype(np.uint64, copy=False), together))
        pair = self.pair_ids.get((campaign, scope))
        if len(together):
            found = np.zeros(len(together), dtype=np.bool_)
            if pair is not None and len(self.codes):
                fits = together < np.uint64(10**15)  # at most 15 digits: a code's client
                codes = np.uint64(pair << CLIENT_BITS) | np.where(fits, together, np.uint64(0))
                rows = _sorted_search(self.codes, codes).clip(0, len(self.codes) - 1)
                found = fits & (self.codes[rows] == codes)
                of_group = self._sendout_ids()
                per = np.bincount(of_group[self.group[rows[found]]],
                                  minlength=len(self._sendouts))
                counts.update({s: int(n) for s, n in zip(self._sendouts, per.tolist(),
                                                          strict=True) if n})
            rest += [f"+{n}" for n in together[~found].tolist()]
        if rest and self.extra:
            prefix, suffix = campaign + KEY_SEPARATOR, KEY_SEPARATOR + scope
            extra = self.extra
            for client in rest:
                known = extra.get(prefix + client + suffix)
                if known is not None:
                    counts[known.sendout] += 1
        return counts

    def _simple_groups(self, sendout: str) -> npt.NDArray[np.bool_]:
        """Per group: recorded under `sendout` and without an error."""
        found = self._simple.get(sendout)
        if found is None:
            of_group = self._sendout_ids()
            sid = self._sendouts.index(sendout) if sendout in self._sendouts else -1
            plain = np.array([g.error is None for g in self.groups], dtype=bool)
            found = self._simple[sendout] = (of_group == sid) & plain
        return found

    def delivered_rows(self) -> tuple[U64, npt.NDArray[np.uint32]]:
        """Client number and group (an index into ``groups``) of every key in the arrays
        that was delivered: accepted, or holding an accepted fingerprint from an earlier
        attempt (policy.caps counts these as a person's messages). The keys in ``extra``
        are not among them: read those as KeyStates."""
        flags = self.flags
        delivered = ((flags & STATUS_MASK) == STATUS_CODE["accepted"]) \
            | ((flags & ACCEPTED_FP) != 0)
        kept = [code for code, side in self.side.items()
                if side.accepted_fingerprint is not None]
        if kept:
            delivered[np.searchsorted(self.codes, np.array(kept, dtype=np.uint64))] = True
        rows = np.flatnonzero(delivered)
        return self.codes[rows] & np.uint64(CLIENT_MASK), self.group[rows]

    def classify(self, campaign: str, scope: str, sendout: str, clients: Sequence[str],
                 fps: Sequence[str]) -> list[int]:
        """Per entry (client, fingerprint) of `sendout`: ABSENT (no key), SAME (a key of
        this sendout, accepted, same fingerprint, no error), CHANGED (... accepted, another
        fingerprint) or OTHER (anything else: read the key's KeyState)."""
        verdict = np.zeros(len(clients), dtype=np.uint8)
        pair = self.pair_ids.get((campaign, scope))
        if pair is not None and len(self.codes):
            number = client_digits(clients)
            encodable = number >= 0
            codes = (np.uint64(pair << CLIENT_BITS) | number.clip(0).astype(np.uint64))
            rows = _sorted_search(self.codes, codes).clip(0, len(self.codes) - 1)
            found = encodable & (self.codes[rows] == codes)
            want, good = fingerprint_bytes(fps)
            stored = self.fp[rows]
            same_fp = (stored[:, 0] == want[:, 0]) & (stored[:, 1] == want[:, 1])
            # accepted (status code 0), no side fields, in a group of `sendout` without error
            simple = self._simple_groups(sendout)[self.group[rows]] \
                & ((self.flags[rows] & (STATUS_MASK | SIDE)) == STATUS_CODE["accepted"])
            verdict = np.where(found, np.where(simple, np.where(same_fp, SAME, CHANGED), OTHER),
                               ABSENT)
            out: list[int] = verdict.tolist()
            if good is not None:  # an odd fingerprint: compare it as a string
                for i in np.flatnonzero(found & ~np.array(good, dtype=bool)).tolist():
                    out[i] = keyview.verdict(self.state(int(rows[i])), sendout, fps[i])
        else:
            out = verdict.tolist()
        if self.extra:
            prefix, suffix = campaign + KEY_SEPARATOR, KEY_SEPARATOR + scope
            for i, client in enumerate(clients):
                known = self.extra.get(prefix + client + suffix)
                if known is not None:
                    out[i] = keyview.verdict(known, sendout, fps[i])
        return out


__all__ = ["ABSENT", "CHANGED", "OTHER", "SAME", "KeyIndex"]
