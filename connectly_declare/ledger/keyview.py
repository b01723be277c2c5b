"""Bulk questions about the folded keys, over a plain dict or a compact KeyIndex.

`LedgerState.keys` is a dict for a small ledger and a :class:`~ledger.keyindex.KeyIndex`
for a large one (:mod:`ledger.bulkfold`). These functions answer the plan's bulk
questions over either with the same result: the index answers with numpy, a dict with a
plain loop (and numpy is never imported for it).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from connectly_declare.entry import KEY_SEPARATOR
from connectly_declare.ledger.base import KeyState

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    U64 = npt.NDArray[np.uint64]

# classify's verdicts for one entry (ledger.keyindex uses the same numbers)
ABSENT, SAME, CHANGED, OTHER = 0, 1, 2, 3


class BulkKeys(Protocol):
    def classify(self, campaign: str, scope: str, sendout: str, clients: Sequence[str],
                 fps: Sequence[str]) -> list[int]: ...

    def sendout_counts(self) -> Counter[str]: ...

    def keys_with_status(self, statuses: Iterable[str]) -> list[str]: ...

    def sendout_campaign_counts(self, sendouts: Iterable[str]) -> Counter[tuple[str, str]]: ...

    def sendouts_of_clients(self, campaign: str, scope: str, numbers: U64 | None,
                            clients: Sequence[str]) -> Counter[str]: ...

    def sorted_states(self, statuses: Collection[str] | None = None) -> Iterator[KeyState]: ...

    def states_of_client(self, client: str) -> list[KeyState]: ...

    def states_of_campaign_client(self, campaign: str, client: str) -> list[KeyState]: ...


def _bulk(keys: Mapping[str, KeyState]) -> BulkKeys | None:
    return None if isinstance(keys, dict) or not hasattr(keys, "classify") else \
        keys  # type: ignore[return-value]


def is_compact(keys: Mapping[str, KeyState]) -> bool:
    """Whether `keys` is a compact index that answers the bulk questions itself (a
    KeyIndex); False for a plain dict, where a caller asking one question per key may
    rather build its own index in one pass (:mod:`plan.recovery`)."""
    return _bulk(keys) is not None


def classify(keys: Mapping[str, KeyState], campaign: str, scope: str, sendout: str,
             clients: Sequence[str], fps: Sequence[str]) -> list[int]:
    """Per (client, fingerprint) of an entry of `sendout` (keys `campaign`/client/`scope`):
    ABSENT (not in the ledger), SAME (a key recorded under `sendout`, accepted, with this
    fingerprint and no error), CHANGED (the same but another fingerprint), or OTHER
    (anything else: read the key's KeyState)."""
    bulk = _bulk(keys)
    if bulk is not None:
        return bulk.classify(campaign, scope, sendout, clients, fps)
    prefix, suffix = campaign + KEY_SEPARATOR, KEY_SEPARATOR + scope
    get = keys.get
    return [verdict(get(prefix + client + suffix), sendout, fp)
            for client, fp in zip(clients, fps, strict=True)]


def verdict(known: KeyState | None, sendout: str, fp: str) -> int:
    """:func:`classify` for one entry whose key's state is `known`."""
    if known is None:
        return ABSENT
    if known.sendout != sendout or known.status != "accepted" \
            or known.error is not None or known.resolved_as is not None \
            or known.resolved_by is not None or known.resolution_reason is not None \
            or known.accepted_fingerprint not in (None, known.fingerprint):
        return OTHER
    return SAME if known.fingerprint == fp else CHANGED


def sendout_counts(keys: Mapping[str, KeyState]) -> Counter[str]:
    """How many keys each recorded sendout has."""
    bulk = _bulk(keys)
    if bulk is not None:
        return bulk.sendout_counts()
    return Counter(s.sendout for s in keys.values())


def keys_with_status(keys: Mapping[str, KeyState], statuses: Iterable[str]) -> list[str]:
    """The keys whose status is one of `statuses` (e.g. the keys in doubt)."""
    bulk = _bulk(keys)
    if bulk is not None:
        return bulk.keys_with_status(statuses)
    wanted = set(statuses)
    return [key for key, s in keys.items() if s.status in wanted]


def sendout_campaign_counts(keys: Mapping[str, KeyState],
                            sendouts: Iterable[str]) -> Counter[tuple[str, str]]:
    """How many keys each (recorded sendout, campaign) has, among these sendouts."""
    bulk = _bulk(keys)
    if bulk is not None:
        return bulk.sendout_campaign_counts(sendouts)
    wanted = set(sendouts)
    return Counter((s.sendout, key.split(KEY_SEPARATOR)[0]) for key, s in keys.items()
                   if s.sendout in wanted)


def sendouts_of_clients(keys: Mapping[str, KeyState], campaign: str, scope: str,
                        numbers: U64 | None, clients: Sequence[str]) -> Counter[str]:
    """How many keys (`campaign`, client, `scope`) each recorded sendout has among these
    distinct clients, given as E.164 numbers (the uint64 of ``"+<n>"``, e.g. a
    :class:`~connectly_declare.seen.SeenSet`'s) and as strings. A KeyIndex searches its
    codes once for all of them; a dict (small) is asked per client."""
    bulk = _bulk(keys)
    if bulk is not None:
        return bulk.sendouts_of_clients(campaign, scope, numbers, clients)
    prefix, suffix = campaign + KEY_SEPARATOR, KEY_SEPARATOR + scope
    every = list(clients) + ([f"+{n}" for n in numbers.tolist()] if numbers is not None else [])
    get = keys.get
    return Counter(known.sendout for known in (get(prefix + c + suffix) for c in every)
                   if known is not None)


def sorted_states(keys: Mapping[str, KeyState],
                  statuses: Collection[str] | None = None) -> Iterator[KeyState]:
    """Every key's state in key order (``sorted(keys)``), only those whose status is in
    `statuses` if given. A KeyIndex walks it in bounded memory: ten million keys are never
    one sorted list of strings."""
    bulk = _bulk(keys)
    if bulk is not None:
        yield from bulk.sorted_states(statuses)
        return
    for key in sorted(keys):
        known = keys[key]
        if statuses is None or known.status in statuses:
            yield known


def states_of_client(keys: Mapping[str, KeyState], client: str) -> list[KeyState]:
    """The states of every key of `client` (E.164), in key order."""
    bulk = _bulk(keys)
    if bulk is not None:
        return bulk.states_of_client(client)
    return [keys[k] for k in sorted(keys) if k.split(KEY_SEPARATOR)[1:2] == [client]]


def states_of_campaign_client(keys: Mapping[str, KeyState], campaign: str,
                              client: str) -> list[KeyState]:
    """The states of every key of `campaign` to `client`, whatever the scope (the keys
    whose part before the last separator is campaign + separator + client), in key order.
    A KeyIndex looks up one code per (campaign, scope) pair of the campaign; a dict is
    walked whole, so a caller asking this of many clients of a dict should index it once
    (:mod:`plan.recovery` does)."""
    bulk = _bulk(keys)
    if bulk is not None:
        return bulk.states_of_campaign_client(campaign, client)
    prefix = campaign + KEY_SEPARATOR + client
    return [keys[k] for k in sorted(keys) if k.rpartition(KEY_SEPARATOR)[0] == prefix]


__all__ = ["ABSENT", "CHANGED", "OTHER", "SAME", "BulkKeys", "classify", "is_compact",
           "keys_with_status", "sendout_campaign_counts", "sendout_counts",
           "sendouts_of_clients", "sorted_states", "states_of_campaign_client",
           "states_of_client", "verdict"]
