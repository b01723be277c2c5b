"""An entry: one (sendout, recipient) pair after rendering, exactly what the API's
`entries[]` item will carry, with its ledger key and fingerprint.

Keys: the server's duplicate check is per (campaign, client) across versions and sendouts,
so that is the key; a sendout that allows multiple sends adds its own name (the *scope*),
so two such sendouts, or a renamed one, are separate histories. The business id is part of
every key through the ledger itself: one ledger is bound to one business (its header
records it and apply refuses a ledger of another business).

The fingerprint hashes what the entry would send (version, variables, scheduledAt) and the
sendout's `round`; it does not depend on how the templates were written, only on what they
rendered.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

KEY_SEPARATOR = "\x1f"
# The shapes the API takes, checked before sending (plan.validity) and by the simulator.
# fullmatch, ASCII digits: `$` would let a trailing newline through, `\d` other digits.
E164 = re.compile(r"\+[1-9][0-9]{6,14}")
# ISO 8601 with a time and an offset (RFC 3339's shape); datetime checks the ranges.
_TIMESTAMP = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?([Zz]|[+-]\d{2}:\d{2})", re.ASCII)


def valid_timestamp(value: str) -> bool:
    """An ISO 8601 date and time with an offset (`2024-05-01T09:00:00Z`, `...+02:00`)."""
    if not _TIMESTAMP.fullmatch(value):
        return False
    try:
        datetime.fromisoformat(value.replace("z", "Z").replace("t", "T"))
    except ValueError:
        return False
    return True


def make_key(campaign: str, client: str, scope: str = "") -> str:
    """The ledger key of (campaign, E.164 client[, sendout scope])."""
    return f"{campaign}{KEY_SEPARATOR}{client}{KEY_SEPARATOR}{scope}"


def split_key(key: str) -> tuple[str, str, str]:
    """(campaign, client, scope) of a key made by :func:`make_key`."""
    campaign, client, scope = key.split(KEY_SEPARATOR)
    return campaign, client, scope


def fingerprint(
    version: str | None,
    variables: Mapping[str, str],
    scheduled_at: str | None,
    round_: int,
) -> str:
    """A stable 32-hex-digit hash of what an entry sends."""
    canonical = json.dumps(
        [version, sorted(variables.items()), scheduled_at, round_],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.blake2b(canonical.encode("utf-8"), digest_size=16).hexdigest()


@dataclass(frozen=True, slots=True)
class Entry:
    """One rendered (sendout, recipient) pair."""

    sendout: str
    campaign: str
    version: str | None
    client: str  # E.164
    variables: Mapping[str, str]
    scheduled_at: str | None  # ISO 8601 with offset, exactly as sent
    round: int
    allow_multiple: bool
    fingerprint: str
    source: str = field(default="", compare=False)  # "data/vip.csv:12" (row) for messages
    # The recipient's IANA zone and connectly_declare.policy.timing's bits (where the zone
    # came from, quiet hours shifted or held); empty/0 when the sendout has no timing policy.
    zone: str = field(default="", compare=False)
    timing: int = field(default=0, compare=False)

    @property
    def scope(self) -> str:
        return self.sendout if self.allow_multiple else ""

    @property
    def key(self) -> str:
        return make_key(self.campaign, self.client, self.scope)

    def to_api(self) -> dict[str, Any]:
        """The API's `entries[]` item."""
        item: dict[str, Any] = {"client": self.client, "campaignName": self.campaign}
        if self.version is not None:
            item["campaignVersion"] = self.version
        if self.variables:
            item["variables"] = dict(self.variables)
        if self.scheduled_at is not None:
            item["scheduledAt"] = self.scheduled_at
        return item


def mask_phone(client: str) -> str:
    """`+16505551234` -> `+1650•••1234`: enough to recognise, not enough to reuse. At
    least three digits stay hidden, also in short numbers (`+24740123` -> `+247•••23`)."""
    digits = len(client) - 1
    if digits <= 6:
        return client[:2] + "•" * max(len(client) - 2, 0)
    tail = 4 if digits >= 10 else 2
    head = max(1, min(4, digits - tail - 3))
    return f"{client[:1 + head]}•••{client[-tail:]}"
