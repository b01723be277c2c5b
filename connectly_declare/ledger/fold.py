"""Folding ledger records into one status per key, independent of the backend.

The rules, in the order records were appended:

- ``intent``: each of its keys becomes ``unknown`` (in flight) with the intent's
  fingerprint, sendout and batch. Exception: an ``allow_one`` key (empty scope) that was
  already accepted stays ``accepted``: the server delivers a campaign to a client at most
  once, so a later attempt cannot have delivered it again.
- ``outcome``: the keys of its batch take its status (accepted / rejected / partial /
  unknown), its sendoutId and error, unless a later intent already superseded the key.
  ``accepted`` also records the *accepted fingerprint*, kept apart from the latest
  attempt: under ``allow_multiple`` a resend that ends unknown makes the key ``unknown``
  (plan: ``blocked``, the person may have it twice otherwise) while remembering that the
  earlier version was delivered.
  A refused *recovery* (an ``allow_multiple`` key re-sent under ``allow_one``) leaves its
  keys ``unknown``: the refusal says nothing about the lost attempt before it.
- ``resolution`` (a person's verdict, on one key or, in bulk, on many; any status):
  ``accepted`` marks the latest attempt delivered; ``rejected`` marks it not delivered
  (plan: ``retry``, or ``noop`` under ``allow_multiple`` when the desired content is the
  one delivered earlier); ``unknown`` puts it back in doubt; ``unsent`` says it was not
  delivered *and* forgets it: the key falls back to its accepted fingerprint if an earlier
  attempt was delivered, otherwise it leaves the state (plan: ``send`` again). The key
  keeps who resolved it, as what and why, until a later send supersedes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from connectly_declare.entry import KEY_SEPARATOR, make_key
from connectly_declare.gcpause import no_gc
from connectly_declare.ledger.base import (
    Header,
    Intent,
    KeyState,
    LedgerState,
    Outcome,
    OutcomeStatus,
    Record,
    Resolution,
)
from connectly_declare.ledger.verdicts import INFERRED


def error_text(error: dict[str, Any] | None, http_status: int | None = None) -> str | None:
    """A one-line summary of an outcome's error object (code first: it is what users grep)."""
    if not error and http_status is None:
        return None
    parts = []
    if error:
        for name in ("code", "type", "message"):
            value = error.get(name)
            if value:
                parts.append(str(value))
    if http_status is not None:
        parts.append(f"HTTP {http_status}")
    return ": ".join(parts) if parts else None


def _status(intent: Intent, outcome: Outcome) -> OutcomeStatus:
    """The outcome's status for the intent's keys. A *recovery* (an allow_multiple key, i.e.
    a scoped one, re-sent under allow_one: `plan.recovery`) that the server refused says
    nothing about the lost attempt before it: its keys stay in doubt (`unknown`), never
    `rejected`, which would let a later plan send them under allow_multiple again."""
    status = outcome.status
    if status == "rejected" and intent.scope and \
            intent.options.get("if_duplicate_check_unspecified") == "allow_one":
        return "unknown"
    return status


def accepted_note(error: dict[str, Any] | None) -> str | None:
    """What an `accepted` outcome's error object says: apply records one only when it
    inferred the acceptance ("inferred: already received ..."), and `state` and the plan
    show it as the key's reason."""
    if not error:
        return None
    message = str(error.get("message") or error.get("code") or "")
    if not message:
        return None
    return message if message.startswith(INFERRED) else f"{INFERRED}: {message}"


