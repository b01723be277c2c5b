"""Mapping what the API said about one request to the ledger's outcome for its batch.

Each request holds one group (see `batching`), so a 200 answer must carry exactly one
result; any other number is recorded `unknown` with a note, never guessed.

For one group of n entries with `acceptedCount` a and `rejectedCount` r:

| answer                                       | outcome (summary verdict)                   |
| -------------------------------------------- | ------------------------------------------- |
| a == n                                       | accepted                                    |
| a repeat of an in-doubt entry (below)        | accepted, "inferred: already received"      |
| a == 0, rejected (r == n or a group error)   | rejected with the server's error (failed)   |
| a > 0 and r > 0, a + r == n                  | partial, with the counts                    |
| counts that do not add up to n               | unknown (never guess)                       |
| 400 / 404 / 409 / other 4xx                  | rejected with the body's error (failed)     |
| 401, 429s outlasted                          | rejected with the body's error (retried)    |
| never reached the server                     | rejected, CLIENT_NOT_SENT (not sent, retried) |
| 5xx, timeout, dropped connection, bad 200    | unknown (retried under allow_one)           |

"failed" and "retried" are `ledger.verdicts.is_permanent` of the recorded error: the plan
shows the first as `failed` (not sent again until the content changes, `--retry-failed`
or `state resolve`) and the second as `retry`.

The in-doubt rule. Under `allow_one` the server rejects an entry for a client that already
received the campaign, and delivers nothing; it reports that repeat either without an
error or, as the vendor's page shows, with ERROR_CODE_CAMPAIGN_ENTRY_INVALID on the group
(README.md, the outcome table under "Applying"). Entries whose earlier attempt ended
unknown are re-sent one per request (`batching`), and every entry was checked locally
before it was planned (`plan.validity`: E.164 client, the campaign version's exact
variable names, the schedule's format), so when such a one-entry request is rejected as a
repeat or as invalid, the only thing left that the server can mean is *received before*:
it is recorded `accepted`, with the visible reason "inferred: already received". Calling
it rejected would make the next plan re-send forever and report people as missed who
were reached. A rejection that is about the campaign (not found, not finalized) is not a
repeat, and keeps its error. An in-doubt batch of several entries whose rejections carry
an error keeps the ordinary mapping (partial/rejected): the API does not say which entry
was which. A fresh (not in doubt) batch's error-free rejections are left `rejected` (code
ALREADY_RECEIVED): this ledger never sent them, so it does not claim it did.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from connectly_declare.apply.batching import Batch
from connectly_declare.apply.client import SendResult
from connectly_declare.ledger.base import ALREADY_RECEIVED, Outcome, OutcomeStatus
from connectly_declare.ledger.fold import error_text
from connectly_declare.ledger.verdicts import INFERRED, NOT_SENT, is_permanent

ENTRY_INVALID = "ERROR_CODE_CAMPAIGN_ENTRY_INVALID"
# What the summary calls each outcome: `failed` and `rejected` are both recorded
# `rejected`; `inferred` is recorded `accepted` with its reason.
Verdict = Literal["accepted", "inferred", "failed", "rejected", "not_sent", "partial",
                  "unknown"]
WRONG_GROUPS = "CLIENT_UNEXPECTED_GROUPS"
COUNTS_MISMATCH = "CLIENT_COUNTS_MISMATCH"


@dataclass(frozen=True, slots=True)
class Mapped:
    """An outcome record plus what the summary needs that the record does not hold."""

    outcome: Outcome
    reason: str | None  # the server's words for the summary: "CODE: message"
    verdict: Verdict = "accepted"

    @property
    def error_code(self) -> str | None:
        """The error object's code alone, if it has one."""
        code = (self.outcome.error or {}).get("code")
        return str(code) if code else None


def reason_of(error: dict[str, Any] | None) -> str | None:
    """`CODE: message` of an error object (either alone when the other is missing)."""
    if not error:
        return None
    code, message = error.get("code"), error.get("message")
    parts = [str(p) for p in (code, message) if p]
    return ": ".join(parts) if parts else "error"


def _verdict(status: OutcomeStatus, error: dict[str, Any] | None,
             http_status: int | None) -> Verdict:
    if status != "rejected":
        return status
    code = (error or {}).get("code")
    if code == NOT_SENT:
        return "not_sent"
    return "failed" if is_permanent(error_text(error, http_status)) else "rejected"


def map_result(batch: Batch, result: SendResult, at: str) -> Mapped:
    """The ledger outcome of `batch` after `result` (see the module docstring)."""
    def out(status: OutcomeStatus, accepted: int = 0, rejected: int = 0,
            sendout_id: str | None = None, error: dict[str, Any] | None = None) -> Mapped:
        return Mapped(Outcome(batch.batch_id, at, status, accepted, rejected, sendout_id,
                              result.http_status, error), reason_of(error),
                      _verdict(status, error, result.http_status))

    n = len(batch.entries)
    if result.kind == "unknown":
        return out("unknown", error=result.error)
    if result.kind == "not_sent":
        message = (result.error or {}).get("message", "the request was not sent")
        error = {"code": NOT_SENT, "message": str(message)}
        if batch.in_doubt:
            # This attempt never left; the earlier one's outcome is still unknown, and the
            # key must stay in doubt (a later re-send is read by the in-doubt rule).
            return Mapped(out("unknown", error=error).outcome, reason_of(error), "not_sent")
        return out("rejected", 0, n, error=error)
    if result.kind in ("refused", "unauthorized"):
        error = result.error or {"message": "refused"}
        if batch.in_doubt and not is_permanent(error_text(error, result.http_status)):
            return out("unknown", error=error)  # 401, 429: says nothing about delivery
        return out("rejected", 0, n, error=error)

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
    if batch.in_doubt and not batch.allow_multiple and (
            err is None or (n == 1 and err.get("code") == ENTRY_INVALID)):
        said = f" ({reason_of(err)})" if err else ""
        mapped = out("accepted", a, r, group.sendout_id, {
            "message": f"{INFERRED}: the earlier attempt's outcome was unknown and the "
                       f"server rejects the re-sent, locally valid entry as a repeat{said}"})
        return Mapped(mapped.outcome, mapped.reason, "inferred")
    if err is None and not batch.allow_multiple:
        if a == 0:
            return out("rejected", 0, r, group.sendout_id, {
                "code": ALREADY_RECEIVED,
                "message": "the server says these clients already received this campaign"})
    if a == 0:
        return out("rejected", 0, n, group.sendout_id, err or {"message": "rejected"})
    return out("partial", a, r, group.sendout_id, err)


__all__ = ["ALREADY_RECEIVED", "COUNTS_MISMATCH", "ENTRY_INVALID", "NOT_SENT", "WRONG_GROUPS",
           "Mapped", "Verdict", "map_result", "reason_of"]
