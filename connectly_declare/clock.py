"""The current time, asked for in one place.

Every function that takes the time by default (`now=`, `clock=` parameters) defaults to
:func:`now` or :func:`now_iso`; tests pass their own clock instead of patching this module.
"""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def now_iso(timespec: str = "milliseconds") -> str:
    """The current UTC time as ISO 8601 text (what ledger records store)."""
    return now().isoformat(timespec=timespec)


__all__ = ["now", "now_iso"]
