"""The ledger interface every backend implements, and the records it holds.

Records are plain data, appended and never rewritten:

- ``header``     format version, lineage id, environment, business id, created time
- ``intent``     a batch about to be sent: batch id, sendout, campaign, version, options,
                 scope, and (client, fingerprint) per entry. Durable *before* its request.
- ``outcome``    what the API said about that batch (one group per request: apply never
                 mixes groups in one request): accepted / rejected / partial / unknown,
                 counts, sendoutId, error.
- ``resolution`` a person's verdict on one key or many (`state resolve`): who, when, why.
                 A bulk verdict is *one* record (so a crash cannot leave half of it).

Folding the records gives one :class:`KeyState` per key. ``serial`` counts appended
records, so a saved plan can tell whether the ledger moved on.
"""

from __future__ import annotations

import getpass
import os
import socket
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

FORMAT_VERSION = 1

# The error code apply records when the server rejects, without an error, entries under
# allow_one: the API's duplicate check, i.e. the client already received the campaign.
ALREADY_RECEIVED = "ALREADY_RECEIVED"

KeyStatus = Literal["accepted", "rejected", "partial", "unknown"]
# accepted: delivered; rejected: not delivered (plan: retry); unknown: in doubt again;
# unsent: not delivered and forgotten (falls back to an earlier delivery, else plan: send)
ResolvedAs = Literal["accepted", "rejected", "unknown", "unsent"]
RESOLVED_AS: tuple[ResolvedAs, ...] = ("accepted", "rejected", "unknown", "unsent")
OutcomeStatus = Literal["accepted", "rejected", "partial", "unknown"]
RecordType = Literal["header", "intent", "outcome", "resolution"]


@dataclass(frozen=True, slots=True)
class IntentEntry:
    client: str
    fingerprint: str


@dataclass(frozen=True, slots=True)
class Header:
    lineage: str
    created_at: str
    environment: str | None = None
    business_id: str | None = None
    format_version: int = FORMAT_VERSION
    type: Literal["header"] = "header"


@dataclass(frozen=True, slots=True)
class Intent:
    batch_id: str
    at: str
    sendout: str
    campaign: str
    version: str | None
    scope: str  # "" under allow_one, the sendout's name under allow_multiple
    options: dict[str, str]
    entries: tuple[IntentEntry, ...]
    type: Literal["intent"] = "intent"


@dataclass(frozen=True, slots=True)
class Outcome:
    batch_id: str
    at: str
    status: OutcomeStatus
    accepted_count: int = 0
    rejected_count: int = 0
    sendout_id: str | None = None
    http_status: int | None = None
    error: dict[str, Any] | None = None  # the API's error object, or {"message": ...}
    type: Literal["outcome"] = "outcome"


@dataclass(frozen=True, slots=True)
class Resolution:
    """A verdict on the key (campaign, client, scope), and on every key in `more` (a bulk
    `state resolve`: one record, one line, so it lands whole or not at all)."""

    campaign: str
    client: str
    scope: str
    resolved_as: ResolvedAs
    by: str
    at: str
    reason: str = ""
    more: tuple[tuple[str, str, str], ...] = ()  # further (campaign, client, scope) keys
    type: Literal["resolution"] = "resolution"

    def keys(self) -> Iterator[tuple[str, str, str]]:
        """Every (campaign, client, scope) this verdict is about."""
        yield self.campaign, self.client, self.scope
        yield from self.more


Record = Header | Intent | Outcome | Resolution


@dataclass(slots=True)
class KeyState:
    """The folded status of one key."""

    key: str
    status: KeyStatus
    fingerprint: str
    sendout: str
    version: str | None
    batch_id: str
    first_at: str
    last_at: str
    sendout_id: str | None = None
    error: str | None = None
    # The fingerprint the server last accepted for this key, kept apart from the latest
    # attempt: a resend that ends unknown must not hide that an earlier send was delivered
    # (plan shows `blocked`), and `state resolve --as unsent` falls back to it.
    accepted_fingerprint: str | None = None
    resolved_by: str | None = None  # who last resolved this key (`state resolve`)
    resolved_as: str | None = None  # that verdict, and why (cleared by a later send)
    resolution_reason: str | None = None


@dataclass(slots=True)
class LedgerState:
    """The whole ledger folded: where it comes from and one state per key."""

    lineage: str | None  # None: the ledger does not exist yet
    serial: int
    # a dict, or for a large ledger a compact ledger.keyindex.KeyIndex (use
    # ledger.keyview for bulk questions: it answers them over either)
    keys: Mapping[str, KeyState] = field(default_factory=dict)
    environment: str | None = None
    business_id: str | None = None
    warnings: list[str] = field(default_factory=list)


def current_owner() -> str:
    """user@host of this process: the owner of a lock it takes (either backend) and the
    author of a resolution it records."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no passwd entry in some containers
        user = f"uid{os.getuid()}"
    return f"{user}@{socket.gethostname()}"


@dataclass(frozen=True, slots=True)
class LockInfo:
    """Who holds the writer lock."""

    lock_id: str
    owner: str  # user@host
    pid: int
    command: str
    created_at: str

    def describe(self) -> str:
        return (f"lock {self.lock_id} held by {self.owner} (pid {self.pid}, "
                f"`{self.command}`) since {self.created_at}")


class Ledger(Protocol):
    """A ledger backend. Reading never blocks on a writer; appending needs the lock."""

    @property
    def environment(self) -> str | None:
        """The environment the ledger was opened for (None: no environments)."""
        ...

    @property
    def business_id(self) -> str | None:
        """The business the ledger was opened for (None: not known yet, e.g. to plan)."""
        ...

    def describe(self) -> str:
        """Where the ledger lives, for messages (never includes secrets)."""
        ...

    def read(self) -> LedgerState:
        """Fold every record. Raises LedgerCorrupt for damage other than a torn last line."""
        ...

    def records(self) -> Iterator[Record]:
        """Every record in append order (for export and migration)."""
        ...

    def append(self, records: Sequence[Record]) -> int:
        """Append atomically and durably (fsync / commit) before returning the new serial.
        Creates the ledger (header first) when it does not exist yet."""
        ...

    def lock(self, command: str, timeout: float = 0.0) -> AbstractContextManager[LockInfo]:
        """Hold the single-writer lock; waits up to `timeout` s, then raises LedgerLocked
        naming the holder."""
        ...

    def unlock(self, lock_id: str) -> None:
        """Force-remove a stale lock by its id (`state unlock`)."""
        ...

    def lock_holder(self) -> LockInfo | None:
        """Who holds the writer lock now (None: nobody), for messages."""
        ...
