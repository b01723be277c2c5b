"""The engine's ledger writer: records appended by group commit (one append, one fsync,
for every record waiting) on a dedicated thread, in the order they were submitted."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Sequence

from connectly_declare.errors import LedgerError
from connectly_declare.ledger.base import Ledger, Record


class LedgerWriter:
    """Group commit: every record waiting when the previous append finished goes into the
    next append (one fsync). Appends run one at a time on a dedicated thread."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="ledger")
        self._waiting: list[tuple[Sequence[Record], asyncio.Future[int]]] = []
        self._busy = False
        self.serial: int | None = None

    def submit(self, records: Sequence[Record]) -> asyncio.Future[int]:
        """Queue `records` now (appends keep the order of submission); the future resolves
        once they are durable, or fails with what the ledger raised."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiting.append((records, future))
        if not self._busy:
            self._busy = True
            asyncio.get_running_loop().create_task(self._drain())
        return future

    async def write(self, records: Sequence[Record]) -> int:
        """Return once `records` are durable; raises what the ledger raised."""
        return await self.submit(records)

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._waiting:
                taken, self._waiting = self._waiting, []
                records = [r for recs, _ in taken for r in recs]
                try:
                    serial = await loop.run_in_executor(self._pool, self._ledger.append, records)
                except BaseException as exc:  # handed to every waiter, who stops sending
                    if isinstance(exc, OSError):
                        exc = LedgerError(
                            f"cannot write the {self._ledger.describe()}: {exc}; nothing more "
                            "was sent",
                            hint="fix the cause (disk space, permissions), then run "
                                 "`connectly-declare plan`: requests already made show as "
                                 "retry or blocked")
                    for _, fut in taken:
                        if not fut.done():
                            fut.set_exception(exc)
                    continue
                self.serial = serial
                for _, fut in taken:
                    if not fut.done():
                        fut.set_result(serial)
        finally:
            self._busy = False

    def close(self) -> None:
        self._pool.shutdown(wait=True)


__all__ = ["LedgerWriter"]
