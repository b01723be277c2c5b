"""What an apply prints when it is done, and the exit code it returns: from the engine's
:class:`~connectly_declare.apply.results.ApplyResult` alone (no phone numbers in it); and
what it says when the plan sends nothing."""

from __future__ import annotations

from connectly_declare import words
from connectly_declare.apply.results import ApplyResult
from connectly_declare.ledger.verdicts import INFERRED
from connectly_declare.plan.model import Plan

EXIT_INTERRUPTED = 130  # SIGINT / SIGTERM, as shells report a death by SIGINT


def _reasons(pairs: tuple[tuple[str, int], ...]) -> str:
    return "; ".join(f"{n} × {why}" for why, n in pairs)


def summary_lines(result: ApplyResult) -> list[str]:
    """The per-sendout summary printed after an apply (no phone numbers in it). Every
    rejection is shown with the server's own code and message."""
    lines = []
    for s in result.sendouts:
        accepted = f"accepted {s.accepted:,}" + (
            f" ({s.inferred:,} {INFERRED}: their earlier attempt's outcome was unknown and "
            "the server rejected the re-send as a repeat)" if s.inferred else "")
        parts = [f"sent {s.sent:,}", accepted]
        if s.failed:
            parts.append(f"failed {s.failed:,} ({_reasons(s.failed_codes)})")
        failed = dict(s.failed_codes)
        retried = tuple((why, n - failed.get(why, 0))
                        for why, n in s.rejected_codes if n > failed.get(why, 0))
        if s.rejected - s.failed:
            parts.append(f"rejected {s.rejected - s.failed:,} ({_reasons(retried)})")
        if s.partial:
            a, r = s.partial_counts
            parts.append(f"partial {s.partial:,} ({a:,} accepted, {r:,} rejected, which ones the "
                         "API does not say)")
        if s.unknown:
            parts.append(f"unknown {s.unknown:,}")
        if s.not_sent:
            why = f" ({_reasons(s.not_sent_reasons)})" if s.not_sent_reasons else ""
            parts.append(f"not sent {s.not_sent:,}{why}")
        lines.append(f"  {s.sendout} ({s.campaign}): " + ", ".join(parts))
        if s.sendout_ids:
            lines.append("    sendoutIds: " + ", ".join(s.sendout_ids))
    totals = (f"{result.total('accepted'):,} accepted of {result.total('planned'):,} planned "
              f"in {result.requests:,} request{'' if result.requests == 1 else 's'} "
              f"({result.throttled:,} rate-limited and retried)")
    reached = result.total("sent") > 0 or result.total("accepted") > 0
    head = "Apply complete" if result.ok else (
        "Apply interrupted" if result.interrupted else
        "Apply failed: no request reached the server" if not reached and result.total(
            "not_sent") else "Apply finished with problems")
    lines.insert(0, f"{head}: {totals}.")
    if result.stopped_by:
        lines.append(f"Stopped early: {result.stopped_by}.")
    if result.total("unknown"):
        lines.append("Unknown outcomes: the server may have accepted them. The next plan "
                     "retries them under allow_one, one entry per request (the server "
                     "rejects repeats), and shows them as blocked under allow_multiple "
                     "(`connectly-declare state resolve`).")
    if result.total("failed"):
        lines.append("Failed entries were refused for good (see the server's words above): "
                     "the next plan shows them as `failed` and does not send them again "
                     "until their content changes, `connectly-declare apply --retry-failed "
                     "[SENDOUT]` asks for it, or `connectly-declare state resolve` settles it.")
    if result.total("not_sent") or result.total("rejected") > result.total("failed"):
        lines.append("Entries not sent, or rejected for a passing reason, are planned again "
                     "by the next `connectly-declare plan`.")
    return lines


def failure_lines(result: ApplyResult) -> list[str]:
    """One line per sendout with entries refused for good, with the server's words (for
    GitHub annotations)."""
    return [f"sendout {s.sendout}: failed {s.failed} ({_reasons(s.failed_codes)})"
            for s in result.sendouts if s.failed]


def exit_code(result: ApplyResult) -> int:
    if result.interrupted:
        return EXIT_INTERRUPTED
    return 0 if result.ok else 1


def nothing_to_send(plan: Plan) -> str:
    """Why a plan sends nothing, from its counts: "the ledger already holds every planned
    entry" only when that is so (drift and blocked entries are not in it as planned)."""
    noop, drift, blocked, waiting, failed, held, capped = (
        plan.total(a) for a in ("noop", "drift", "blocked", "waiting", "failed", "held",
                                "capped"))
    if not (drift or blocked or waiting or failed or held or capped):
        return ("Nothing to send: the ledger already holds every planned entry." if noop
                else "Nothing to send: the plan holds no entries.")
    reasons = []
    if noop:
        reasons.append(f"{words.count(noop, 'entry', 'entries')} already in the ledger")
    if drift:
        reasons.append(f"{words.count(drift, 'entry', 'entries')} changed since sent (drift: "
                       "never resent, see the notes above)")
    if failed:
        reasons.append(f"{words.count(failed, 'entry', 'entries')} failed for good (see the "
                       "notes above; `--retry-failed` sends them again)")
    if blocked:
        reasons.append(f"{words.count(blocked, 'entry', 'entries')} blocked (see the notes above)")
    if waiting:
        reasons.append(f"{words.count(waiting, 'entry waits', 'entries wait')} for a rollout gate "
                       "(see the waves above)")
    if held:
        reasons.append(f"{words.count(held, 'entry', 'entries')} held for the recipients' "
                       "quiet hours (a later plan outside them sends them)")
    if capped:
        reasons.append(f"{words.count(capped, 'entry', 'entries')} capped by a frequency cap "
                       "(a later plan sends them once the window has moved)")
    return "Nothing to send now: " + "; ".join(reasons) + "."


__all__ = ["EXIT_INTERRUPTED", "exit_code", "failure_lines", "nothing_to_send",
           "summary_lines"]
