"""Folding a large ledger into a :class:`~ledger.keyindex.KeyIndex`, most keys in bulk.

:class:`BulkFolder` is a drop-in for :class:`~ledger.fold.Folder` (``add``,
``add_intent``, ``state``) with the same result, key by key. The fold's rules are per key
(a key's state depends only on the records that touch it), so:

- an intent and its outcome (same batch) are kept as columns: one uint64 code, 16
  fingerprint bytes and an event number per entry, no object per key. Apply has many
  requests in flight, so an outcome comes after other batches' intents and outcomes:
  they are paired by batch id however far apart, and a key's records are replayed in
  file order whenever their order could matter;
- a key that a lone intent, a resolution, or several pairs whose records interleave
  touch, or whose client or fingerprint cannot be encoded, is *replayed*: the records
  touching those keys (intents cut down to them) go through the existing Folder, in
  their original order; a key only pairs touch one after the other is walked in bulk
  (ledger.chainfold);
- every other key's state follows from its one event (status, fingerprint, sendout,
  version, batch, times, sendoutId, error), in bulk.

A ledger of fewer than ``threshold`` entries is folded by the plain Folder into a plain
dict (numpy is not even imported): the records are buffered until the count passes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from connectly_declare.ledger.base import Header, Intent, LedgerState, Outcome, Record, Resolution
from connectly_declare.ledger.codec import LazyPairs, entries_segment
from connectly_declare.ledger.fold import Folder, _status, accepted_note, error_text

if TYPE_CHECKING:  # numpy is imported only for a large ledger
    from connectly_declare.ledger.chainfold import EventInfo

SMALL = 50_000  # entries: below this, a plain Folder and dict
_CHUNK = 1 << 16
_BAD_PAIR = "an entry must be a [client, fingerprint] pair of strings"

Pairs = Sequence[Sequence[str]]


def _plain(pairs: Pairs) -> Pairs:
    """The pairs as the list they are, a LazyPairs parsed (ValueError if it does not)."""
    return pairs.load() if isinstance(pairs, LazyPairs) else pairs


def _check(pairs: Pairs) -> tuple[list[str], list[str]]:
    pairs = _plain(pairs)
    if pairs.__class__ is not list or (pairs and (
            set(map(type, pairs)) != {list} or set(map(len, pairs)) != {2})):
        raise TypeError(_BAD_PAIR)
    # a client or fingerprint that is not a string raises TypeError when joined (_convert)
    return list(map(itemgetter(0), pairs)), list(map(itemgetter(1), pairs))


class BulkFolder:
    """Accumulates records like :class:`Folder`; large ledgers fold into a KeyIndex."""

    def __init__(self, threshold: int = SMALL) -> None:
        self.threshold = threshold
        self._buffer: list[tuple[Record, Pairs | None]] = []
        self._entries = 0
        self._bulk: _Bulk | None = None

    def add(self, record: Record) -> None:
        if isinstance(record, Intent):
            self.add_intent(record, [[e.client, e.fingerprint] for e in record.entries])
        else:
            self._put(record, None)

    def add_intent(self, intent: Intent, pairs: Pairs, raw: bytes | None = None) -> None:
        """An intent with its entries as [client, fingerprint] pairs (as Folder.add_intent;
        a bad pair raises TypeError, possibly only from :meth:`state`). `raw`: the JSON
        line they were parsed from, if at hand (decoded in bulk: ledger.rawentries)."""
        self._put(intent, pairs, raw)

    def _put(self, record: Record, pairs: Pairs | None, raw: bytes | None = None) -> None:
        if self._bulk is not None:
            self._bulk.add(record, pairs, raw)
            return
        self._buffer.append((record, None if pairs is None else _plain(pairs)))
        if pairs is not None:
            self._entries += len(pairs)
        if self._entries >= self.threshold:
            self._bulk = _Bulk()
            for item in self._buffer:
                self._bulk.add(*item)
            self._buffer = []

    def state(self, *, serial: int | None = None) -> LedgerState:
        if self._bulk is not None:
            return self._bulk.state(serial)
        folder = Folder()
        for record, pairs in self._buffer:
            if pairs is not None and isinstance(record, Intent):
                folder.add_intent(record, pairs)
            else:
                folder.add(record)
        return folder.state(serial=serial)


class _Bulk:
    def __init__(self) -> None:
        import numpy as np

        from connectly_declare.ledger.indexbuilder import IndexBuilder

        self.np = np
        self.builder = IndexBuilder()
        self.count = 0
        self.header: Header | None = None
        # intent's seq, intent, outcome, (campaign, scope) pair, outcome's seq
        self.events: list[tuple[int, Intent, Outcome, int, int]] = []
        self.others: list[tuple[int, Record, Pairs | None]] = []
        # intents waiting for their outcome, by batch id (apply's requests in flight)
        self._pending: dict[str, tuple[int, Intent, Pairs, bytes | None]] = {}
        self._clients: list[str] = []
        self._fps: list[str] = []
        self._chunk_events: list[tuple[int, int, int]] = []  # (event, entries, position)
        self._segments: list[bytes] = []  # entries arrays as JSON bytes (rawentries)
        self._raw_events: list[tuple[int, int, int, Pairs]] = []  # ... and their pairs
        self._raw_count = 0
        # columns, a chunk at a time: codes, fingerprints, event numbers, positions
        self._columns_kept: tuple[list[Any], list[Any], list[Any], list[Any]] = ([], [], [], [])
        self._odd: list[tuple[int, int, str, str, int | None]] = []  # pos, event, client, fp, code
        self._position = 0

    def add(self, record: Record, pairs: Pairs | None, raw: bytes | None = None) -> None:
        self.count += 1
        if pairs is not None and isinstance(record, Intent):
            # a second intent of a batch still waiting: the Folder's outcome would go to
            # the later one, and the earlier stays in doubt (replayed whole)
            earlier = self._pending.pop(record.batch_id, None)
            if earlier is not None:
                self.others.append((earlier[0], earlier[1], _plain(earlier[2])))
            self._pending[record.batch_id] = (self.count, record, pairs, raw)
            return
        if isinstance(record, Outcome):
            held = self._pending.pop(record.batch_id, None)
            if held is not None:
                self._event(held, record, self.count)
                return
        if isinstance(record, Header):
            if self.header is None:
                self.header = record
        else:
            self.others.append((self.count, record, None))

    def _release(self) -> None:
        """The intents without an outcome (in doubt): replayed, read whole."""
        for seq, record, pairs, _ in self._pending.values():
            self.others.append((seq, record, _plain(pairs)))
        self._pending = {}

    def _event(self, held: tuple[int, Intent, Pairs, bytes | None], outcome: Outcome,
               outcome_seq: int) -> None:
        seq, intent, pairs, raw = held
        pair = self.builder.pair_id(intent.campaign, intent.scope)
        number = len(self.events)
        self.events.append((seq, intent, outcome, -1 if pair is None else pair, outcome_seq))
        start, size = self._position, len(pairs)
        self._position += size
        # the local read cut the array out already (codec.split_intent); else cut it here
        segment = pairs.segment if isinstance(pairs, LazyPairs) else \
            entries_segment(raw) if raw is not None else None
        if segment is not None:
            self._segments.append(segment)
            self._raw_events.append((number, size, start, pairs))
            self._raw_count += size
        else:
            clients, fps = _check(pairs)
            self._clients += clients
            self._fps += fps
            self._chunk_events.append((number, size, start))
        if len(self._clients) + self._raw_count >= _CHUNK:
            self._convert()

    def _columns(self, chunk: list[tuple[int, int, int]]) -> tuple[Any, Any, Any]:
        """Per entry of these events: event number, (campaign, scope) id, position."""
        np = self.np
        counts = [n for _, n, _ in chunk]
        event = np.repeat(np.array([e for e, _, _ in chunk], dtype=np.uint32), counts)
        pair = np.repeat(np.array([self.events[e][3] for e, _, _ in chunk], dtype=np.int64),
                         counts)
        first = np.cumsum([0, *counts[:-1]], dtype=np.int64)
        position = np.repeat(np.array([p for _, _, p in chunk], dtype=np.int64) - first, counts) \
            + np.arange(sum(counts), dtype=np.int64)
        return event, pair, position

    def _keep(self, codes: Any, fp: Any, event: Any, position: Any, ok: Any) -> None:
        everything = bool(ok.all())
        for column, values in zip(self._columns_kept, (codes, fp, event, position),
                                  strict=True):
            column.append(values if everything else values[ok])

    def _convert_raw(self) -> None:
        from connectly_declare.ledger.keycodes import CLIENT_BITS
        from connectly_declare.ledger.rawentries import decode

        np = self.np
        segments, events, total = self._segments, self._raw_events, self._raw_count
        self._segments, self._raw_events, self._raw_count = [], [], 0
        decoded = decode(segments, total) if events else None
        if decoded is None:  # not the strict layout: the pairs json parsed
            for number, size, start, pairs in events:
                clients, fps = _check(pairs)
                self._clients += clients
                self._fps += fps
                self._chunk_events.append((number, size, start))
            return
        digits, fp, good = decoded
        event, pair, position = self._columns([(e, n, p) for e, n, p, _ in events])
        codes = (pair.clip(0).astype(np.uint64) << np.uint64(CLIENT_BITS)) \
            | digits.clip(0).astype(np.uint64)
        ok = good & (pair >= 0)
        if not ok.all():
            ends = np.cumsum([n for _, n, _, _ in events])
            for i in np.flatnonzero(~ok).tolist():
                k = int(np.searchsorted(ends, i, side="right"))
                number, size, _, pairs = events[k]
                client, fprint = pairs[i - int(ends[k]) + size]
                intent = self.events[number][1]
                self._odd.append((int(position[i]), number, client, fprint,
                                  self._code(intent.campaign, client, intent.scope)))
        self._keep(codes, fp, event, position, ok)

    def _convert(self) -> None:
        from connectly_declare.ledger.keycodes import (
            CLIENT_BITS,
            client_digits,
            fingerprint_bytes,
        )

        np = self.np
        self._convert_raw()
        clients, fps, chunk = self._clients, self._fps, self._chunk_events
        self._clients, self._fps, self._chunk_events = [], [], []
        if not clients:
            return
        event, pair, position = self._columns(chunk)
        try:
            digits = client_digits(clients)
            fp, good = fingerprint_bytes(fps)
        except TypeError:
            raise TypeError(_BAD_PAIR) from None
        codes = (pair.clip(0).astype(np.uint64) << np.uint64(CLIENT_BITS)) \
            | digits.clip(0).astype(np.uint64)
        encodable = (digits >= 0) & (pair >= 0)
        ok = encodable if good is None else encodable & np.array(good, dtype=bool)
        for i in np.flatnonzero(~ok).tolist():
            self._odd.append((int(position[i]), int(event[i]), clients[i], fps[i],
                              int(codes[i]) if encodable[i] else None))
        self._keep(codes, fp, event, position, ok)

    def _interleaved(self, codes: Any, event: Any, candidates: Any) -> Any:
        """The codes among `candidates` (sorted) of keys two of whose events overlap in the
        file: one's intent before the other's outcome (requests in flight together). The
        chain walk folds a key's events one whole pair after another, in outcome order;
        for these keys the Folder replays the records as they lie."""
        np = self.np
        at = np.searchsorted(candidates, codes).clip(0, len(candidates) - 1)
        rows = np.flatnonzero(candidates[at] == codes)
        order = np.lexsort((event[rows], codes[rows]))
        code, ev = codes[rows][order], event[rows][order].astype(np.int64)
        starts = np.array([e[0] for e in self.events], dtype=np.int64)
        ends = np.array([e[4] for e in self.events], dtype=np.int64)
        same = code[1:] == code[:-1]
        overlap = same & (starts[ev[1:]] < ends[ev[:-1]])
        return np.unique(code[1:][overlap])

    def _event_info(self) -> list[EventInfo]:
        from connectly_declare.ledger.chainfold import EventInfo
        from connectly_declare.ledger.keycodes import STATUS_CODE

        info = []
        for _, intent, outcome, _, _ in self.events:
            status = _status(intent, outcome)
            accepted = status == "accepted"
            error = accepted_note(outcome.error) if accepted else \
                error_text(outcome.error, outcome.http_status)
            info.append(EventInfo(intent.sendout, intent.version, intent.batch_id, intent.at,
                                  outcome.at, outcome.sendout_id, error, STATUS_CODE[status],
                                  intent.scope == ""))
        return info

    def _code(self, campaign: str, client: str, scope: str) -> int | None:
        from connectly_declare.ledger.keycodes import CLIENT_BITS, digits

        if client.__class__ is not str:
            raise TypeError(_BAD_PAIR)
        number = digits(client)
        pair = self.builder.pair_id(campaign, scope) if number >= 0 else None
        return None if pair is None else pair << CLIENT_BITS | number

    def _touched(self) -> set[int]:
        """Codes of keys the records other than intent+outcome pairs touch."""
        touched = {code for *_, code in self._odd if code is not None}
        for _, record, pairs in self.others:
            if isinstance(record, Intent) and pairs is not None:
                for pair in pairs:
                    if pair.__class__ is not list or len(pair) != 2:
                        raise TypeError(_BAD_PAIR)
                    code = self._code(record.campaign, pair[0], record.scope)
                    if code is not None:
                        touched.add(code)
            elif isinstance(record, Resolution):
                for campaign, client, scope in record.keys():
                    code = self._code(campaign, client, scope)
                    if code is not None:
                        touched.add(code)
        return touched

    def state(self, serial: int | None) -> LedgerState:
        from connectly_declare.ledger.chainfold import chain_mask, fold_chains
        from connectly_declare.ledger.keycodes import ACCEPTED_FP, CLIENT_MASK, Group

        np = self.np
        self._release()
        self._convert()
        empty = (np.zeros(0, np.uint64), np.zeros((0, 2), ">u8"), np.zeros(0, np.uint32),
                 np.zeros(0, np.int64))

        def column(n: int) -> Any:  # concatenated, its chunks freed at once (peak memory)
            chunks = self._columns_kept[n]
            out = np.concatenate(chunks) if chunks else empty[n]
            chunks.clear()
            return out

        codes, fp, event, position = column(0), column(1), column(2), column(3)
        # Not a stable sort: every code found twice is replayed or walked as a chain and
        # leaves `order` below, so the codes kept are distinct and any sort puts them in
        # one order (quicksort: a quarter of the stable sort's time for a million codes).
        order = np.argsort(codes)
        ordered = codes[order]
        twice = ordered[1:][ordered[1:] == ordered[:-1]]
        del ordered
        touched = np.array(sorted(self._touched()), dtype=np.uint64)
        complex_codes = np.union1d(twice, touched)
        if len(complex_codes):
            at = np.searchsorted(complex_codes, codes).clip(0, len(complex_codes) - 1)
            replay = complex_codes[at] == codes
            del at
        else:
            replay = np.zeros(len(codes), dtype=bool)
        # keys only intent+outcome pairs touched, several of them: walked, not replayed
        info = self._event_info()
        candidates = np.setdiff1d(twice, touched)
        if len(candidates):  # a chain is walked pair after pair: only if that is the order
            candidates = np.setdiff1d(candidates, self._interleaved(codes, event, candidates))
        chain = np.zeros(len(codes), dtype=bool)
        if len(candidates) and len({i.batch_id for i in info}) == len(info):
            chain = chain_mask(codes, event, position, candidates)
            replay &= ~chain
        # the replayed keys' entries, in their original order, per event
        chosen = np.flatnonzero(replay)
        hexes = fp[chosen].astype(">u8").tobytes().hex()
        entries: list[tuple[int, int, str, str, int | None]] = [
            (pos, ev, "+" + str(code & CLIENT_MASK), hexes[32 * i:32 * i + 32], None)
            for i, (pos, ev, code) in enumerate(zip(position[chosen].tolist(),
                                                    event[chosen].tolist(),
                                                    codes[chosen].tolist(), strict=True))]
        entries += self._odd
        entries.sort(key=itemgetter(0))
        per_event: dict[int, list[list[str]]] = {}
        for _, ev, client, f, _ in entries:
            per_event.setdefault(ev, []).append([client, f])
        # the replayed keys' records in file order: an event's intent and outcome each at
        # its own place (other batches' records may lie between them)
        timeline: list[tuple[int, int, int]] = [(self.events[ev][0], 0, ev) for ev in per_event]
        timeline += [(self.events[ev][4], 2, ev) for ev in per_event]
        timeline += [(seq, 1, n) for n, (seq, _, _) in enumerate(self.others)]
        timeline.sort()
        folder = Folder()
        for _, kind, n in timeline:
            if kind == 0:
                folder.add_intent(self.events[n][1], per_event[n])
                continue
            if kind == 2:
                seq, _, outcome, _, outcome_seq = self.events[n]
                if outcome_seq != seq + 1:
                    # not the record after its intent in the file: the Folder folded the
                    # intent on its own first (a key twice in one intent ends otherwise)
                    folder.flush()
                folder.add(outcome)
                continue
            _, record, pairs = self.others[n]
            if pairs is not None and isinstance(record, Intent):
                folder.add_intent(record, pairs)
            else:
                folder.add(record)
        folded = folder.state()
        # every other key: the state its one event gives (taken in key order: the index
        # needs no second sort; each column replaced as it goes, for peak memory)
        if bool(chain.any()):
            fold_chains(self.builder, codes[chain], fp[chain], event[chain], position[chain],
                        info)
        del position
        order = order[~(replay | chain)[order]]
        del replay, chain
        groups = [self.builder.group_id(Group(*i[:7])) for i in info]
        flags = [i.status | (ACCEPTED_FP if i.status == 0 else 0) for i in info]
        codes = codes[order]
        fp = fp[order]
        event = event[order]
        del order
        self.builder.add_rows(codes, np.array(flags, dtype=np.uint8)[event], fp,
                              np.array(groups, dtype=np.uint32)[event], ordered=True)
        del codes, fp, event
        for key_state in folded.keys.values():
            self.builder.add_state(key_state)
        header = self.header
        return LedgerState(
            lineage=header.lineage if header else None,
            serial=self.count if serial is None else serial,
            keys=self.builder.build(),
            environment=header.environment if header else None,
            business_id=header.business_id if header else None,
            warnings=folded.warnings,
        )


__all__ = ["SMALL", "BulkFolder"]
