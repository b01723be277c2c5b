"""Progress of an apply: a tqdm bar (entries/s, ETA) on a terminal; in CI logs, one plain
line every few seconds instead of a bar redrawn with carriage returns."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TextIO

from tqdm import tqdm


class Progress:
    """Counts entries done out of `total` (None: not known yet, as when the plan is made
    while it is sent); `close()` ends the bar / prints a last line."""

    def __init__(self, total: int | None, stream: TextIO, *, tty: bool | None = None,
                 every: float = 5.0, clock: Callable[[], float] = time.monotonic,
                 label: str = "sending") -> None:
        self.total = total
        self.done = 0
        self._stream = stream
        self._every = every
        self._clock = clock
        self._label = label
        self._start = clock()
        self._last = self._start
        is_tty = stream.isatty() if tty is None else tty
        self._bar: Any = (tqdm(total=total, file=stream, unit="entry", unit_scale=True,
                               desc=label, dynamic_ncols=True, leave=True)
                          if is_tty else None)

    def advance(self, entries: int) -> None:
        self.done += entries
        if self._bar is not None:
            self._bar.update(entries)
            return
        now = self._clock()
        if now - self._last >= self._every:
            self._last = now
            self._line(now)

    def _line(self, now: float) -> None:
        elapsed = max(now - self._start, 1e-9)
        rate = self.done / elapsed
        if self.total is None:
            print(f"{self._label}: {self.done} entries, {rate:.0f} entries/s",
                  file=self._stream, flush=True)
            return
        left = self.total - self.done
        eta = f"{left / rate:.0f} s" if rate > 0 else "?"
        percent = 100.0 * self.done / self.total if self.total else 100.0
        print(f"{self._label}: {self.done}/{self.total} entries ({percent:.0f}%), "
              f"{rate:.0f} entries/s, ETA {eta}", file=self._stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self.done and self._clock() - self._start >= self._every:
            self._line(self._clock())


__all__ = ["Progress"]
