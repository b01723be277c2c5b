"""Which recorded rejections are worth sending again, and which are permanent.

One place decides, for apply's summary and for the plan, from what the ledger keeps of an
outcome's error (:func:`connectly_declare.ledger.fold.error_text`: ``CODE: TYPE: message:
HTTP nnn``). DESIGN.md: "Every re-apply must move towards nothing left to send".

- **Transient** (the plan says ``retry``): the request never reached the server
  (CLIENT_NOT_SENT), 429, 401 (the key is fixed outside the manifests), 408, 5xx. Sending
  again can succeed without anything in the workspace changing.
- **Permanent** (the plan says ``failed``): the server processed the request and refused
  it for what it holds: campaign or version not found (404), campaign not finalized (409),
  a malformed request (400), an invalid entry that was never in doubt, or a client that
  received the campaign outside this ledger (ALREADY_RECEIVED). The same request would be
  refused the same way for ever, so it is not sent again until its content (fingerprint)
  changes, `apply --retry-failed` asks for it, or `state resolve` settles it.

A rejection with no error at all (ledgers written before this module) counts as
transient: retrying once more is what those ledgers expected.
"""

from __future__ import annotations

import re

from connectly_declare.ledger.base import ALREADY_RECEIVED

# Recorded when the request provably never reached the server (or 429s outlasted retries).
NOT_SENT = "CLIENT_NOT_SENT"
# The reason kept with a key apply records accepted by inference (see apply/outcomes.py).
INFERRED = "inferred: already received"

TRANSIENT_CODES = frozenset({
    NOT_SENT, "ERROR_CODE_RATE_LIMITED", "ERROR_CODE_INTERNAL", "ERROR_CODE_INVALID_CREDENTIALS",
})
PERMANENT_CODES = frozenset({
    ALREADY_RECEIVED,
    "ERROR_CODE_CAMPAIGN_NOT_FOUND",
    "ERROR_CODE_CAMPAIGN_VERSION_NOT_FOUND",
    "ERROR_CODE_CAMPAIGN_NOT_FINALIZED",
    "ERROR_CODE_CAMPAIGN_ENTRY_INVALID",
    "ERROR_CODE_MALFORMED_REQUEST",
})
TRANSIENT_HTTP = frozenset({401, 408, 429})

_CODE = re.compile(r"[A-Z][A-Z0-9_]+")
_HTTP = re.compile(r"HTTP (\d{3})$")


def code_of(error: str | None) -> str | None:
    """The error code at the start of a recorded error text, if it has one."""
    if not error:
        return None
    head = error.split(": ", 1)[0]
    return head if _CODE.fullmatch(head) else None


def http_of(error: str | None) -> int | None:
    """The HTTP status at the end of a recorded error text, if it has one."""
    found = _HTTP.search(error or "")
    return int(found.group(1)) if found else None


def is_permanent(error: str | None) -> bool:
    """Whether a rejection recorded with this error text is refused for good (see above)."""
    if not error:
        return False
    code, http = code_of(error), http_of(error)
    if code in TRANSIENT_CODES or http in TRANSIENT_HTTP or (http is not None and http >= 500):
        return False
    if code in PERMANENT_CODES:
        return True
    # Any other answer the server gave after processing the request (a 4xx, or a 200 whose
    # group was rejected with an error we do not know) would be given again.
    return http is not None and 200 <= http < 500


__all__ = ["ALREADY_RECEIVED", "INFERRED", "NOT_SENT", "PERMANENT_CODES", "TRANSIENT_CODES",
           "code_of", "http_of", "is_permanent"]
