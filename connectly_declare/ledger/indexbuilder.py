"""Building a :class:`~ledger.keyindex.KeyIndex`: :class:`IndexBuilder` collects keys (as
columns or as KeyStates) and sorts them into one; :func:`index_of` makes one of key states."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt

from connectly_declare.entry import KEY_SEPARATOR
from connectly_declare.ledger.base import KeyState
from connectly_declare.ledger.keycodes import (
    ACCEPTED_FP,
    CLIENT_BITS,
    FINGERPRINT_HEX,
    MAX_PAIRS,
    SIDE,
    STATUS_CODE,
    U64,
    Group,
    Side,
    digits,
)
from connectly_declare.ledger.keyindex import KeyIndex


class IndexBuilder:
    """Collects keys (columns or KeyStates), then :meth:`build` sorts them into a KeyIndex."""

    def __init__(self, pairs: list[tuple[str, str]] | None = None) -> None:
        self.pairs: list[tuple[str, str]] = pairs if pairs is not None else []
        self.pair_ids = {p: n for n, p in enumerate(self.pairs)}
        self.groups: list[Group] = []
        self._group_ids: dict[Group, int] = {}
        self.side: dict[int, Side] = {}
        self.extra: dict[str, KeyState] = {}
        self._chunks: list[tuple[U64, npt.NDArray[np.uint8], npt.NDArray[Any],
                                 npt.NDArray[np.uint32]]] = []
        self._one: list[tuple[int, int, bytes, int]] = []  # (code, flags, fp, group)
        self._sorted: tuple[U64, npt.NDArray[np.uint8], npt.NDArray[Any],
                            npt.NDArray[np.uint32]] | None = None

    def pair_id(self, campaign: str, scope: str) -> int | None:
        """The id of (campaign, scope), given one if there is room (None: no room)."""
        found = self.pair_ids.get((campaign, scope))
        if found is None and len(self.pairs) < MAX_PAIRS:
            found = self.pair_ids[(campaign, scope)] = len(self.pairs)
            self.pairs.append((campaign, scope))
        return found

    def group_id(self, group: Group) -> int:
        found = self._group_ids.get(group)
        if found is None:
            found = self._group_ids[group] = len(self.groups)
            self.groups.append(group)
        return found

    def add_rows(self, codes: U64, flags: npt.NDArray[np.uint8], fp: npt.NDArray[Any],
                 group: npt.NDArray[np.uint32], *, ordered: bool = False) -> None:
        """Keys as columns (codes from :meth:`pair_id`, groups from :meth:`group_id`).
        `ordered`: the codes are sorted (the first such chunk is not sorted again: the
        others are merged into it)."""
        if ordered and self._sorted is None:
            self._sorted = (codes, flags, fp, group)
        else:
            self._chunks.append((codes, flags, fp, group))

    def add_state(self, state: KeyState) -> None:
        """One key; kept whole in `extra` when it cannot be encoded."""
        parts = state.key.split(KEY_SEPARATOR)
        number = digits(parts[1]) if len(parts) == 3 else -1
        pair = self.pair_id(parts[0], parts[2]) if number >= 0 else None
        fp = state.fingerprint
        if pair is None or FINGERPRINT_HEX.fullmatch(fp) is None:
            self.extra[state.key] = state
            return
        code = pair << CLIENT_BITS | number
        accepted = state.accepted_fingerprint
        flags = STATUS_CODE[state.status]
        if accepted == fp:
            flags |= ACCEPTED_FP
        if (accepted is not None and accepted != fp) or state.resolved_by is not None \
                or state.resolved_as is not None or state.resolution_reason is not None:
            flags |= SIDE
            self.side[code] = Side(None if accepted == fp else accepted, state.resolved_by,
                                   state.resolved_as, state.resolution_reason)
        group = self.group_id(Group(state.sendout, state.version, state.batch_id,
                                    state.first_at, state.last_at, state.sendout_id,
                                    state.error))
        self._one.append((code, flags, bytes.fromhex(fp), group))

    def build(self) -> KeyIndex:
        chunks = list(self._chunks)
        if self._one:
            one = self._one
            chunks.append((np.array([r[0] for r in one], dtype=np.uint64),
                           np.array([r[1] for r in one], dtype=np.uint8),
                           np.frombuffer(b"".join(r[2] for r in one), dtype=">u8").reshape(-1, 2),
                           np.array([r[3] for r in one], dtype=np.uint32)))
        self._chunks, self._one = [], []
        codes: U64
        flags: npt.NDArray[np.uint8]
        fp: npt.NDArray[Any]
        group: npt.NDArray[np.uint32]
        if chunks:
            codes = np.concatenate([c[0] for c in chunks])
            order = np.argsort(codes, kind="stable")
            codes = codes[order]
            flags = np.concatenate([c[1] for c in chunks])[order]
            fp = np.concatenate([c[2] for c in chunks])[order]
            group = np.concatenate([c[3] for c in chunks])[order]
        else:
            codes = np.zeros(0, dtype=np.uint64)
            flags = np.zeros(0, dtype=np.uint8)
            fp = np.zeros((0, 2), dtype=">u8")
            group = np.zeros(0, dtype=np.uint32)
        if self._sorted is not None:  # merge the rest into the sorted chunk
            big, self._sorted = self._sorted, None
            at = np.searchsorted(big[0], codes)
            codes = np.insert(big[0], at, codes)
            flags = np.insert(big[1], at, flags)
            fp = np.insert(big[2], at, fp, axis=0)
            group = np.insert(big[3], at, group)
            del big
        if len(codes) > 1 and bool((codes[1:] == codes[:-1]).any()):
            raise ValueError("a key was added twice")
        fp = fp.astype(">u8", copy=False)  # concatenate gives native order: bytes are hex
        return KeyIndex(self.pairs, codes, flags, fp, group, self.groups, self.side,
                        self.extra)


def index_of(states: Iterable[KeyState]) -> KeyIndex:
    """A KeyIndex holding these key states (tests, and a small fold made large)."""
    builder = IndexBuilder()
    for state in states:
        builder.add_state(state)
    return builder.build()


__all__ = ["IndexBuilder", "index_of"]
