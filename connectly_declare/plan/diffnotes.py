"""The words of one sendout's diff (`SendoutDiff`): the reason shown with a planned
entry, the sendout's notes, and `noun` for counts of clients or entries."""

from __future__ import annotations

from typing import TYPE_CHECKING

from connectly_declare import words
from connectly_declare.ledger.base import KeyState
from connectly_declare.ledger.verdicts import INFERRED
from connectly_declare.plan.model import DRIFT_REASON, RESEND_REASON, Action

if TYPE_CHECKING:
    from connectly_declare.plan.sendout_diff import SendoutDiff

FAILED_HINT = ("not sent again until its content changes, `connectly-declare apply "
               "--retry-failed {name}` asks for it, or `connectly-declare state resolve` "
               "settles it")


def noun(count: int, one: str = "client", many: str = "clients") -> str:
    return words.count(count, one, many)


def entry_reason(diff: SendoutDiff, action: Action, known: KeyState | None) -> str:
    if known is None:
        return ""
    recovery = diff.recovery.reason(action, known)
    if recovery:
        return recovery
    other = known.sendout if known.sendout != diff.spec.name else ""
    if action == "noop" and known.status == "accepted" and known.error:
        return known.error  # "inferred: already received ..."
    if action == "failed":
        return (f"failed: {known.error}; "
                + FAILED_HINT.format(name=diff.spec.name))
    if action in ("noop", "drift") and other:
        return f"already received via sendout {other}"
    if action == "drift":
        return DRIFT_REASON
    if action == "retry":
        why = "rejected before" if known.status == "rejected" else f"outcome {known.status}"
        return why + (f" ({known.error})" if known.error else "") + (
            f" via sendout {other}" if other else "")
    if action == "blocked":
        return (f"outcome {known.status} under allow_multiple: resolve it with "
                "`connectly-declare state resolve`")
    if action == "resend":
        return RESEND_REASON
    return ""


def sendout_notes(diff: SendoutDiff) -> list[str]:
    spec, counts = diff.spec, diff.counts
    notes = list(diff.rollout_notes)
    for other, count in sorted(diff.via_other.items()):
        notes.append(f"{noun(count)} already received {spec.campaign!r} via sendout "
                     f"{other}: nothing is sent to them again")
    if counts["drift"]:
        notes.append(
            f"drift: {noun(counts['drift'])} received {spec.campaign!r} with other "
            "content (version, variables, schedule or round changed); under allow_one the "
            "server would reject a resend, so nothing is sent to them")
    if diff.inferred:
        notes.append(
            f"{noun(diff.inferred)} counted as received by inference ({INFERRED}): an "
            "earlier attempt's outcome was unknown and the server rejected the one-entry "
            "re-send of a locally valid entry as a repeat")
    if counts["failed"]:
        reasons = diff.failed_reasons.most_common()
        shown = "; ".join(f"{n:,} × {why}" for why, n in reasons[:5])
        more = f"; and {len(reasons) - 5} other reasons" if len(reasons) > 5 else ""
        notes.append(
            f"failed: {noun(counts['failed'])} refused for good ({shown}{more}): "
            + FAILED_HINT.format(name=spec.name))
    if counts["blocked"]:
        notes.append(
            f"blocked: {noun(counts['blocked'])} have an unknown outcome under "
            "allow_multiple and are not sent again until resolved: check the Connectly "
            "inbox, then run `connectly-declare state resolve CLIENT --campaign "
            f"{spec.campaign!r} --as accepted|unsent`, or for many at once "
            f"`connectly-declare state resolve --sendout {spec.name} --status in-doubt "
            "--clients FILE --as accepted --reason WHY --dry-run`")
    notes.extend(diff.recovery.notes(spec.name))
    if counts["held"]:
        notes.append(
            f"held: {noun(counts['held'])} would be messaged inside their quiet hours and "
            "are held back (--quiet-hours=hold); a later plan outside them sends them")
    if counts["capped"]:
        notes.append(
            f"capped: {noun(counts['capped'])} would pass a frequency cap and are not sent; "
            "a later plan sends them once the cap's window has moved")
    if counts["orphan"]:
        notes.append(
            f"orphan: {noun(counts['orphan'])} in the ledger for this sendout are no "
            "longer in its audience (nothing is done: a message cannot be unsent)")
    return notes


__all__ = ["FAILED_HINT", "entry_reason", "noun", "sendout_notes"]
