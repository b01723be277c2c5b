"""The current time, asked for in one place.

Every function that takes the time by default (`now=`, `clock=` parameters) defaults to
:func:`now` or :func:`now_iso`; tests pass their own clock instead of patching this module.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TextIO

TEST_NOW_ENV = "DECLARE_TEST_NOW"


def now() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def now_iso(timespec: str = "milliseconds") -> str:
    """The current UTC time as ISO 8601 text (what ledger records store)."""
    return now().isoformat(timespec=timespec)


def fixed_clock(environ: Mapping[str, str], err: TextIO) -> Callable[[], datetime] | None:
    """The clock fixed by DECLARE_TEST_NOW (an ISO 8601 time with offset), for tests that
    move time between runs (rollout gates); None when unset. Never for real sends: it is
    announced on stderr every time it is used."""
    text = environ.get(TEST_NOW_ENV, "").strip()
    if not text:
        return None
    from connectly_declare.errors import DeclareError

    try:
        fixed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        fixed = None
    if fixed is None or fixed.tzinfo is None:
        raise DeclareError(f"{TEST_NOW_ENV} is not an ISO 8601 time with an offset: {text!r}",
                           hint=f"unset {TEST_NOW_ENV} (it exists for tests only)")
    err.write(f"warning: {TEST_NOW_ENV} is set: the clock reads {fixed.isoformat()} "
              "(for tests only; unset it for real runs)\n")
    return lambda: fixed


__all__ = ["TEST_NOW_ENV", "fixed_clock", "now", "now_iso"]
