"""Counts in words: `1 entry`, `2 entries`, `12,345 entries` (one thousands format in
every output)."""

from __future__ import annotations


def count(n: int, noun: str, nouns: str | None = None) -> str:
    """`n` and the noun, singular for exactly one (`nouns` when the plural is not noun+s)."""
    return f"{n:,} {noun if n == 1 else (nouns or noun + 's')}"


__all__ = ["count"]