class Folder:
    """Accumulates records into key states; feed with :meth:`add`, finish with :meth:`state`."""

    def __init__(self) -> None:
        self.keys: dict[str, KeyState] = {}
        self.header: Header | None = None
        self.count = 0
        self.warnings: list[str] = []
        # intents without an outcome yet: batch id -> (intent, its key states, its pairs)
        self._pending: dict[str, tuple[Intent, list[KeyState], Sequence[Sequence[str]]]] = {}
        self._removed: set[int] = set()  # ids of pending key states resolved `unsent`
        self._held: tuple[Intent, Sequence[Sequence[str]]] | None = None

    def add(self, record: Record) -> None:
        if isinstance(record, Intent):
            self.add_intent(record, [[e.client, e.fingerprint] for e in record.entries])
            return
        held, self._held = self._held, None
        self.count += 1
        if isinstance(record, Outcome):
            if held is not None and held[0].batch_id == record.batch_id:
                self._intent_and_outcome(held[0], held[1], record)
                return
            if held is not None:
                self._intent(*held)
            self._outcome(record)
            return
        if held is not None:
            self._intent(*held)
        if isinstance(record, Resolution):
            self._resolution(record)
        elif self.header is None:
            self.header = record

    def flush(self) -> None:
        """Fold the intent held back (if any) on its own, as any record but its outcome
        coming next would (also for a replay of chosen records, ledger.bulkfold, where
        records between an intent and its outcome were left out)."""
        if self._held is not None:
            held, self._held = self._held, None
            self._intent(*held)

    def add_intent(self, intent: Intent, pairs: Sequence[Sequence[str]]) -> None:
        """Fold an intent whose entries are given as (client, fingerprint) pairs.

        The local backend calls this with the pairs straight from JSON, without building
        an IntentEntry per entry: folding a million keys is dominated by per-entry work.
        ``intent.entries`` is not read. A pair that is not two strings raises TypeError or
        ValueError, possibly after earlier pairs were folded: discard the Folder then.
        The intent is held back one record: apply writes each outcome right after its
        intent, and folding the pair at once creates each new key in its final state.
        """
        self.flush()
        self.count += 1
        self._held = (intent, pairs)

    def _intent_and_outcome(self, intent: Intent, pairs: Sequence[Sequence[str]],
                            outcome: Outcome) -> None:
        """An intent and its outcome, folded in one pass over keys not seen before (the
        others go through the general path, with the same result)."""
        keys = self.keys
        prefix = intent.campaign + KEY_SEPARATOR
        suffix = KEY_SEPARATOR + intent.scope
        status = _status(intent, outcome)
        accepted = status == "accepted"
        error = accepted_note(outcome.error) if accepted else error_text(outcome.error,
                                                                          outcome.http_status)
        sendout, version, batch = intent.sendout, intent.version, intent.batch_id
        first, last, sendout_id = intent.at, outcome.at, outcome.sendout_id
        known = []
        setdefault = keys.setdefault
        for pair in pairs:
            client, fp = pair
            if fp.__class__ is not str or pair.__class__ is not list:
                raise TypeError("an entry must be a [client, fingerprint] pair of strings")
            key = prefix + client + suffix
            state = KeyState(key, status, fp, sendout, version, batch, first, last,
                             sendout_id, error, fp if accepted else None)
            if setdefault(key, state) is not state:  # one probe for the common new key
                known.append(pair)
        if known:
            self._intent(intent, known)
            self._outcome(outcome)

    def _intent(self, intent: Intent, pairs: Sequence[Sequence[str]]) -> None:
        keys = self.keys
        prefix = intent.campaign + KEY_SEPARATOR
        suffix = KEY_SEPARATOR + intent.scope
        allow_one = intent.scope == ""
        at, sendout, version, batch = intent.at, intent.sendout, intent.version, intent.batch_id
        batch_states = []
        for pair in pairs:
            client, fp = pair
            if fp.__class__ is not str or pair.__class__ is not list:
                raise TypeError("an entry must be a [client, fingerprint] pair of strings")
            key = prefix + client + suffix
            state = keys.get(key)
            if state is None:
                state = keys[key] = KeyState(key, "unknown", fp, sendout, version, batch, at, at)
            elif allow_one and state.status == "accepted":
                state.last_at = at
            else:
                state.status = "unknown"
                state.fingerprint = fp
                state.sendout = sendout
                state.version = version
                state.batch_id = batch
                state.last_at = at
                if state.resolved_as is not None:  # a new attempt: the verdict is history
                    state.resolved_by = state.resolved_as = state.resolution_reason = None
            batch_states.append(state)
        # the outcome updates these very objects: no second lookup per key
        self._pending[batch] = (intent, batch_states, pairs)

    def _outcome(self, outcome: Outcome) -> None:
        pending = self._pending.pop(outcome.batch_id, None)
        if pending is None:
            self.warnings.append(
                f"outcome of batch {outcome.batch_id} has no intent before it; ignored"
            )
            return
        intent, batch_states, pairs = pending
        status = _status(intent, outcome)
        error = accepted_note(outcome.error) if status == "accepted" else error_text(
            outcome.error, outcome.http_status)
        batch, at, sendout_id = outcome.batch_id, outcome.at, outcome.sendout_id
        allow_one = intent.scope == ""
        for state, (_, fp) in zip(batch_states, pairs, strict=True):
            if id(state) in self._removed:
                revived = self._revive(state, intent, fp, status, at)
                if revived is None:
                    continue
                state = revived
            if status == "accepted":
                state.accepted_fingerprint = fp
            if state.batch_id != batch:
                continue  # a later intent superseded this key; its own outcome decides
            if allow_one and state.status == "accepted" and status != "accepted":
                continue
            state.status = status
            state.last_at = at
            state.error = error
            if sendout_id is not None:
                state.sendout_id = sendout_id

    def _revive(self, state: KeyState, intent: Intent, fp: str, status: str,
                at: str) -> KeyState | None:
        """The outcome of a key resolved `unsent` while in flight: if the server says it was
        delivered after all, the server's word wins and the key comes back."""
        current = self.keys.get(state.key)
        if current is not None:
            return current
        if status != "accepted":
            return None
        revived = self.keys[state.key] = KeyState(state.key, "accepted", fp, intent.sendout,
                                                  intent.version, intent.batch_id,
                                                  intent.at, at)
        return revived

    def _resolution(self, resolution: Resolution) -> None:
        missing = 0
        for campaign, client, scope in resolution.keys():
            if not self._resolve(make_key(campaign, client, scope), resolution):
                missing += 1
        if missing:
            what = (f"{resolution.campaign!r} for a client" if missing == 1
                    else f"{missing:,} keys")
            self.warnings.append(f"resolution of {what} not in the ledger; ignored")

    def _resolve(self, key: str, resolution: Resolution) -> bool:
        state = self.keys.get(key)
        if state is None:
            return False
        state.resolved_by = resolution.by
        state.resolved_as = resolution.resolved_as
        state.resolution_reason = resolution.reason or None
        state.last_at = resolution.at
        state.error = None
        verdict = resolution.resolved_as
        if verdict == "accepted":
            state.status = "accepted"
            state.accepted_fingerprint = state.fingerprint
        elif verdict == "rejected" or verdict == "unknown":
            state.status = verdict
        elif state.accepted_fingerprint is not None:
            state.status = "accepted"
            state.fingerprint = state.accepted_fingerprint
        else:
            del self.keys[key]
            self._removed.add(id(state))
        return True

    def state(self, *, serial: int | None = None) -> LedgerState:
        self.flush()
        header = self.header
        return LedgerState(
            lineage=header.lineage if header else None,
            serial=self.count if serial is None else serial,
            keys=self.keys,
            environment=header.environment if header else None,
            business_id=header.business_id if header else None,
            warnings=list(self.warnings),
        )


def fold(records: Iterable[Record], *, serial: int | None = None) -> LedgerState:
    """Fold records (header first) into a :class:`LedgerState`.

    ``serial`` defaults to the number of records folded (the header included).
    """
    folder = Folder()
    with no_gc():
        for record in records:
            folder.add(record)
    return folder.state(serial=serial)


__all__ = ["Folder", "accepted_note", "error_text", "fold"]
