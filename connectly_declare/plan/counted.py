"""A sendout's entries to send, counted and not kept: what a plan holds in their place
when nothing will read them (`connectly-declare plan` without ``--out``, ``--format json``
or ``--details``: it shows counts, samples and notes, never the entries themselves).

Keeping them costs a spool (plan.spool): a row encoded and written per entry, and a
temporary file as large as the plan. A plan that only shows its counts does without.
Reading the entries of such a plan is a mistake in our code, never something to paper
over: every read raises :class:`EntriesNotKept` instead of yielding nothing, which would
look like a plan with nothing to send (the samples, kept apart, are unaffected).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, NoReturn

from connectly_declare.plan.model import PlannedEntry
from connectly_declare.plan.spool import Spool
from connectly_declare.plan.spoolcodec import Constants, Fields


class EntriesNotKept(RuntimeError):
    """The entries of a plan made to be shown only were asked for."""


class CountedSends(Spool):
    """A :class:`Spool` that counts what is appended and keeps nothing. Its length is
    what a spool's would be; anything that would read an entry raises
    :class:`EntriesNotKept`."""

    __slots__ = ()

    def append(self, planned: PlannedEntry) -> None:
        self._count += 1

    def extend(self, entries: Iterable[PlannedEntry]) -> None:
        self._count += len(entries) if isinstance(entries, list) else sum(1 for _ in entries)

    def add(self, count: int) -> None:
        """Count `count` more entries to send, none of them built (plan.bulkdiff)."""
        self._count += count

    def _refuse(self) -> NoReturn:
        raise EntriesNotKept(
            f"this plan counted its {self._count:,} entries to send without keeping them "
            "(a plan to show only): make it with keep=True to read them")

    def __iter__(self) -> Iterator[PlannedEntry]:
        self._refuse()

    def rows(self) -> Iterator[tuple[str, str, Fields, Constants]]:
        self._refuse()

    def field_chunks(self, *names: str) -> Iterator[list[Any]]:
        self._refuse()

    def rows_at(self, positions: Iterable[int]) -> Iterator[tuple[str, str, Fields, Constants]]:
        self._refuse()

    def without(self, drop: bytes | bytearray) -> Spool:
        self._refuse()

    def __getitem__(self, index: int) -> PlannedEntry:
        self._refuse()

    def __eq__(self, other: object) -> bool:
        self._refuse()

    def __repr__(self) -> str:
        return f"CountedSends({self._count:,} entries, not kept)"

    @property
    def on_disk(self) -> int:
        return 0


__all__ = ["CountedSends", "EntriesNotKept"]
