"""What the server would refuse as an invalid entry, checked before anything is sent.

The vendor's page (see README.md, "Simulator") rejects an entry as
ERROR_CODE_CAMPAIGN_ENTRY_INVALID when a variable of the campaign version is missing, the
client is not a phone number the API takes (this project always sends E.164), or
`scheduledAt` is not an ISO 8601 time.
The plan checks exactly that for every entry it would send: an entry failing it is never
sent and is shown `failed` with the reason. The check matters beyond saving a request:
apply reads a rejection of a *locally valid*, previously in-doubt entry as "already
received" (apply/outcomes.py), which is only sound if invalid entries never reach the
server.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from connectly_declare.entry import E164, Entry, valid_timestamp

INVALID_LOCALLY = "invalid, never sent"


def required_variables(variables: Collection[str] | None) -> frozenset[str] | None:
    """The variable names every entry must carry exactly (None: not known)."""
    return frozenset(variables) if variables is not None else None


def entry_checker(variables: Collection[str] | None) -> Callable[[Entry], str | None]:
    """A function giving the first reason the server would refuse an entry, or None.

    `variables` are the exact variable names of the campaign version the entries are sent
    to (None: not known, e.g. an old saved plan; then only client and schedule are
    checked). Made once per sendout: it runs for every entry to send."""
    required = required_variables(variables)
    fullmatch = E164.fullmatch
    schedules: dict[str, bool] = {}

    def problem(entry: Entry) -> str | None:
        if fullmatch(entry.client) is None:
            return f"{INVALID_LOCALLY}: the client is not an E.164 phone number"
        if required is not None and entry.variables.keys() != required:
            given = set(entry.variables)
            missing, extra = sorted(required - given), sorted(given - required)
            said = "; ".join(part for part in (
                f"missing {', '.join(missing)}" if missing else "",
                f"not in the campaign version: {', '.join(extra)}" if extra else "") if part)
            return f"{INVALID_LOCALLY}: variables do not match the campaign version ({said})"
        when = entry.scheduled_at
        if when is not None:
            ok = schedules.get(when)
            if ok is None:
                ok = schedules[when] = valid_timestamp(when)
            if not ok:
                return f"{INVALID_LOCALLY}: scheduledAt is not an ISO 8601 time with an offset"
        return None

    return problem


__all__ = ["E164", "INVALID_LOCALLY", "entry_checker", "required_variables", "valid_timestamp"]
