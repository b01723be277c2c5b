"""`connectly-declare state ...`: look at the folded ledger, resolve in-doubt keys, export,
unlock. These read `declare.yaml` only, never the manifests: a broken manifest must not
stop anyone from inspecting or repairing the state.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from connectly_declare import clock
from connectly_declare.entry import mask_phone, split_key
from connectly_declare.errors import DeclareError, LedgerError
from connectly_declare.ledger.base import (
    KeyState,
    Ledger,
    LedgerState,
    Resolution,
    ResolvedAs,
    current_owner,
)
from connectly_declare.ledger.keyview import sorted_states, states_of_client
from connectly_declare.report import escape
from connectly_declare.workspace.config import WorkspaceConfig
from connectly_declare.workspace.load import load_config_only

STATE_FORMAT_VERSION = 1
RESOLVABLE = ("unknown", "partial")


@dataclass(frozen=True)
class StateContext:
    config: WorkspaceConfig
    ledger: Ledger


def open_state(start: Path, environment: str | None,
               environ: Mapping[str, str] = os.environ, *, sim: bool = False) -> StateContext:
    """The ledger of `environment`: the real one, or with `sim` the simulator's."""
    from connectly_declare.commands.destination import side
    from connectly_declare.ledger import open_ledger
    from connectly_declare.workspace.environments import resolve_environment

    root, config = load_config_only(start)
    resolved = side(resolve_environment(config, environment), sim=sim, environ=environ)
    return StateContext(config, open_ledger(root, resolved, environ=environ))


def normalize_client(client: str, region: str) -> str:
    """Any phone format, read with the workspace's default region, as E.164."""
    from connectly_declare.audience.phones import InvalidPhone, normalize

    try:
        return normalize(client, region)
    except InvalidPhone as err:
        raise DeclareError(f"{client!r} is not a phone number: {err.reason}",
                           hint="give the client as E.164, e.g. +16505551234") from None


def key_json(state: KeyState, *, show_recipients: bool) -> dict[str, Any]:
    campaign, client, scope = split_key(state.key)
    return {
        "campaign": campaign, "client": client if show_recipients else mask_phone(client),
        "scope": scope, "status": state.status, "fingerprint": state.fingerprint,
        "accepted_fingerprint": state.accepted_fingerprint, "sendout": state.sendout,
        "version": state.version, "batch_id": state.batch_id, "sendout_id": state.sendout_id,
        "first_at": state.first_at, "last_at": state.last_at, "error": state.error,
        "resolved_by": state.resolved_by, "resolved_as": state.resolved_as,
        "resolution_reason": state.resolution_reason,
    }


def _line(state: KeyState, show_recipients: bool) -> str:
    campaign, client, scope = split_key(state.key)
    shown = client if show_recipients else mask_phone(client)
    parts = [f"{state.status:<8}", shown, repr(campaign), f"sendout {state.sendout}",
             f"last {state.last_at}"]
    if scope:
        parts.insert(3, f"scope {scope}")
    if state.sendout_id:
        parts.append(f"sendoutId {state.sendout_id}")
    if state.error:
        # an accepted key's "error" is the reason apply inferred it (inferred: already received)
        parts.append(f"({state.error})" if state.status == "accepted" else f"error {state.error}")
    if state.resolved_by:
        parts.append(resolution_text(state))
    return escape.terminal("  ".join(parts)) + "\n"


def resolution_text(state: KeyState) -> str:
    """`resolved accepted by user@host: why` (the key's last verdict)."""
    text = f"resolved {state.resolved_as or ''} by {state.resolved_by}".replace("  ", " ")
    return text + (f": {state.resolution_reason}" if state.resolution_reason else "")


def select(state: LedgerState, *, sendout: str | None = None,
           status: str | None = None) -> Iterator[KeyState]:
    """The keys' states in key order, filtered (a large ledger's walked a chunk at a
    time: ledger.keyview.sorted_states)."""
    for known in sorted_states(state.keys, None if status is None else (status,)):
        if sendout is None or known.sendout == sendout:
            yield known


def state_list(ctx: StateContext, out: TextIO, *, sendout: str | None, status: str | None,
               show_recipients: bool) -> int:
    state = ctx.ledger.read()
    count = 0
    for known in select(state, sendout=sendout, status=status):
        out.write(_line(known, show_recipients))
        count += 1
    out.write(f"{count:,} of {len(state.keys):,} keys ({ctx.ledger.describe()}, serial "
              f"{state.serial})\n")
    for warning in state.warnings:
        out.write(f"warning: {escape.terminal(warning)}\n")
    return 0


