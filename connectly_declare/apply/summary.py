"""What an apply prints when it is done, and the exit code it returns: from the engine's
:class:`~connectly_declare.apply.engine.ApplyResult` alone (no phone numbers in it); and
what it says when the plan sends nothing."""

from __future__ import annotations

from connectly_declare import words
from connectly_declare.apply.engine import ApplyResult
from connectly_declare.plan.make import Plan

EXIT_INTERRUPTED = 130  # SIGINT / SIGTERM, as shells report a death by SIGINT


def summary_lines(result: ApplyResult) -> list[str]:
    """The per-sendout summary printed after an apply (no phone numbers in it)."""
    lines = []
    for s in result.sendouts:
        parts = [f"sent {s.sent:,}", f"accepted {s.accepted:,}"]
        if s.rejected:
            codes = ", ".join(f"{code} {n:,}" for code, n in s.rejected_codes)
            parts.append(f"rejected {s.rejected:,} ({codes})" if codes
                         else f"rejected {s.rejected:,}")
        if s.partial:
            a, r = s.partial_counts
            parts.append(f"partial {s.partial:,} ({a:,} accepted, {r:,} rejected, which ones the "
                         "API does not say)")
        if s.unknown:
            parts.append(f"unknown {s.unknown:,}")
        if s.not_sent:
            parts.append(f"not sent {s.not_sent:,}")
        lines.append(f"  {s.sendout} ({s.campaign}): " + ", ".join(parts))
        if s.sendout_ids:
            lines.append("    sendoutIds: " + ", ".join(s.sendout_ids))
    totals = (f"{result.total('accepted'):,} accepted of {result.total('planned'):,} planned "
              f"in {result.requests:,} request{'' if result.requests == 1 else 's'} "
              f"({result.throttled:,} rate-limited and retried)")
    head = "Apply complete" if result.ok else (
        "Apply interrupted" if result.interrupted else "Apply finished with problems")
    lines.insert(0, f"{head}: {totals}.")
    if result.stopped_by:
        lines.append(f"Stopped early: {result.stopped_by}.")
    if result.total("unknown"):
        lines.append("Unknown outcomes: the server may have accepted them. The next plan "
                     "retries them under allow_one (the server rejects repeats) and shows "
                     "them as blocked under allow_multiple (`connectly-declare state "
                     "resolve`).")
    if result.total("not_sent") or result.total("rejected"):
        lines.append("Entries rejected or not sent are planned again by the next "
                     "`connectly-declare plan`.")
    return lines


def exit_code(result: ApplyResult) -> int:
    if result.interrupted:
        return EXIT_INTERRUPTED
    return 0 if result.ok else 1


def nothing_to_send(plan: Plan) -> str:
    """Why a plan sends nothing, from its counts: "the ledger already holds every planned
    entry" only when that is so (drift and blocked entries are not in it as planned)."""
    noop, drift, blocked, waiting = (plan.total(a) for a in ("noop", "drift", "blocked",
                                                             "waiting"))
    if not (drift or blocked or waiting):
        return ("Nothing to send: the ledger already holds every planned entry." if noop
                else "Nothing to send: the plan holds no entries.")
    reasons = []
    if noop:
        reasons.append(f"{words.count(noop, 'entry', 'entries')} already in the ledger")
    if drift:
        reasons.append(f"{words.count(drift, 'entry', 'entries')} changed since sent (drift: "
                       "never resent, see the notes above)")
    if blocked:
        reasons.append(f"{words.count(blocked, 'entry', 'entries')} blocked (see the notes above)")
    if waiting:
        reasons.append(f"{words.count(waiting, 'entry waits', 'entries wait')} for a rollout gate "
                       "(see the waves above)")
    return "Nothing to send now: " + "; ".join(reasons) + "."


__all__ = ["EXIT_INTERRUPTED", "exit_code", "nothing_to_send", "summary_lines"]
