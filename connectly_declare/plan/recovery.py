"""Recovering in-doubt `allow_multiple` keys where it is provably safe (`--recover-in-doubt`).

A key is *blocked* when its last attempt under `allow_multiple` ended unknown (or partial):
the server may have delivered it, and re-sending under `allow_multiple` could deliver it
twice. But when the ledger holds **no** possible delivery of that campaign to that client
other than this lost attempt (no accepted key, no earlier accepted content, no other key in
doubt, no rejection saying "received already", in any sendout), re-sending it once under
`allow_one` is safe: the server's duplicate check is per campaign and client, so it rejects
the entry if the lost attempt delivered and delivers it if not. Apply sends such an entry
alone in its request (the answer speaks about that one person) and reads a rejection as a
repeat exactly as for `allow_one` in-doubt re-sends (`apply.outcomes`): "inferred: already
received".

Two more conditions keep the inference exact:

- Nothing else in the same plan sends that campaign to that client (another sendout's
  `send`, `resend` or `retry` could be delivered first, and the recovery would then be
  rejected for the wrong reason). Such keys stay `blocked` for this run.
- A recovery the server refuses for any other reason (campaign not found, 401...) says
  nothing about the lost attempt: the ledger keeps the key in doubt (`ledger.fold`).

Without the option, the plan still counts how many blocked keys could be recovered.

Counting the possible deliveries: over a compact ledger (a KeyIndex, what a large ledger
folds into) each in-doubt key looks up its own campaign and client, one code per (campaign,
scope) pair (:func:`ledger.keyview.states_of_campaign_client`), so ten million keys are
never walked nor made into strings; over a plain dict (a small ledger) the first in-doubt
key builds a Counter of every key's campaign and client in one pass.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING

from connectly_declare.entry import KEY_SEPARATOR
from connectly_declare.ledger import keyview
from connectly_declare.ledger.base import ALREADY_RECEIVED, KeyState, LedgerState
from connectly_declare.plan.model import Action, PlannedEntry
from connectly_declare.plan.spool import Spool

if TYPE_CHECKING:
    from connectly_declare.plan.sendout_diff import SendoutDiff

IN_DOUBT = ("unknown", "partial")
# a rejection that says, or may say, the client has the campaign already (the vendor's
# page reports a repeat under allow_one with ENTRY_INVALID)
REPEAT_CODES = (ALREADY_RECEIVED, "ERROR_CODE_CAMPAIGN_ENTRY_INVALID")
RECOVER_REASON = ("outcome unknown under allow_multiple, and no other delivery of this "
                  "campaign to this client in the ledger: sent once under allow_one (the "
                  "server rejects it if the lost attempt delivered)")
RECOVERABLE_REASON = ("outcome unknown under allow_multiple; recoverable: no other "
                      "delivery in the ledger (`apply --recover-in-doubt`), or resolve it "
                      "with `connectly-declare state resolve`")
SAME_PLAN_REASON = ("outcome unknown under allow_multiple; not recovered in this run: "
                    "another sendout of this plan sends the campaign to this client")


def _maybe_delivered(state: KeyState) -> bool:
    if state.status != "rejected" or state.accepted_fingerprint is not None:
        return True
    return (state.error or "").startswith(REPEAT_CODES)


class Recovery:
    """Decides, per blocked key, `recover` or `blocked`; shared by a plan's sendouts."""

    def __init__(self, state: LedgerState, enabled: bool) -> None:
        self.keys = state.keys
        self._compact = keyview.is_compact(state.keys)  # look up per key, never walk all
        self.enabled = enabled
        self.recoverable: Counter[str] = Counter()  # sendout -> recoverable blocked keys
        self.held_back: Counter[str] = Counter()  # sendout -> recoverable, not in this run
        # campaign+client -> keys maybe delivered (a plain dict only)
        self._possible: Counter[str] | None = None

    def _index(self) -> Counter[str]:
        if self._possible is None:
            possible: Counter[str] = Counter()
            for key, state in self.keys.items():
                if _maybe_delivered(state):
                    possible[key.rpartition(KEY_SEPARATOR)[0]] += 1
            self._possible = possible
        return self._possible

    def possible(self, known: KeyState) -> int:
        """How many keys of the ledger may have delivered the campaign of `known` to its
        client, whatever the scope (`known` itself among them when it is in doubt)."""
        prefix = known.key.rpartition(KEY_SEPARATOR)[0]
        if not self._compact:
            return self._index()[prefix]
        campaign, _, client = prefix.partition(KEY_SEPARATOR)
        return sum(map(_maybe_delivered,
                       keyview.states_of_campaign_client(self.keys, campaign, client)))

    def safe(self, known: KeyState) -> bool:
        """Whether this in-doubt key's lost attempt is the only possible delivery of its
        campaign to its client in the whole ledger (the key itself is in doubt, so it
        counts as one)."""
        if known.status not in IN_DOUBT or known.accepted_fingerprint is not None:
            return False
        return self.possible(known) == 1

    def action(self, known: KeyState, sendout: str) -> Action:
        """`recover` or `blocked` for an in-doubt key of an allow_multiple sendout."""
        if not self.safe(known):
            return "blocked"
        if self.enabled:
            return "recover"
        self.recoverable[sendout] += 1
        return "blocked"

    def reason(self, action: Action, known: KeyState) -> str | None:
        if action == "recover":
            return RECOVER_REASON
        if action == "blocked" and not self.enabled and self.safe(known):
            return RECOVERABLE_REASON
        return None

    def notes(self, sendout: str) -> list[str]:
        notes = []
        if self.recoverable[sendout]:
            count = self.recoverable[sendout]
            who = "client has" if count == 1 else "clients have"
            notes.append(
                f"recoverable: {count:,} of the blocked {who} "
                "no other delivery of this campaign in the ledger, so re-sending once under "
                "allow_one is safe (the server rejects a repeat): "
                "`connectly-declare apply --recover-in-doubt`")
        if self.held_back[sendout]:
            notes.append(
                f"recover: {self.held_back[sendout]:,} recoverable clients stay blocked in this "
                "run because another sendout of this plan sends them the campaign; plan "
                "again after it")
        return notes

    def settle(self, planners: Iterable[SendoutDiff]) -> None:
        """Hold back recoveries of a client that another sendout of the same campaign sends
        in this plan (see the module docstring). Call before the planners finish."""
        planners = list(planners)
        if not any(p.counts["recover"] for p in planners):
            return
        sending: dict[str, set[str]] = {}
        for planner in planners:
            clients = sending.setdefault(planner.spec.campaign, set())
            clients.update(p.entry.client for p in planner.to_send if p.action != "recover")
        for planner in planners:
            if not planner.counts["recover"]:
                continue
            others = sending[planner.spec.campaign]
            kept = Spool()
            for planned in planner.to_send:
                if planned.action == "recover" and planned.entry.client in others:
                    self._hold_back(planner, planned)
                else:
                    kept.append(planned)
            planner.to_send = kept

    def _hold_back(self, planner: SendoutDiff, planned: PlannedEntry) -> None:
        planner.counts["recover"] -= 1
        planner.counts["blocked"] += 1
        self.held_back[planner.spec.name] += 1
        samples = planner.samples
        if planned in samples["recover"]:
            samples["recover"].remove(planned)
        if len(samples["blocked"]) < planner.options.samples:
            samples["blocked"].append(planned._replace(action="blocked",
                                                       reason=SAME_PLAN_REASON))


__all__ = ["RECOVER_REASON", "Recovery"]
