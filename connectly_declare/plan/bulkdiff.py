"""A chunk of one sendout's entries diffed at once (`bulk_diff`, called by
`SendoutDiff.consume`): map() over C getters instead of the per-entry loop, when that
provably plans what the loop would."""

from __future__ import annotations

from collections import Counter
from itertools import compress, repeat
from operator import attrgetter, eq, is_, methodcaller
from typing import TYPE_CHECKING

from connectly_declare.entry import E164, Entry
from connectly_declare.ledger.keyview import ABSENT, CHANGED, OTHER, SAME
from connectly_declare.plan.counted import CountedSends
from connectly_declare.plan.model import RESEND_REASON, Action, new_planned

if TYPE_CHECKING:
    from connectly_declare.plan.sendout_diff import SendoutDiff

SHAPE = attrgetter("sendout", "campaign", "version")  # these three: SendoutDiff's too
MULTIPLE = attrgetter("allow_multiple")
CLIENT = attrgetter("client")
_VARIABLES = attrgetter("variables")
_WHEN = attrgetter("scheduled_at")
_KEYS = methodcaller("keys")
_SENDING = frozenset((ABSENT, CHANGED))  # verdicts whose entry is sent (allow_multiple)
_SENDING_ONE = frozenset((ABSENT,))  # ... under allow_one (CHANGED is drift)
_REASON_OF = {ABSENT: "", CHANGED: RESEND_REASON}  # of an entry sent, by verdict


def bulk_diff(diff: SendoutDiff, chunk: list[Entry], verdicts: list[int]) -> bool:
    """Diff a chunk at once, with map() over C getters instead of the per-entry loop,
    when that provably gives what the loop would: every entry of this sendout (the
    loop's mismatch test), verdicts ABSENT, SAME or CHANGED only (no KeyState to
    read), the samples of each action it meets already full (so none is taken here),
    and every entry to send passing the validity check (schedules `check` already
    found valid). Otherwise False, having changed nothing: the loop diffs the chunk."""
    if OTHER in verdicts:
        return False
    spec, want, samples = diff.spec, diff.options.samples, diff.samples
    multiple = spec.allow_multiple
    changed: Action = "resend" if multiple else "drift"
    action_of: dict[int, Action] = {ABSENT: "send", SAME: "noop", CHANGED: changed}
    if any(len(samples[action_of[v]]) < want for v in set(verdicts)):
        return False
    shape = (spec.name, spec.campaign, spec.version)
    if not all(map(eq, map(SHAPE, chunk), repeat(shape))) \
            or not all(map(is_, map(MULTIPLE, chunk), repeat(multiple))):
        return False
    sending = _SENDING if multiple else _SENDING_ONE
    selected = list(map(sending.__contains__, verdicts))
    sends = list(compress(chunk, selected))
    clients = list(map(CLIENT, sends))
    if not all(map(E164.fullmatch, clients)):
        return False
    required = diff._required
    if required is not None and not all(
            map(eq, map(_KEYS, map(_VARIABLES, sends)), repeat(required))):
        return False
    schedules = Counter(map(_WHEN, sends))
    valid = diff._valid_when
    if any(when is not None and when not in valid for when in schedules):
        return False
    # the loop's effects, in bulk
    counts = diff.counts
    same, different = verdicts.count(SAME), verdicts.count(CHANGED)
    counts["send"] += verdicts.count(ABSENT)
    counts["noop"] += same
    counts[changed] += different
    diff.matched_own += same + different
    if not diff.options.allow_past_schedule:
        for when, count in schedules.items():
            if when is not None and diff._in_past(when):
                diff.past[when] = diff.past.get(when, 0) + count
    if sends:
        to_send = diff.to_send
        if isinstance(to_send, CountedSends):  # a plan to show only: counted, none built
            to_send.add(len(sends))
        else:
            chosen = list(compress(verdicts, selected))
            to_send.extend(list(map(new_planned, zip(
                map(action_of.__getitem__, chosen), sends,
                map(_REASON_OF.__getitem__, chosen), strict=True))))
        diff._claim(clients)
    return True


__all__ = ["CLIENT", "MULTIPLE", "SHAPE", "bulk_diff"]
