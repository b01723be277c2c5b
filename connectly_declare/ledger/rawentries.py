"""An intent's entries decoded straight from its JSON bytes, a chunk of intents at once.

The local backend writes an intent's entries as ``"entries":[["+15551234567","<32 hex>"],
...]`` (compact separators, entries last). Turning a million such pairs into uint64 codes
and fingerprint bytes through Python strings costs more than parsing the JSON; numpy does
it over the raw bytes instead. Only the strict layout is accepted: no backslash, no
whitespace, nothing but ``[``, ``]`` and ``,`` outside the strings, one ``[`` per pair and
one per intent, each pair ``["...","..."]``; anything else returns None and the caller
decodes the pairs json already parsed. Within that layout an entry whose client is not
``+`` and 1-15 digits (no leading zero) or whose fingerprint is not 32 lowercase hex digits
is flagged, not decoded.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

_QUOTE, _OPEN, _CLOSE, _COMMA, _PLUS, _ZERO = 34, 91, 93, 44, 43, 48
_POW10 = np.array([10 ** k for k in range(16)], dtype=np.int64)
_DIGIT_SPAN = np.arange(15)
_HEX_SPAN = np.arange(32)


def entries_segment(line: bytes) -> bytes | None:
    """The bytes of the entries array of an intent line as the codec writes it, or None."""
    start = line.rfind(b',"entries":[')
    end = line.rfind(b"]}")
    if start < 0 or end < start:
        return None
    segment = line[start + 11:end + 1]
    return None if b"\\" in segment else segment


def decode(segments: list[bytes], count: int
           ) -> tuple[npt.NDArray[np.int64], npt.NDArray[Any], npt.NDArray[np.bool_]] | None:
    """(client digits, fingerprints as (n, 2) big-endian uint64, which entries decoded) of
    `count` pairs in these entries arrays; None when they are not in the strict layout."""
    raw = b"".join(segments)
    arr = np.frombuffer(raw, dtype=np.uint8)
    quote = arr == _QUOTE
    q = np.flatnonzero(quote)
    if len(q) != 4 * count:
        return None
    inside = np.bitwise_xor.accumulate(quote.view(np.uint8)).astype(bool) | quote
    outside = arr[~inside]
    opens = int((outside == _OPEN).sum())
    if opens != count + len(segments) or \
            int((outside == _CLOSE).sum()) != opens or \
            opens + int((outside == _COMMA).sum()) + opens != len(outside):
        return None
    if count == 0:
        return (np.zeros(0, np.int64), np.zeros((0, 2), ">u8"), np.zeros(0, bool))
    q0, q1, q2, q3 = q.reshape(count, 4).T
    last = len(arr) - 1
    shape = (arr[q0 - 1] == _OPEN) & (q2 == q1 + 2) & (arr[q1 + 1] == _COMMA) \
        & (arr[np.minimum(q3 + 1, last)] == _CLOSE)
    if not bool(shape.all()):
        return None
    # clients: "+" and 1-15 digits, no leading zero unless the number is 0
    length = q1 - q0 - 1
    digits = length - 1
    start = q0 + 2
    valid = _DIGIT_SPAN[None, :] < digits[:, None]
    index = np.minimum(start[:, None] + _DIGIT_SPAN[None, :], last)
    values = arr[index].astype(np.int64) - _ZERO
    good = (length >= 2) & (length <= 16) & (arr[q0 + 1] == _PLUS) \
        & ~((digits > 1) & (arr[np.minimum(start, last)] == _ZERO)) \
        & (((values >= 0) & (values <= 9)) | ~valid).all(axis=1)
    power = _POW10[np.clip(digits[:, None] - 1 - _DIGIT_SPAN[None, :], 0, 15)]
    number = (np.where(valid, values, 0) * power).sum(axis=1)
    # fingerprints: 32 lowercase hex digits
    index = np.minimum((q2 + 1)[:, None] + _HEX_SPAN[None, :], last)
    hexes = arr[index]
    is_digit = (hexes >= 48) & (hexes <= 57)
    good &= (q3 - q2 - 1 == 32) & (is_digit | ((hexes >= 97) & (hexes <= 102))).all(axis=1)
    nibbles = np.where(is_digit, hexes - 48, hexes - 87).astype(np.uint8)
    packed = np.ascontiguousarray((nibbles[:, 0::2] << 4) | (nibbles[:, 1::2] & 15))
    fp = packed.view(">u8").reshape(count, 2)
    return np.where(good, number, -1), fp, good


__all__ = ["decode", "entries_segment"]
