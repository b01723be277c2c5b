"""Cutting a plan's sends into requests.

One request holds one group: entries of one sendout with the same (campaign, version,
options), at most `batch_size` of them. The server answers one result per
(campaign, version) group, so a request of one group has exactly one result to map back,
and entries with different options (which are per request in the API) never share one.

Entries the ledger holds as in doubt (an earlier attempt's outcome is unknown) are sent
one per request, apart from fresh ones: the answer to a one-entry request speaks about
that one person, so a rejection as a repeat tells us the earlier attempt delivered it (see
`outcomes`), which a batch of several could not say when the server flags repeats with
the same error as invalid entries.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

from connectly_declare.entry import Entry
from connectly_declare.ledger.base import Intent, IntentEntry
from connectly_declare.workspace.config import DEFAULT_BATCH_SIZE

SENDING_ACTIONS = ("send", "resend", "retry", "recover")
DUPLICATE_CHECK = "if_duplicate_check_unspecified"


class SendoutLike(Protocol):
    """What batching reads of a plan's sendout (`plan.SendoutPlan` fits)."""

    @property
    def name(self) -> str: ...
    @property
    def options(self) -> Mapping[str, str]: ...
    @property
    def allow_multiple(self) -> bool: ...


class PlannedLike(Protocol):
    """What batching reads of a planned entry (`plan.PlannedEntry` fits)."""

    @property
    def action(self) -> str: ...
    @property
    def entry(self) -> Entry: ...


@dataclass(frozen=True, slots=True)
class Batch:
    """One request's worth of entries, plus what the ledger's intent record needs."""

    batch_id: str
    sendout: str
    campaign: str
    version: str | None
    scope: str
    options: Mapping[str, str]
    allow_multiple: bool
    entries: tuple[Entry, ...]
    in_doubt: bool = False  # every entry's last attempt ended unknown
    attempt: int = 1  # 2+ for automatic re-sends of an unknown batch within one run

    def to_api(self) -> list[dict[str, object]]:
        return [e.to_api() for e in self.entries]

    def intent(self, at: str) -> Intent:
        return Intent(
            batch_id=self.batch_id,
            at=at,
            sendout=self.sendout,
            campaign=self.campaign,
            version=self.version,
            scope=self.scope,
            options=dict(self.options),
            entries=tuple(IntentEntry(e.client, e.fingerprint) for e in self.entries),
        )

    def again(self, new_id: Callable[[], str]) -> list[Batch]:
        """The same entries as new requests of one entry each (each its own intent), after
        an unknown outcome: each answer then speaks about one person."""
        return [Batch(new_id(), self.sendout, self.campaign, self.version, self.scope,
                      self.options, self.allow_multiple, (entry,), True, self.attempt + 1)
                for entry in self.entries]


_Group = tuple[str, str, str | None, str, tuple[tuple[str, str], ...], bool]


def new_batch_id() -> str:
    return uuid.uuid4().hex


def make_batches(
    sends: Iterable[tuple[SendoutLike, PlannedLike] | None],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    in_doubt: Collection[str] = frozenset(),
    new_id: Callable[[], str] = new_batch_id,
) -> Iterator[Batch | None]:
    """Batches in plan order. `in_doubt` holds ledger keys whose last outcome is unknown;
    their entries go one per batch.

    Streams: holds at most one open batch per group, so memory follows the number of
    groups, not the number of entries. A None among `sends` (a plan made while it is
    sent had nothing new yet: plan.stream) is passed on as a None batch.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    open_: dict[_Group, tuple[SendoutLike, list[Entry], set[str]]] = {}
    # Per-entry work is the hot path of a large apply: options are sorted once per sendout.
    # (The cache holds the sendout itself, so its id cannot be reused by another object.)
    options_of: dict[int, tuple[SendoutLike, tuple[tuple[str, str], ...]]] = {}
    for item in sends:
        if item is None:
            yield None
            continue
        sendout, planned = item
        if planned.action not in SENDING_ACTIONS:
            continue
        entry = planned.entry
        if planned.action == "recover":
            yield recovery_batch(sendout, entry, new_id())
            continue
        cached = options_of.get(id(sendout))
        if cached is None or cached[0] is not sendout:
            cached = options_of[id(sendout)] = (sendout, tuple(sorted(sendout.options.items())))
        options = cached[1]
        doubt = bool(in_doubt) and entry.key in in_doubt
        group = (sendout.name, entry.campaign, entry.version, entry.scope, options, doubt)
        current = open_.get(group)
        # A client twice in one request would be two entries the server may treat as one;
        # the plan should never produce that, but a new request keeps it unambiguous.
        size = 1 if doubt else batch_size
        if current is not None and (len(current[1]) >= size or entry.client in current[2]):
            yield _close(current, group, new_id)
            current = None
        if current is None:
            current = open_[group] = (sendout, [], set())
        current[1].append(entry)
        current[2].add(entry.client)
    for group, current in open_.items():
        if current[1]:
            yield _close(current, group, new_id)


def recovery_batch(sendout: SendoutLike, entry: Entry, batch_id: str) -> Batch:
    """One in-doubt allow_multiple entry re-sent under allow_one, alone in its request
    (`plan.recovery`): to `outcomes` it is an allow_one in-doubt batch of one entry, so
    the server's answer about that person is read as for any allow_one re-send; its
    scope stays the sendout's, so the ledger key is the one in doubt."""
    return Batch(batch_id=batch_id, sendout=sendout.name, campaign=entry.campaign,
                 version=entry.version, scope=entry.scope,
                 options={**sendout.options, DUPLICATE_CHECK: "allow_one"},
                 allow_multiple=False, entries=(entry,), in_doubt=True)


def _close(current: tuple[SendoutLike, list[Entry], set[str]], group: _Group,
           new_id: Callable[[], str]) -> Batch:
    sendout, entries, _clients = current
    first = entries[0]
    batch = Batch(
        batch_id=new_id(),
        sendout=sendout.name,
        campaign=first.campaign,
        version=first.version,
        scope=first.scope,
        options=dict(sendout.options),
        allow_multiple=sendout.allow_multiple,
        entries=tuple(entries),
        in_doubt=bool(group[-1]),
    )
    entries.clear()
    current[2].clear()
    return batch


__all__ = ["Batch", "PlannedLike", "SendoutLike", "make_batches", "recovery_batch"]
