"""The apply engine: sends a plan's batches and records every outcome in the ledger.

Per batch, in this order: a rate-limit token is taken; the batch's `intent` is appended
and durable; the request is made; its `outcome` is appended. A crash between any two steps
leaves the ledger saying at worst "unknown" for that batch, never "not sent" for something
that was. Ledger appends are group-committed (one append, one fsync, for every record that
is waiting: `ledgerwriter.LedgerWriter`), so many workers share each fsync.

Under `allow_one`, batches whose outcome is unknown are re-sent within the run (a bounded
number of rounds), one entry per request: the server's duplicate check makes that safe,
and `outcomes` maps each one-person answer honestly. Under `allow_multiple` they stay
unknown (the next plan shows them `blocked`).

The summary counts only what reached the server as sent; a request that never left (the
server unreachable) is "not sent", and progress does not move for it.

Stopping (`stop` set, e.g. by Ctrl-C): no new batch starts; those in flight get `grace`
seconds to finish and record their outcomes; any still running after that are cancelled
and stay unknown in the ledger.

The plan's sends may be made while they are sent (plan.stream): a None among them means
"nothing yet", and the worker that drew it lets the others run before asking again.

The caller holds the ledger lock and has checked the plan is fresh.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from connectly_declare import clock
from connectly_declare.apply.batching import (
    Batch,
    PlannedLike,
    SendoutLike,
    make_batches,
    new_batch_id,
)
from connectly_declare.apply.client import SendResult
from connectly_declare.apply.ledgerwriter import LedgerWriter
from connectly_declare.apply.outcomes import Verdict, map_result
from connectly_declare.apply.results import ApplyResult, Tally
from connectly_declare.ledger.base import Ledger, Outcome
from connectly_declare.workspace.config import DEFAULT_BATCH_SIZE, DEFAULT_CONCURRENCY

UNREACHABLE_LIMIT = 3
_DONE = object()  # the end of a round's batches


class Sender(Protocol):
    """What the engine needs of a client (`client.ConnectlyClient` fits)."""

    @property
    def requests(self) -> int:
        """HTTP requests made so far (429s included), for the summary."""
        ...

    @property
    def throttled(self) -> int:
        """429 answers waited out so far, for the summary."""
        ...

    async def send(self, entries: Sequence[Mapping[str, Any]], options: Mapping[str, str] | None,
                   *, before_request: Callable[[], Awaitable[None]] | None = None,
                   keep_trying: Callable[[], bool] | None = None) -> SendResult: ...


class ProgressSink(Protocol):
    """Where progress goes (`progress.Progress` fits)."""

    def advance(self, entries: int) -> None: ...


class _NoProgress:
    def advance(self, entries: int) -> None:
        pass


@dataclass(frozen=True, slots=True)
class EngineSettings:
    batch_size: int = DEFAULT_BATCH_SIZE
    concurrency: int = DEFAULT_CONCURRENCY
    unknown_retry_rounds: int = 3  # allow_one only
    unknown_retry_delay: float = 1.0  # seconds before each retry round (doubles)
    grace_seconds: float = 10.0


class _Stopped(Exception):
    """Raised before a request starts when apply is stopping."""


class Engine:
    """One apply run. `run()` returns the summary; it never raises for API answers,
    only for a ledger that cannot be written (then nothing more is sent)."""

    def __init__(
        self,
        sends: Iterable[tuple[SendoutLike, PlannedLike] | None],
        ledger: Ledger,
        sender: Sender,
        *,
        settings: EngineSettings = EngineSettings(),
        in_doubt: Collection[str] = frozenset(),
        stop: asyncio.Event | None = None,
        progress: ProgressSink | None = None,
        now: Callable[[], str] = clock.now_iso,
        new_id: Callable[[], str] = new_batch_id,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self._sender = sender
        self._writer = LedgerWriter(ledger)
        self._stop = stop or asyncio.Event()
        self._progress = progress or _NoProgress()
        self._now = now
        self._new_id = new_id
        self._sleep = sleep
        self._tallies: dict[str, Tally] = {}
        self._batches = self._count(make_batches(sends, batch_size=settings.batch_size,
                                                 in_doubt=in_doubt, new_id=new_id))
        self._retry: list[Batch] = []
        self._in_flight: set[str] = set()
        self._finalized: set[str] = set()  # batch ids whose entries the summary counted
        self._writes: set[asyncio.Future[int]] = set()  # outcome appends not yet durable
        self._unreachable = 0  # batches in a row that never reached the server
        self.stopped_by: str | None = None
        self._fatal: BaseException | None = None

    def _count(self, batches: Iterator[Batch | None]) -> Iterator[Batch | None]:
        for batch in batches:
            if batch is None:
                yield None
                continue
            tally = self._tallies.get(batch.sendout)
            if tally is None:
                tally = self._tallies[batch.sendout] = Tally(batch.sendout, batch.campaign)
            tally.planned += len(batch.entries)
            yield batch

    def _plan_all(self) -> None:
        """Make sure every planned entry is counted, even those never sent (stopped early)."""
        for _ in self._batches:
            pass

    @property
    def stopping(self) -> bool:
        """Whether no new batch may start (stopped, by a signal or a reason)."""
        return self._stop.is_set()

    def stop(self, reason: str | None = None) -> None:
        if reason and self.stopped_by is None:
            self.stopped_by = reason
        self._stop.set()

    async def run(self) -> ApplyResult:
        try:
            await self._round(self._batches)
            delay = self.settings.unknown_retry_delay
            for _ in range(self.settings.unknown_retry_rounds):
                if not self._retry or self._stop.is_set():
                    break
                await self._pause(delay)
                delay *= 2
                again = [one for b in self._retry for one in b.again(self._new_id)]
                self._retry = []
                await self._round(iter(again))
                # Re-sends never started (stopping) stay unknown, as the ledger says.
                retrying = {b.batch_id for b in self._retry}
                for batch in again:
                    if batch.batch_id not in self._finalized | retrying:
                        self._final(batch, "unknown")
        finally:
            await self._flush()
            self._writer.close()
        for batch in self._retry:  # still unknown after the last round
            self._final(batch, "unknown")
        self._retry = []
        self._plan_all()
        if self._fatal is not None:
            raise self._fatal
        return ApplyResult(
            tuple(t.freeze() for t in self._tallies.values()),
            requests=self._sender.requests,
            throttled=self._sender.throttled,
            interrupted=self._stop.is_set() and self.stopped_by is None,
            stopped_by=self.stopped_by,
            serial=self._writer.serial,
        )

    async def _pause(self, seconds: float) -> None:
        """Sleep before a retry round, cut short when stopping."""
        stopping = asyncio.ensure_future(self._stop.wait())
        sleeping = asyncio.ensure_future(self._sleep(seconds))
        await asyncio.wait({stopping, sleeping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        sleeping.cancel()

    async def _round(self, batches: Iterator[Batch | None]) -> None:
        workers = [asyncio.create_task(self._worker(batches))
                   for _ in range(self.settings.concurrency)]
        stopping = asyncio.create_task(self._stop.wait())
        pending: set[asyncio.Task[Any]] = set(workers)
        while pending:
            done, pending = await asyncio.wait(pending | {stopping},
                                               return_when=asyncio.FIRST_COMPLETED)
            pending.discard(stopping)
            if stopping in done:
                break
        if pending:  # stopping: let the in-flight requests finish, within the grace period
            _, late = await asyncio.wait(pending, timeout=self.settings.grace_seconds)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
        stopping.cancel()
        for task in workers:
            if not task.cancelled() and task.exception() is not None and self._fatal is None:
                self._fatal = task.exception()

    async def _worker(self, batches: Iterator[Batch | None]) -> None:
        while not self._stop.is_set():
            batch = next(batches, _DONE)
            if batch is _DONE:
                return
            if not isinstance(batch, Batch):  # None: the plan has nothing new yet
                await asyncio.sleep(0)
                continue
            try:
                await self._send(batch)
            except _Stopped:
                return
            except asyncio.CancelledError:
                # Cut off after the grace period: the intent is in the ledger, the outcome
                # is not, so the ledger folds it to unknown; the summary says the same.
                if batch.batch_id in self._in_flight:
                    self._final(batch, "unknown")
                raise
            except BaseException as exc:
                self._fatal = self._fatal or exc
                self.stop("the ledger could not be written: nothing more was sent")
                return

    async def _send(self, batch: Batch) -> None:
        async def before_request() -> None:
            if self._stop.is_set():
                raise _Stopped
            await self._writer.write([batch.intent(self._now())])
            self._in_flight.add(batch.batch_id)
            if batch.attempt == 1:
                self._tallies[batch.sendout].sent += len(batch.entries)

        result = await self._sender.send(batch.to_api(), batch.options,
                                         before_request=before_request,
                                         keep_trying=lambda: not self._stop.is_set())
        if batch.batch_id not in self._in_flight:
            # before_request never ran: the client gave up before any attempt (not sent).
            return
        mapped = map_result(batch, result, self._now())
        if result.kind == "not_sent" and batch.attempt == 1:
            self._tallies[batch.sendout].sent -= len(batch.entries)  # it never left
        # Not awaited: nothing waits on an outcome being durable (a crash before it is just
        # "unknown"), so the worker goes on to its next batch and the outcome shares the
        # next intents' fsync. `run` waits for every write before it returns.
        self._record(mapped.outcome)
        self._in_flight.discard(batch.batch_id)
        outcome = mapped.outcome
        if result.kind == "unauthorized":
            said = f": {mapped.reason}" if mapped.reason else ""
            self.stop(f"the API key was refused (HTTP 401{said}): no more requests were made")
        # A server that cannot be reached would otherwise cost every remaining batch its
        # own round of connection retries; a few in a row end the run instead.
        self._unreachable = self._unreachable + 1 if result.kind == "not_sent" else 0
        if self._unreachable >= UNREACHABLE_LIMIT:
            message = (result.error or {}).get("message", "")
            self.stop(f"the API could not be reached ({message}): no more requests were made")
        if outcome.status == "unknown" and not batch.allow_multiple \
                and mapped.verdict == "unknown" and result.kind != "unauthorized":
            self._retry.append(batch)  # counted when it is final
        else:
            self._final(batch, mapped.verdict, outcome.accepted_count, outcome.rejected_count,
                        outcome.sendout_id, mapped.reason)

    def _record(self, outcome: Outcome) -> None:
        future = self._writer.submit([outcome])
        self._writes.add(future)
        future.add_done_callback(self._written)

    def _written(self, future: asyncio.Future[int]) -> None:
        self._writes.discard(future)
        if future.cancelled():
            return
        exc = future.exception()
        if exc is not None:
            self._fatal = self._fatal or exc
            self.stop("the ledger could not be written: nothing more was sent")

    async def _flush(self) -> None:
        """Wait until every outcome submitted so far is durable (or failed)."""
        if self._writes:
            await asyncio.wait(set(self._writes))

    def _final(self, batch: Batch, status: Verdict, accepted: int = 0, rejected: int = 0,
               sendout_id: str | None = None, code: str | None = None) -> None:
        if batch.batch_id in self._finalized:
            return
        self._finalized.add(batch.batch_id)
        tally = self._tallies[batch.sendout]
        n = len(batch.entries)
        if status == "not_sent":
            # Never reached the server: counted with the planned-but-not-sent, and the
            # progress bar does not claim it (it ends short of 100%).
            tally.not_sent_reasons[code or "not sent"] += n
            return
        self._progress.advance(n)
        if status in ("accepted", "inferred"):
            tally.accepted += n
            tally.inferred += n if status == "inferred" else 0
        elif status in ("rejected", "failed"):
            tally.rejected += n
            tally.codes[code or "error"] += n
            if status == "failed":
                tally.failed += n
                tally.failed_codes[code or "error"] += n
        elif status == "partial":
            tally.partial += n
            tally.partial_accepted += accepted
            tally.partial_rejected += rejected
            if code:
                tally.codes[code] += rejected
        else:
            tally.unknown += n
        if sendout_id and sendout_id not in tally.sendout_ids:
            tally.sendout_ids.append(sendout_id)


__all__ = [
    "Engine",
    "EngineSettings",
    "Sender",
]
