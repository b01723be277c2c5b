"""Keys that several intent+outcome pairs touched, and nothing else, folded without a
KeyState each (the bulk fold's second tier, see :mod:`ledger.bulkfold`).

For such a key the fold's rules (:mod:`ledger.fold`) reduce to a walk over its events in
order. The first creates the key with the event's status and fingerprint (accepted: the
accepted fingerprint too). Each later one, with batch ids all distinct:

- under ``allow_one`` (empty scope) on an ``accepted`` key: only the last time moves to
  the intent's, and an accepted outcome records its fingerprint as the accepted one;
- otherwise the key takes the event's fingerprint, sendout, version, batch, status,
  error and outcome time (and its sendoutId when it has one), and an accepted outcome
  records the accepted fingerprint.

The caller keeps anything else (a key twice in one intent, a resolution, a lone intent,
repeated batch ids) for the general replay; the hypothesis tests compare the result with
the Folder's, key for key.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from connectly_declare.ledger.indexbuilder import IndexBuilder
from connectly_declare.ledger.keycodes import ACCEPTED_FP, SIDE, Group, Side

_SLICE = 1 << 18  # entries walked at a time


class EventInfo(NamedTuple):
    """What one intent+outcome pair sets on a key."""

    sendout: str
    version: str | None
    batch_id: str
    intent_at: str
    outcome_at: str
    sendout_id: str | None
    error: str | None
    status: int  # keycodes.STATUS_CODE; 0 is accepted
    allow_one: bool


def chain_mask(codes: Any, event: Any, position: Any, candidates: Any) -> Any:
    """Which entries belong to keys in `candidates` (sorted codes) that no intent holds
    twice (those stay for the replay)."""
    at = np.searchsorted(candidates, codes).clip(0, len(candidates) - 1)
    mask = candidates[at] == codes
    chosen = np.flatnonzero(mask)
    order = np.lexsort((position[chosen], codes[chosen]))
    code, ev = codes[chosen][order], event[chosen][order]
    twice = (code[1:] == code[:-1]) & (ev[1:] == ev[:-1])
    if bool(twice.any()):
        bad = np.unique(code[1:][twice])
        at = np.searchsorted(bad, codes).clip(0, len(bad) - 1)
        mask &= bad[at] != codes
    return mask


def fold_chains(builder: IndexBuilder, codes: Any, fp: Any, event: Any, position: Any,
                info: list[EventInfo]) -> None:
    """Fold the entries of multi-event keys (all of each key's entries given) into rows,
    a slice of whole keys at a time (Python lists of a slice only, for peak memory)."""
    order = np.lexsort((position, codes))
    codes, fp, event = codes[order], fp[order], event[order]
    start = 0
    while start < len(codes):
        end = min(start + _SLICE, len(codes))
        end = int(np.searchsorted(codes, codes[end - 1], side="right"))  # whole keys
        _fold_slice(builder, codes[start:end], fp[start:end], event[start:end], info)
        start = end


def _fold_slice(builder: IndexBuilder, codes: Any, fp: Any, event: Any,
                info: list[EventInfo]) -> None:
    keys, events = codes.tolist(), event.tolist()
    high, low = fp[:, 0].tolist(), fp[:, 1].tolist()
    out_code: list[int] = []
    out_flags: list[int] = []
    out_row: list[int] = []
    out_group: list[int] = []
    group_id, side = builder.group_id, builder.side
    n, i = len(keys), 0
    while i < n:
        code = keys[i]
        sendout, version, batch, first, last, sid, error, status, one = info[events[i]]
        row, accepted = i, (i if status == 0 else -1)
        j = i + 1
        while j < n and keys[j] == code:
            e = info[events[j]]
            if one and status == 0:
                last = e.intent_at
            else:
                row, sendout, version, batch = j, e.sendout, e.version, e.batch_id
                status, last, error = e.status, e.outcome_at, e.error
                if e.sendout_id is not None:
                    sid = e.sendout_id
            if e.status == 0:
                accepted = j
            j += 1
        flags = status
        if accepted >= 0:
            if high[accepted] == high[row] and low[accepted] == low[row]:
                flags |= ACCEPTED_FP
            else:
                flags |= SIDE
                side[code] = Side(fp[accepted].astype(">u8").tobytes().hex(), None, None, None)
        out_code.append(code)
        out_flags.append(flags)
        out_row.append(row)
        out_group.append(group_id(Group(sendout, version, batch, first, last, sid, error)))
        i = j
    builder.add_rows(np.array(out_code, dtype=np.uint64), np.array(out_flags, dtype=np.uint8),
                     fp[np.array(out_row, dtype=np.int64)], np.array(out_group, dtype=np.uint32))


__all__ = ["EventInfo", "chain_mask", "fold_chains"]
