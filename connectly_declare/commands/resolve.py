"""`connectly-declare state resolve` without a CLIENT: a verdict on many keys at once.

Keys are selected by sendout, status, error code, campaign and/or a file of clients (every
given selector must match). The verdict is appended as *one* resolution record, under the
writer lock, read and written in the same hold: a crash leaves all of it or none of it, and
history is never rewritten (the keys' earlier intents and outcomes stay in the ledger).
`--dry-run` shows what would change (counts per sendout and status, masked samples) and
writes nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TextIO

from connectly_declare import clock
from connectly_declare.commands.state import StateContext
from connectly_declare.entry import mask_phone, split_key
from connectly_declare.errors import DeclareError, Location, ManifestErrors, Problem
from connectly_declare.ledger.base import (
    KeyState,
    LedgerState,
    Resolution,
    ResolvedAs,
    current_owner,
)
from connectly_declare.ledger.keyview import sorted_states
from connectly_declare.ledger.verdicts import is_permanent
from connectly_declare.report import escape

KEY_STATUSES = ("accepted", "rejected", "partial", "unknown")
IN_DOUBT = "in-doubt"  # unknown or partial
FAILED = "failed"  # rejected for a permanent reason (ledger.verdicts): the plan's `failed`
STATUS_CHOICES = (*KEY_STATUSES, IN_DOUBT, FAILED)
SAMPLES = 3
MAX_BAD_LINES = 20


@dataclass(frozen=True)
class Selection:
    """Which keys a bulk resolve is about; every given selector must match."""

    sendout: str | None = None
    statuses: tuple[str, ...] = ()  # of STATUS_CHOICES
    error_code: str | None = None
    campaign: str | None = None
    clients: frozenset[str] | None = None  # E.164 numbers (from --clients FILE)

    @property
    def empty(self) -> bool:
        return (self.sendout is None and not self.statuses and self.error_code is None
                and self.campaign is None and self.clients is None)

    def _statuses(self) -> set[str]:
        wanted = set(self.statuses)
        if IN_DOUBT in wanted:
            wanted |= {"unknown", "partial"}
        return wanted

    def keys(self, state: LedgerState) -> Iterator[KeyState]:
        statuses = self._statuses()
        failed = FAILED in statuses
        # only the statuses asked for are made into KeyStates (a rejected key may be
        # `failed`); the rest of the filter reads each one
        real = None if not statuses else statuses | ({"rejected"} if failed else set())
        for known in sorted_states(state.keys, real):
            key = known.key
            if statuses and known.status not in statuses and not (
                    failed and known.status == "rejected" and is_permanent(known.error)):
                continue
            # --sendout names the sendout that last sent the key, or the allow_multiple
            # sendout whose history it is (its scope), as `state resolve CLIENT` does
            campaign, client, scope = split_key(key)
            if self.sendout is not None and self.sendout not in (known.sendout, scope):
                continue
            if self.campaign is not None and campaign != self.campaign:
                continue
            if self.error_code is not None and not _has_code(known.error, self.error_code):
                continue
            if self.clients is not None and client not in self.clients:
                continue
            yield known


def _has_code(error: str | None, code: str) -> bool:
    """Whether a folded error text (`CODE: TYPE: message: HTTP n`) carries `code`."""
    if not error:
        return False
    return error == code or error.startswith(code + ":") or f": {code}:" in f": {error}:"


def read_clients(path: Path, region: str, *, display: str | None = None) -> frozenset[str]:
    """The clients of a file, one phone number a line (E.164; other formats are read with
    the workspace's default region). Blank lines and `# comments` are skipped. Every bad
    line is reported at once, as FILE:LINE."""
    from connectly_declare.audience.phones import InvalidPhone, normalize

    shown = display or str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DeclareError(f"{shown}: no such file", hint="give a file of clients, one "
                           "E.164 number a line") from None
    except (OSError, UnicodeDecodeError) as err:
        raise DeclareError(f"{shown}: cannot be read: {err}",
                           hint="give a UTF-8 text file, one E.164 number a line") from None
    clients: set[str] = set()
    problems: list[Problem] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            clients.add(normalize(line, region))
        except InvalidPhone as err:
            problems.append(Problem(
                Location(shown, number),
                f"{escape.terminal(line[:40])!r} is not a phone number: {err.reason}",
                "one E.164 number a line, e.g. +16505551234"))
    if problems:
        more = len(problems) - MAX_BAD_LINES
        kept = problems[:MAX_BAD_LINES]
        if more > 0:
            kept.append(Problem(Location(shown, problems[MAX_BAD_LINES].location.line),
                                f"... and {more:,} more bad lines"))
        raise ManifestErrors(kept)
    if not clients:
        raise DeclareError(f"{shown}: no clients in the file",
                           hint="one E.164 number a line, e.g. +16505551234")
    return frozenset(clients)


def _unchanged(known: KeyState, resolved_as: ResolvedAs) -> bool:
    """Whether the verdict would change nothing the plan reads."""
    if resolved_as == "accepted":
        return known.status == "accepted" and known.accepted_fingerprint == known.fingerprint
    return resolved_as != "unsent" and known.status == resolved_as


@dataclass(frozen=True)
class Preview:
    """What a bulk resolve would do, counted."""

    changing: tuple[KeyState, ...]
    unchanged: int
    by_group: dict[tuple[str, str], int]  # (sendout, status before) -> keys
    missing_clients: int  # clients of --clients with no selected key


def preview(state: LedgerState, selection: Selection, resolved_as: ResolvedAs) -> Preview:
    changing: list[KeyState] = []
    unchanged = 0
    groups: Counter[tuple[str, str]] = Counter()
    found: set[str] = set()
    for known in selection.keys(state):
        found.add(split_key(known.key)[1])
        if _unchanged(known, resolved_as):
            unchanged += 1
            continue
        changing.append(known)
        groups[(known.sendout, known.status)] += 1
    missing = len(selection.clients - found) if selection.clients is not None else 0
    return Preview(tuple(changing), unchanged, dict(sorted(groups.items())), missing)


def _describe(selection: Selection) -> str:
    parts = []
    if selection.sendout is not None:
        parts.append(f"sendout {selection.sendout}")
    if selection.campaign is not None:
        parts.append(f"campaign {selection.campaign!r}")
    if selection.statuses:
        parts.append("status " + "|".join(selection.statuses))
    if selection.error_code is not None:
        parts.append(f"error {selection.error_code}")
    if selection.clients is not None:
        parts.append(f"{len(selection.clients):,} clients of the file")
    return escape.terminal(", ".join(parts))


def _report(out: TextIO, found: Preview, selection: Selection, resolved_as: ResolvedAs,
            reason: str, *, show_recipients: bool, verb: str) -> None:
    count = len(found.changing)
    out.write(f"{verb} {count:,} {'key' if count == 1 else 'keys'} as {resolved_as} "
              f"(selected by {_describe(selection)}; reason: "
              f"{escape.terminal(reason)})\n")
    for (sendout, status), keys in found.by_group.items():
        out.write(escape.terminal(f"  sendout {sendout}: {keys:,} {status}") + "\n")
    for known in _samples(found.changing):
        campaign, client, _ = split_key(known.key)
        shown = client if show_recipients else mask_phone(client)
        out.write(escape.terminal(f"  e.g. {shown}  {campaign!r}  sendout {known.sendout}  "
                                  f"{known.status} -> {resolved_as}") + "\n")
    if found.unchanged:
        out.write(f"  {found.unchanged:,} selected keys are {resolved_as} already "
                  "(unchanged)\n")
    if found.missing_clients:
        out.write(f"  {found.missing_clients:,} clients of the file have no selected key in "
                  "the ledger (nothing to resolve for them)\n")


def _samples(keys: Iterable[KeyState]) -> Iterator[KeyState]:
    """A few keys per (sendout, status)."""
    seen: Counter[tuple[str, str]] = Counter()
    for known in keys:
        group = (known.sendout, known.status)
        if seen[group] < SAMPLES:
            seen[group] += 1
            yield known


def resolve_bulk(ctx: StateContext, out: TextIO, selection: Selection, *,
                 resolved_as: ResolvedAs, reason: str, dry_run: bool, lock_timeout: float,
                 show_recipients: bool = False, by: str | None = None,
                 now: datetime | None = None) -> int:
    if selection.empty:
        raise DeclareError("state resolve needs a CLIENT, or at least one of --sendout, "
                           "--status, --error-code, --campaign, --clients",
                           hint="preview a bulk resolve with --dry-run first")
    if not reason.strip():
        raise DeclareError("a bulk state resolve needs --reason (it is kept in the ledger "
                           "next to every key it settles)",
                           hint='e.g. --reason "checked the Connectly inbox on 2026-11-30"')
    if dry_run:
        state = ctx.ledger.read()
        found = preview(state, selection, resolved_as)
        _report(out, found, selection, resolved_as, reason, show_recipients=show_recipients,
                verb="would resolve")
        out.write(f"dry run: nothing was written ({ctx.ledger.describe()}, serial "
                  f"{state.serial})\n")
        return 0
    with ctx.ledger.lock("state resolve (bulk)", lock_timeout):
        state = ctx.ledger.read()  # under the lock: nobody appends between read and write
        found = preview(state, selection, resolved_as)
        if not found.changing:
            _report(out, found, selection, resolved_as, reason,
                    show_recipients=show_recipients, verb="nothing to resolve:")
            return 0
        keys = [split_key(k.key) for k in found.changing]
        (campaign, client, scope), *more = keys
        record = Resolution(campaign=campaign, client=client, scope=scope,
                            resolved_as=resolved_as, by=by or current_owner(),
                            at=(now or clock.now()).isoformat(timespec="seconds"),
                            reason=reason, more=tuple(more))
        serial = ctx.ledger.append([record])  # one record: all of it lands, or none
    _report(out, found, selection, resolved_as, reason, show_recipients=show_recipients,
            verb="resolved")
    out.write(f"recorded by {escape.terminal(record.by)} in the {ctx.ledger.describe()}, "
              f"serial {serial}\n")
    return 0


__all__ = ["FAILED", "IN_DOUBT", "STATUS_CHOICES", "Preview", "Selection", "preview",
           "read_clients", "resolve_bulk"]
