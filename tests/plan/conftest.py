"""Helpers for the plan tests: Entries, specs and ledgers built directly."""

from __future__ import annotations

from datetime import UTC, datetime

from connectly_declare.entry import Entry, fingerprint
from connectly_declare.ledger.base import Header, Intent, IntentEntry, LedgerState, Outcome, Record
from connectly_declare.ledger.fold import fold
from connectly_declare.plan.model import DesiredSendout, SendoutSpec

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
AT = "2026-11-20T10:00:00+00:00"


def entry(client: str, *, sendout: str = "welcome", campaign: str = "Welcome",
          version: str | None = "v1", name: str = "Ana", round_: int = 1,
          allow_multiple: bool = False, scheduled_at: str | None = None) -> Entry:
    variables = {"name": name}
    return Entry(sendout=sendout, campaign=campaign, version=version, client=client,
                 variables=variables, scheduled_at=scheduled_at, round=round_,
                 allow_multiple=allow_multiple,
                 fingerprint=fingerprint(version, variables, scheduled_at, round_),
                 source="data/people.csv:2")


def spec(name: str = "welcome", *, campaign: str = "Welcome", allow_multiple: bool = False,
         **kw: object) -> SendoutSpec:
    options = {"if_duplicate_check_unspecified":
               "allow_multiple" if allow_multiple else "allow_one"}
    return SendoutSpec(name=name, campaign=campaign, version="v1", options=options,
                       allow_multiple=allow_multiple, **kw)  # type: ignore[arg-type]


def desired(s: SendoutSpec, entries: list[Entry]) -> DesiredSendout:
    return DesiredSendout(s, entries, {"recipients": len(entries)})


def history(*batches: tuple[list[Entry], str]) -> LedgerState:
    """A folded ledger where each (entries, status) was one intent and its outcome."""
    records: list[Record] = [Header(lineage="L1", created_at=AT, business_id="biz")]
    for n, (entries, status) in enumerate(batches):
        first = entries[0]
        records.append(Intent(
            batch_id=f"b{n}", at=AT, sendout=first.sendout, campaign=first.campaign,
            version=first.version, scope=first.scope, options={},
            entries=tuple(IntentEntry(e.client, e.fingerprint) for e in entries)))
        if status != "none":
            records.append(Outcome(batch_id=f"b{n}", at=AT, status=status,  # type: ignore[arg-type]
                                   sendout_id="sid-1"))
    return fold(records)
