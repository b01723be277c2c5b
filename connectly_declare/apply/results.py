"""What an apply run produced: each sendout's counts (`SendoutSummary`), the run's
(`ApplyResult`), and the `Tally` the engine keeps per sendout until it freezes it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class SendoutSummary:
    """What happened to one sendout's entries in this run (counts are entries)."""

    sendout: str
    campaign: str
    planned: int
    sent: int  # entries in requests that reached the server
    accepted: int  # inferred ones included
    rejected: int  # every rejection the server gave (failed ones included)
    partial: int
    unknown: int
    not_sent: int  # planned but never reached the server (unreachable, or stopped early)
    rejected_codes: tuple[tuple[str, int], ...] = ()  # ("CODE: message", entries)
    sendout_ids: tuple[str, ...] = ()
    partial_counts: tuple[int, int] = (0, 0)  # accepted, rejected inside partial groups
    inferred: int = 0  # accepted by inference: "inferred: already received"
    failed: int = 0  # permanent rejections, among `rejected` (the plan shows `failed`)
    failed_codes: tuple[tuple[str, int], ...] = ()  # ("CODE: message", entries)
    not_sent_reasons: tuple[tuple[str, int], ...] = ()

    @property
    def ok(self) -> bool:
        return self.accepted == self.planned


@dataclass(frozen=True, slots=True)
class ApplyResult:
    sendouts: tuple[SendoutSummary, ...]
    requests: int
    throttled: int  # 429s waited out
    interrupted: bool = False
    stopped_by: str | None = None  # why sending stopped early, in words
    serial: int | None = None  # the ledger's serial after the last append

    @property
    def ok(self) -> bool:
        return not self.interrupted and self.stopped_by is None and all(
            s.ok for s in self.sendouts)

    def total(self, name: str) -> int:
        return sum(int(getattr(s, name)) for s in self.sendouts)


@dataclass(slots=True)
class Tally:
    """One sendout's counts while the run goes on; `freeze` gives its summary."""

    sendout: str
    campaign: str
    planned: int = 0
    sent: int = 0
    accepted: int = 0
    rejected: int = 0
    partial: int = 0
    unknown: int = 0
    partial_accepted: int = 0
    partial_rejected: int = 0
    inferred: int = 0
    failed: int = 0
    codes: Counter[str] = field(default_factory=Counter)
    failed_codes: Counter[str] = field(default_factory=Counter)
    not_sent_reasons: Counter[str] = field(default_factory=Counter)
    sendout_ids: list[str] = field(default_factory=list)

    def freeze(self) -> SendoutSummary:
        done = self.accepted + self.rejected + self.partial + self.unknown
        return SendoutSummary(
            self.sendout, self.campaign, self.planned, self.sent, self.accepted,
            self.rejected, self.partial, self.unknown, max(self.planned - done, 0),
            tuple(sorted(self.codes.items())), tuple(self.sendout_ids),
            (self.partial_accepted, self.partial_rejected), self.inferred, self.failed,
            tuple(sorted(self.failed_codes.items())),
            tuple(sorted(self.not_sent_reasons.items())))


__all__ = [
    "ApplyResult",
    "SendoutSummary",
    "Tally",
]
