"""An intent's entries decoded straight from its JSON bytes, a chunk of intents at once.

The local backend writes an intent's entries as ``"entries":[["+15551234567","<32 hex>"],
...]`` (compact separators, entries last). Turning a million such pairs into uint64 codes
and fingerprint bytes through Python strings costs more than parsing the JSON; numpy does
it over the raw bytes instead. Only the strict layout is accepted: no backslash, no
whitespace, each pair ``["...","..."]``, pairs separated by ``,`` within an intent and by
``]][[`` between intents (so no intent without entries); anything else returns None and
the caller decodes the pairs json already parsed. Within that layout an entry whose client is not
``+`` and 1-15 digits (no leading zero) or whose fingerprint is not 32 lowercase hex digits
is flagged, not decoded.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

_QUOTE, _OPEN, _CLOSE, _COMMA, _PLUS, _ZERO = 34, 91, 93, 44, 43, 48
_POWERS = [10 ** np.arange(size - 1, -1, -1, dtype=np.int64) for size in range(16)]


def e164_digits(windows: npt.NDArray[np.uint8], start: npt.NDArray[Any],
                length: npt.NDArray[Any]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """The digits of the strings at `start` (`length` bytes, each followed by a byte that
    is not a digit; `windows`: a sliding window view of at least 17 bytes over them) as
    numbers, and which strings are "+" and 1-15 ASCII digits without a leading zero (unless
    the number is 0)."""
    digits = length - 1
    window = windows[start]
    values = window[:, 1:17] - np.uint8(_ZERO)  # a non-digit wraps past 9
    first_other = (values > 9).argmax(axis=1)  # where the digits stop
    good = (length >= 2) & (length <= 16) & (window[:, 0] == _PLUS) \
        & (first_other == digits) & ~((digits > 1) & (values[:, 0] == 0))
    number = np.zeros(len(start), dtype=np.int64)
    sizes = np.bincount(digits[good], minlength=16)
    for size in np.flatnonzero(sizes).tolist():  # a few lengths: one product each
        rows = np.flatnonzero(good & (digits == size))
        number[rows] = values[rows, :size].astype(np.int64) @ _POWERS[size]
    return number, good


def decode(segments: list[bytes], count: int
           ) -> tuple[npt.NDArray[np.int64], npt.NDArray[Any], npt.NDArray[np.bool_]] | None:
    """(client digits, fingerprints as (n, 2) big-endian uint64, which entries decoded) of
    `count` pairs in these entries arrays; None when they are not in the strict layout."""
    raw = b"".join(segments)
    arr = np.frombuffer(raw + bytes(40), dtype=np.uint8)  # padded: windows never run out
    size = len(raw)
    q = np.flatnonzero(arr == _QUOTE)
    if count == 0 or len(q) != 4 * count or size < 4 or raw[:2] != b"[[" \
            or raw[-2:] != b"]]":
        return None
    q0, q1, q2, q3 = q.reshape(count, 4).T
    # each pair ["...","..."]; between pairs "],[" (one intent) or "]][[" (the next one):
    # so nothing but brackets and commas outside the strings, one "[" per pair and intent
    shape = (arr[q0 - 1] == _OPEN) & (q2 == q1 + 2) & (arr[q1 + 1] == _COMMA) \
        & (arr[q3 + 1] == _CLOSE)
    gap = q0[1:] - q3[:-1]
    after = q3[:-1]
    within = (gap == 4) & (arr[after + 2] == _COMMA) & (arr[after + 3] == _OPEN)
    across = (gap == 5) & (arr[after + 2] == _CLOSE) & (arr[after + 3] == _OPEN) \
        & (arr[after + 4] == _OPEN)
    if q0[0] != 2 or q3[-1] != size - 3 or not bool(shape.all()) \
            or not bool((within | across).all()) or int(across.sum()) != len(segments) - 1:
        return None
    windows = np.lib.stride_tricks.sliding_window_view(arr, 32)
    number, good = e164_digits(windows, q0 + 1, q1 - q0 - 1)  # a quote follows each
    # fingerprints: 32 lowercase hex digits
    hexes = windows[q2 + 1]
    is_digit = (hexes >= 48) & (hexes <= 57)
    good &= (q3 - q2 - 1 == 32) & (is_digit | ((hexes >= 97) & (hexes <= 102))).all(axis=1)
    nibbles = np.where(is_digit, hexes - 48, hexes - 87).astype(np.uint8)
    packed = np.ascontiguousarray((nibbles[:, 0::2] << 4) | (nibbles[:, 1::2] & 15))
    fp = packed.view(">u8").reshape(count, 2)
    return np.where(good, number, -1), fp, good


__all__ = ["decode", "e164_digits"]