def state_show(ctx: StateContext, out: TextIO, client: str, *, show_recipients: bool) -> int:
    e164 = normalize_client(client, ctx.config.default_region)
    keys = states_of_client(ctx.ledger.read().keys, e164)
    shown = e164 if show_recipients else mask_phone(e164)
    if not keys:
        out.write(f"{shown}: not in the {ctx.ledger.describe()} (nothing was ever sent to "
                  f"this client)\n")
        return 0
    for known in keys:
        out.write(_line(known, show_recipients))
        version = known.version or "(none)"  # sent without a version
        out.write(f"    fingerprint {known.fingerprint}  version {version}  batch "
                  f"{known.batch_id}  first {known.first_at}\n")
    return 0


def state_export(ctx: StateContext, out: TextIO, *, show_recipients: bool = True) -> int:
    state = ctx.ledger.read()
    head = {"format_version": STATE_FORMAT_VERSION, "lineage": state.lineage,
            "serial": state.serial, "environment": state.environment,
            "business_id": state.business_id, "warnings": state.warnings}
    # Ledger text (sendout names, API errors) may hold controls: \u-escape them
    # (SECURITY.md, "Output").
    out.write(escape.json_text(json.dumps(head, ensure_ascii=False))[:-1] + ', "keys": [')
    for i, known in enumerate(select(state)):
        out.write(("" if i == 0 else ",\n ")
                  + escape.json_text(json.dumps(key_json(known, show_recipients=show_recipients),
                                                ensure_ascii=False)))
    out.write("]}\n")
    return 0


def state_resolve(ctx: StateContext, out: TextIO, client: str, *, campaign: str,
                  resolved_as: ResolvedAs, reason: str,
                  sendout: str | None, lock_timeout: float, by: str | None = None,
                  now: datetime | None = None) -> int:
    """A verdict on one key. In-doubt keys (unknown, partial) first; a key of any other
    status only with a reason (you overrule what the server answered)."""
    e164 = normalize_client(client, ctx.config.default_region)
    with ctx.ledger.lock(f"state resolve {mask_phone(e164)}", lock_timeout):
        state = ctx.ledger.read()  # under the lock: nobody appends between read and write
        keys = [k for k in states_of_client(state.keys, e164) if split_key(k.key)[0] == campaign
                and (sendout is None or sendout in (k.sendout, split_key(k.key)[2]))]
        if not keys:
            raise LedgerError(f"{mask_phone(e164)} has no ledger entry for campaign "
                              f"{campaign!r}", hint="check with `connectly-declare state show "
                              "CLIENT`")
        doubtful = [k for k in keys if k.status in RESOLVABLE] or keys
        if len(doubtful) > 1:
            scopes = ", ".join(k.sendout for k in doubtful)
            raise LedgerError(f"{mask_phone(e164)} / {campaign!r} is in the ledger of several "
                              f"sendouts ({scopes})", hint="pick one with --sendout NAME")
        known = doubtful[0]
        if known.status not in RESOLVABLE and not reason.strip():
            raise LedgerError(
                f"{mask_phone(e164)} / {campaign!r} is {known.status}, not unknown or partial: "
                "only in-doubt keys can be resolved without --reason",
                hint="give --reason to overrule the recorded outcome")
        _, _, scope = split_key(known.key)
        record = Resolution(campaign=campaign, client=e164, scope=scope,
                            resolved_as=resolved_as, by=by or current_owner(),
                            at=(now or clock.now()).isoformat(timespec="seconds"),
                            reason=reason)
        serial = ctx.ledger.append([record])
    out.write(escape.terminal(f"resolved {mask_phone(e164)} / {campaign!r} (was "
                              f"{known.status}) as {resolved_as}") +
              f"; {ctx.ledger.describe()} serial {serial}\n")
    return 0


def state_unlock(ctx: StateContext, out: TextIO, lock_id: str) -> int:
    ctx.ledger.unlock(lock_id)
    out.write(f"removed lock {lock_id} of the {ctx.ledger.describe()}\n")
    return 0


__all__ = ["RESOLVABLE", "StateContext", "key_json", "normalize_client",
           "open_state", "resolution_text", "select", "state_export", "state_list", "state_resolve",
           "state_show", "state_unlock"]
