"""How a folded key is coded in the compact index (:mod:`ledger.keyindex`): the constants
and the helpers that turn clients and fingerprints into fixed-width numbers.

A key (campaign, E.164 client, scope) is one ``uint64``, ``pair id << CLIENT_BITS |
digits`` (the client's digits as an integer, :func:`client_digits`); a key's ``flags``
byte holds its status (bits 0-1, :data:`STATUSES`), :data:`ACCEPTED_FP` and :data:`SIDE`;
its fingerprint is 16 bytes (:func:`fingerprint_bytes`). :class:`Group` holds the fields a
whole batch shares, :class:`Side` the rare ones.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from connectly_declare.ledger.base import KeyStatus
from connectly_declare.ledger.rawentries import e164_digits

CLIENT_BITS = 50  # 10**15 - 1 < 2**50: every E.164 number's digits fit
CLIENT_MASK = (1 << CLIENT_BITS) - 1
MAX_PAIRS = 1 << (64 - CLIENT_BITS)
STATUSES: tuple[KeyStatus, ...] = ("accepted", "rejected", "partial", "unknown")
STATUS_CODE = {s: n for n, s in enumerate(STATUSES)}
STATUS_MASK = 3
ACCEPTED_FP = 4
SIDE = 8
FINGERPRINT_HEX = re.compile(r"[0-9a-f]{32}")
_POW10 = np.array([10**k for k in range(16)], dtype=np.uint64)  # 1 .. 10**15

U64 = npt.NDArray[np.uint64]


class Group(NamedTuple):
    """The fields keys folded from one batch share."""

    sendout: str
    version: str | None
    batch_id: str
    first_at: str
    last_at: str
    sendout_id: str | None
    error: str | None


class Side(NamedTuple):
    accepted_fingerprint: str | None
    resolved_by: str | None
    resolved_as: str | None
    resolution_reason: str | None


def client_digits(clients: Sequence[str]) -> npt.NDArray[np.int64]:
    """Each client's digits as an int, or -1 when the client is not exactly ``+`` and
    1-15 ASCII digits without a leading zero (such a key is not encodable). A client that
    is not a string raises TypeError."""
    if not clients:
        return np.zeros(0, dtype=np.int64)
    raw = "\n".join(clients).encode("utf-8", "surrogatepass")
    arr = np.frombuffer(raw + b"\n" + bytes(17), dtype=np.uint8)
    ends = np.flatnonzero(arr[:len(raw) + 1] == 10)
    if len(ends) != len(clients):  # a client holds a newline: one at a time
        return np.array([digits(client) for client in clients], dtype=np.int64)
    starts = np.concatenate(([0], ends[:-1] + 1))
    windows = np.lib.stride_tricks.sliding_window_view(arr, 17)
    number, good = e164_digits(windows, starts, ends - starts)  # a newline follows each
    return np.where(good, number, -1)


def digits(client: str) -> int:
    """:func:`client_digits` of one client."""
    if client.__class__ is not str:
        raise TypeError("a client must be a string")
    if not 2 <= len(client) <= 16 or client[0] != "+":
        return -1
    try:
        n = int(client)
    except ValueError:
        return -1
    return n if "+" + str(n) == client else -1


def fingerprint_bytes(fps: Sequence[str]) -> tuple[npt.NDArray[Any], list[bool] | None]:
    """The fingerprints as an (n, 2) big-endian uint64 array, and None when all are 32
    lowercase hex digits, else which are (the others' rows are zero)."""
    joined = "".join(fps)
    if len(joined) == 32 * len(fps) and (not fps or set(map(len, fps)) == {32}):
        try:
            raw = bytes.fromhex(joined)
            if raw.hex() == joined:
                return np.frombuffer(raw, dtype=">u8").reshape(-1, 2), None
        except ValueError:
            pass
    good = [FINGERPRINT_HEX.fullmatch(fp) is not None for fp in fps]
    raw = bytes.fromhex("".join(fp if ok else "0" * 32 for fp, ok in zip(fps, good, strict=True)))
    return np.frombuffer(raw, dtype=">u8").reshape(-1, 2), good


def text_order(numbers: U64) -> npt.NDArray[np.intp]:
    """The order in which the clients ``"+<number>"`` of these numbers (0 to 10**15 - 1)
    sort as strings: digit by digit, a number that is a prefix of another first ("+12" <
    "+120" < "+13"). As one uint64 each: the digits padded to 15 with zeros, times 16,
    plus how many digits there are."""
    size = np.maximum(np.searchsorted(_POW10, numbers, side="right"), 1)  # digits, 1-15
    padded = numbers * _POW10[15 - size]
    return np.argsort(padded * np.uint64(16) + size.astype(np.uint64), kind="stable")


__all__ = ["Group", "Side", "client_digits", "digits", "fingerprint_bytes", "text_order"]
