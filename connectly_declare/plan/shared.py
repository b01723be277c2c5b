"""Campaigns shared by two or more ``allow_one`` sendouts of one plan: who sends whom.

Under ``allow_one`` a key is (campaign, client, ""), whichever sendout sends it, so two
``allow_one`` sendouts of one campaign planned together may claim the same person (the
cross-sendout conflict: the server would silently reject the second), and may both
match the same ledger key (which must count once when orphans are counted). Within one
such campaign a key is therefore identified by its client alone, and both questions are
kept in :class:`~connectly_declare.seen.SeenSet` s (a plain set of strings while small,
then E.164 numbers as sorted uint64 runs; a client that is not ``+<digits>`` stays an
exact string, never a lossy hash):

- *claims*: one SeenSet per sendout of the clients it sends. A sendout's chunk of
  clients to send is first searched, in bulk, in every other sendout's set: a client
  found there is a conflict counted against that sendout (and not added), the rest are
  added to its own set, whose repeats are its duplicates. The sets stay disjoint, so a
  client is held by the first sendout that claimed it, as a dict of key -> owner would
  say, but at 8 bytes a number instead of a key string and an owner reference each.
  A set per sendout (not one array of numbers -> owner) because a sendout's set is
  only ever appended to while it is planned, which a SeenSet does in sorted runs; a
  campaign has few sendouts, so a chunk is searched a few times.
- *matched*: one SeenSet per campaign of the clients whose key a sendout matched in the
  ledger; :meth:`SharedCampaigns.matched_counts` asks the ledger, in bulk, which
  recorded sendout holds each of those keys (:func:`ledger.keyview.sendouts_of_clients`),
  so orphans are counted without walking every key.

`THRESHOLD` is the sets' size past which they are compact (None: SeenSet's own); tests
set it to 0 to force the compact form on a few clients.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from itertools import compress
from operator import not_

from connectly_declare.ledger.base import KeyState
from connectly_declare.ledger.keyview import sendouts_of_clients
from connectly_declare.seen import SeenSet

THRESHOLD: int | None = None


class SharedCampaign:
    """The allow_one sendouts of one campaign planned together (see the module doc)."""

    def __init__(self, campaign: str, threshold: int | None = None) -> None:
        self.campaign = campaign
        self.threshold = threshold
        self.owners: list[tuple[str, SeenSet]] = []  # in the order they joined
        self.matched = SeenSet(threshold)  # clients whose ledger key a sendout matched

    def join(self, sendout: str) -> SeenSet:
        """The set of clients `sendout` claims (empty; filled by :meth:`claim`)."""
        claims = SeenSet(self.threshold)
        self.owners.append((sendout, claims))
        return claims

    def claim(self, claims: SeenSet, clients: list[str]) -> Counter[str]:
        """Add `clients` (to send) to `claims`, but those another sendout already claims:
        how many of those per sendout (the conflicts). Repeats within `claims` are the
        claimer's duplicates (:attr:`SeenSet.repeats`). The order of `clients` does not
        matter: only counts come out."""
        conflicts: Counter[str] = Counter()
        rest = clients
        for owner, theirs in self.owners:
            if theirs is claims or not rest or not len(theirs):
                continue
            held = theirs.contains(rest)
            taken = sum(held)
            if taken:
                conflicts[owner] += taken
                rest = list(compress(rest, map(not_, held)))
        if rest:
            claims.update(rest)
        return conflicts


class SharedCampaigns:
    """Every shared campaign of a plan, by name."""

    def __init__(self, threshold: int | None = None) -> None:
        self.threshold = THRESHOLD if threshold is None else threshold
        self.campaigns: dict[str, SharedCampaign] = {}

    def campaign(self, name: str) -> SharedCampaign:
        found = self.campaigns.get(name)
        if found is None:
            found = self.campaigns[name] = SharedCampaign(name, self.threshold)
        return found

    def matched_any(self) -> bool:
        """Whether any sendout of a shared campaign matched a ledger key."""
        return any(len(c.matched) for c in self.campaigns.values())

    def matched_counts(self, keys: Mapping[str, KeyState]) -> Counter[tuple[str, str]]:
        """How many distinct ledger keys the shared campaigns' sendouts matched, per
        (recorded sendout, campaign)."""
        counts: Counter[tuple[str, str]] = Counter()
        for name, shared in self.campaigns.items():
            numbers, strings = shared.matched.parts()
            for sendout, count in sendouts_of_clients(keys, name, "", numbers,
                                                      strings).items():
                counts[(sendout, name)] += count
        return counts


__all__ = ["THRESHOLD", "SharedCampaign", "SharedCampaigns"]
