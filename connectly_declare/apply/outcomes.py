"""Mapping what the API said about one request to the ledger's outcome for its batch.

Each request holds one group (see `batching`), so a 200 answer must carry exactly one
result; any other number is recorded `unknown` with a note, never guessed.

For one group of n entries with `acceptedCount` a and `rejectedCount` r:

| answer                                       | outcome                                    |
| -------------------------------------------- | ------------------------------------------ |
| a == n                                       | accepted                                   |
| a == 0, rejected (r == n or a group error)   | rejected, with the error                   |
| a > 0 and r > 0, a + r == n                  | partial, with the counts                   |
| counts that do not add up to n               | unknown (never guess)                      |
| 400 / 404 / 409 / other 4xx, 401             | rejected (refused whole; nothing delivered) |
| never reached the server, 429s outlasted     | rejected, code CLIENT_NOT_SENT (retried next) |
| 5xx, timeout, dropped connection, bad 200    | unknown                                    |

The in-doubt rule. Under `allow_one` the server rejects, without an error, an entry for a
client that already received the campaign, and delivers nothing. When a batch re-sends
entries whose earlier attempt ended unknown, such error-free rejections mean the earlier
attempt *did* deliver them, so they are recorded `accepted`: calling them rejected would
make the next plan re-send forever and report people as missed who were reached. An invalid
entry is different: the server flags it with an error (ERROR_CODE_CAMPAIGN_ENTRY_INVALID),
and validity does not change between attempts, so an in-doubt group whose rejections come
with an error keeps the ordinary mapping (partial/rejected): the API does not say which of
its entries were duplicates and which invalid, and we do not pretend to know.
A fresh (not in doubt) batch's error-free rejections are left `rejected` (code
ALREADY_RECEIVED): this ledger never sent them, so it does not claim it did.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connectly_declare.apply.batching import Batch
from connectly_declare.apply.client import SendResult
from connectly_declare.ledger.base import ALREADY_RECEIVED, Outcome, OutcomeStatus

NOT_SENT = "CLIENT_NOT_SENT"
WRONG_GROUPS = "CLIENT_UNEXPECTED_GROUPS"
COUNTS_MISMATCH = "CLIENT_COUNTS_MISMATCH"


@dataclass(frozen=True, slots=True)
class Mapped:
    """An outcome record plus what the summary needs that the record does not hold."""

    outcome: Outcome
    error_code: str | None  # for the summary's "rejected (by code)"


def _code(error: dict[str, Any] | None) -> str | None:
    if not error:
        return None
    code = error.get("code")
    return str(code) if code else str(error.get("message") or "error")


def map_result(batch: Batch, result: SendResult, at: str) -> Mapped:
    """The ledger outcome of `batch` after `result` (see the module docstring)."""
    def out(status: OutcomeStatus, accepted: int = 0, rejected: int = 0,
            sendout_id: str | None = None, error: dict[str, Any] | None = None) -> Mapped:
        return Mapped(Outcome(batch.batch_id, at, status, accepted, rejected, sendout_id,
                              result.http_status, error), _code(error))

    n = len(batch.entries)
    if result.kind == "unknown":
        return out("unknown", error=result.error)
    if result.kind == "not_sent":
        message = (result.error or {}).get("message", "the request was not sent")
        return out("rejected", 0, n, error={"code": NOT_SENT, "message": str(message)})
    if result.kind in ("refused", "unauthorized"):
        return out("rejected", 0, n, error=result.error or {"message": "refused"})

    if len(result.groups) != 1:
        return out("unknown", error={
            "code": WRONG_GROUPS,
            "message": f"the answer has {len(result.groups)} results for a request of one "
                       "group; the outcome cannot be told"})
    group = result.groups[0]
    a, r, err = group.accepted_count, group.rejected_count, group.error
    if a + r != n and not (a == 0 and err is not None):
        return out("unknown", a, r, group.sendout_id, {
            "code": COUNTS_MISMATCH,
            "message": f"the answer counts {a} accepted + {r} rejected for {n} entries sent"})
    if a == n:
        return out("accepted", a, 0, group.sendout_id)
    if err is None and not batch.allow_multiple:
        if batch.in_doubt:
            return out("accepted", a, r, group.sendout_id, {
                "code": ALREADY_RECEIVED,
                "message": f"{r} already received from the earlier attempt whose outcome "
                           "was unknown"})
        if a == 0:
            return out("rejected", 0, r, group.sendout_id, {
                "code": ALREADY_RECEIVED,
                "message": "the server says these clients already received this campaign"})
    if a == 0:
        return out("rejected", 0, n, group.sendout_id, err or {"message": "rejected"})
    return out("partial", a, r, group.sendout_id, err)


__all__ = ["ALREADY_RECEIVED", "COUNTS_MISMATCH", "NOT_SENT", "WRONG_GROUPS", "Mapped",
           "map_result"]
