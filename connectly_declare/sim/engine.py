"""What the simulated endpoint does with a request body, without any HTTP: parse and
check it, group its entries, resolve campaigns and versions, apply the duplicate check,
keep the accepted entries and build the `{"data": [...]}` answer.

Rules (the vendor's page on this endpoint, as implemented; where the page is silent the
simulator decides, marked "sim:"; docs/architecture.md, "The simulator and the vendor's
page"):

- Entries are grouped by (campaignName, campaignVersion as given); one result per group,
  in order of first appearance. `campaignVersion` matches a version's label or id.
- A group without a version joins the campaign's latest sendout, else a new sendout on
  the latest (last listed) version, and needs the campaign's unversioned variables.
- Each group of one request gets its own sendout ("different sendouts for each
  combination"): a group never joins a sendout created by another group of the same request.
- An entry is invalid (ERROR_CODE_CAMPAIGN_ENTRY_INVALID) when a required variable is
  missing, `client` is not E.164, `scheduledAt` is not an ISO 8601 time with an offset,
  or (sim:) its client already appeared in the same group.
- Under allow_one, an entry for a client that already received the campaign (any version,
  any earlier request or group) is rejected and not delivered again. How the rejection is
  reported is the `repeat_style`: ``page`` (the default) as the page's last example does,
  counted like an invalid entry (ERROR_CODE_CAMPAIGN_ENTRY_INVALID on the group, status
  `error` when nothing was accepted); ``silent`` without an error (counted in
  `rejectedCount` only). API.md: a client must read both the same way.
- sim: a group with no accepted entry and at least one invalid one has status `error`;
  otherwise it gets a sendout (`created` or `updated`), and carries ENTRY_INVALID as its
  error when some entries were invalid.
- 404 / 409 only when every group failed as not found / as a draft campaign.
"""

from __future__ import annotations

import itertools
import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from connectly_declare.entry import E164, valid_timestamp
from connectly_declare.sim.catalog import Catalog, SimCampaign, SimVersion
from connectly_declare.sim.delivered import Item, Recipients, client_number, pack, unpack

MAX_ENTRIES = 1000
DUPLICATE_OPTION = "if_duplicate_check_unspecified"
VERSION_OPTION = "if_version_unspecified"
RepeatStyle = Literal["page", "silent"]
REPEAT_STYLES: tuple[RepeatStyle, ...] = ("page", "silent")
OPTION_VALUES: dict[str, tuple[str, ...]] = {
    DUPLICATE_OPTION: ("allow_one", "allow_multiple"),
    VERSION_OPTION: ("reuse_last_active",),
}


def _error(message: str, type_: str, code: str, title: str, user_message: str) -> dict[str, str]:
    return {"message": message, "type": type_, "code": code, "userTitle": title,
            "userMessage": user_message}


# The three errors of the vendor's page, word for word.
CAMPAIGN_NOT_FOUND = _error(
    "Campaign not found", "ERROR_TYPE_NOT_FOUND", "ERROR_CODE_CAMPAIGN_NOT_FOUND",
    "Campaign not found", "Please review the campaign name and/or campaign id.")
VERSION_NOT_FOUND = _error(
    "Campaign version not found", "ERROR_TYPE_NOT_FOUND", "ERROR_CODE_CAMPAIGN_VERSION_NOT_FOUND",
    "Campaign version not found", "Please review the campaign version.")
ENTRY_INVALID = _error(
    "Campaign entry is invalid", "ERROR_TYPE_INVALID_REQUEST", "ERROR_CODE_CAMPAIGN_ENTRY_INVALID",
    "Campaign entry is invalid", "Please check the inputs to the campaign entry.")
# sim: the page lists 409 ("a campaign in the wrong state") but shows no body for it.
CAMPAIGN_NOT_FINALIZED = _error(
    "Campaign is not finalized", "ERROR_TYPE_FAILED_PRECONDITION",
    "ERROR_CODE_CAMPAIGN_NOT_FINALIZED", "Campaign is not finalized",
    "Finalize the campaign in the Connectly inbox before sending it.")


def request_error(status: int, message: str) -> dict[str, Any]:
    """The body of a request-level error (400, 401, 429, 500): sim's own shape."""
    type_, code, title = {
        400: ("ERROR_TYPE_INVALID_REQUEST", "ERROR_CODE_MALFORMED_REQUEST", "Request is malformed"),
        401: ("ERROR_TYPE_UNAUTHENTICATED", "ERROR_CODE_INVALID_CREDENTIALS",
              "Invalid credentials"),
        429: ("ERROR_TYPE_RESOURCE_EXHAUSTED", "ERROR_CODE_RATE_LIMITED", "Too many requests"),
    }.get(status, ("ERROR_TYPE_INTERNAL", "ERROR_CODE_INTERNAL", "Internal error"))
    return {"error": _error(message, type_, code, title, message)}


class BadRequest(Exception):
    """The body is malformed: answered with 400 and this message."""


class Delivery(NamedTuple):
    """One accepted entry, as kept by the simulator."""

    request: int
    business: str
    campaign: str
    campaign_id: str
    version: str
    version_id: str
    sendout_id: str
    client: str
    variables: dict[str, str] | None
    scheduled_at: str | None
    at: float

    def as_json(self) -> dict[str, Any]:
        return {"request": self.request, "business": self.business, "campaign": self.campaign,
                "campaignId": self.campaign_id, "version": self.version,
                "versionId": self.version_id, "sendoutId": self.sendout_id,
                "client": self.client, "variables": self.variables,
                "scheduledAt": self.scheduled_at, "at": self.at}


_Item = Item  # client, variables, scheduledAt
_Groups = dict[tuple[str, str | None], list[_Item]]
# request, business, campaign, campaign id, version label, version id, sendout id
_Head = tuple[int, str, str, str, str, str, str]


@dataclass(frozen=True)
class ParsedRequest:
    allow_multiple: bool
    groups: _Groups


def _json_type_name(value: Any) -> str:
    """The JSON type of a request value, in the words the API's errors use (not the
    workspace's YAML words: see `workspace.yamlmarks.type_name`)."""
    return "null" if value is None else {dict: "object", list: "array", str: "string",
                                         bool: "boolean"}.get(type(value), "number")


def _not_a_string(index: int, name: str, value: Any) -> str:
    return f"entries[{index}].{name}: expected a string, got {_json_type_name(value)}"


_STR = itertools.repeat(str)  # all(map(isinstance, values, _STR)): a loop in C


def _parse_options(options: Any) -> bool:
    if options is None:
        return False
    if not isinstance(options, dict):
        raise BadRequest(f"options: expected an object, got {_json_type_name(options)}")
    # sim: option names the page does not list are ignored, like unknown body fields.
    for name, allowed in OPTION_VALUES.items():
        value = options.get(name)
        if value is not None and value not in allowed:
            raise BadRequest(f"options.{name}: unknown value {value!r}; expected one of "
                             + ", ".join(allowed))
    return bool(options.get(DUPLICATE_OPTION) == "allow_multiple")


def parse_request(raw: bytes) -> ParsedRequest:
    """Check a request body's shape and group its entries; raise BadRequest if malformed.

    Unknown fields are ignored: the page's own example of a body without `entries` has
    entry fields at the top level and is answered 200 `{"data": []}`."""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest(f"the body must be a JSON object, got {_json_type_name(body)}")
    allow_multiple = _parse_options(body.get("options"))
    entries = body.get("entries")
    if entries is None:
        return ParsedRequest(allow_multiple, {})
    if not isinstance(entries, list):
        raise BadRequest(f"entries: expected an array, got {_json_type_name(entries)}")
    if len(entries) > MAX_ENTRIES:
        raise BadRequest(f"entries: at most {MAX_ENTRIES} entries per request, got {len(entries)}")
    groups: _Groups = {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise BadRequest(f"entries[{i}]: expected an object, got {_json_type_name(entry)}")
        client = entry.get("client")
        name = entry.get("campaignName")
        if not isinstance(client, str) or not isinstance(name, str):
            missing = "client" if not isinstance(client, str) else "campaignName"
            got = entry.get(missing)
            raise BadRequest(f"entries[{i}].{missing}: required string"
                             + ("" if got is None else f", got {_json_type_name(got)}"))
        variables = entry.get("variables")
        if variables is not None and not (
            isinstance(variables, dict) and all(map(isinstance, variables.values(), _STR))
        ):
            raise BadRequest(f"entries[{i}].variables: expected an object of strings")
        version = entry.get("campaignVersion")
        scheduled = entry.get("scheduledAt")
        if not (version is None or isinstance(version, str)):
            raise BadRequest(_not_a_string(i, "campaignVersion", version))
        if not (scheduled is None or isinstance(scheduled, str)):
            raise BadRequest(_not_a_string(i, "scheduledAt", scheduled))
        key = (name, version)
        group = groups.get(key)
        if group is None:
            groups[key] = group = []
        group.append((client, variables, scheduled))
    return ParsedRequest(allow_multiple, groups)


@dataclass
class _Campaign:
    """A catalog campaign with its lookups precomputed."""

    spec: SimCampaign
    versions: dict[str, SimVersion]  # by label and by id
    latest: SimVersion
    unversioned: frozenset[str]

    @classmethod
    def of(cls, spec: SimCampaign) -> _Campaign:
        versions = {v.label: v for v in spec.versions} | {v.id: v for v in spec.versions}
        return cls(spec, versions, spec.versions[-1], frozenset(spec.variables))


@dataclass
class Stats:
    """Counters of the vendor endpoint (inspection routes are not counted)."""

    requests: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    rate_limited: int = 0
    injected_500: int = 0
    injected_429: int = 0
    injected_timeouts: int = 0
    injected_drops: int = 0
    accepted: int = 0
    rejected: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "rateLimited": self.rate_limited,
            "tooManyRequests": self.statuses.get(429, 0),
            "injected": {"500": self.injected_500, "429": self.injected_429,
                         "timeout": self.injected_timeouts, "drop": self.injected_drops},
            "entries": {"accepted": self.accepted, "rejected": self.rejected},
        }


class SimState:
    """The simulator's memory: catalog lookups, sendouts, deliveries and counters."""

    def __init__(self, catalog: Catalog, seed: int | None = None,
                 repeat_style: RepeatStyle = "page") -> None:
        if repeat_style not in REPEAT_STYLES:
            raise ValueError(f"repeat_style must be one of {REPEAT_STYLES}, not {repeat_style!r}")
        self.catalog = catalog
        self.repeat_style = repeat_style
        self._keys = {b.id: frozenset(b.api_keys) for b in catalog.businesses}
        self._campaigns = {
            b.id: {c.name: _Campaign.of(c) for c in b.campaigns} for b in catalog.businesses
        }
        self._ids = random.Random(seed)
        self.reset()

    def reset(self) -> None:
        """Forget every sendout, delivery and counter (the catalog stays)."""
        # Accepted entries kept per group as (the group's Delivery fields, time, its
        # [(client, variables, scheduledAt)] packed: delivered.pack), expanded into
        # Delivery rows only when inspected: the hot path stays cheap and the memory small.
        self._batches: list[tuple[_Head, float, bytes]] = []
        self.stats = Stats()
        self._sendouts: dict[tuple[str, str, str], str] = {}  # (business, campaign, version)
        self._latest: dict[tuple[str, str], tuple[str, SimVersion]] = {}  # (business, campaign)
        # (business, campaign id) -> the clients that received it, compact
        self._delivered: dict[tuple[str, str], Recipients] = {}

    def authorized(self, business_id: str, api_key: str | None) -> bool:
        keys = self._keys.get(business_id)
        return keys is not None and api_key is not None and api_key in keys

    def _new_id(self) -> str:
        return str(uuid.UUID(int=self._ids.getrandbits(128), version=4))

    @property
    def sendout_count(self) -> int:
        return len(self._sendouts)

    def send(self, business_id: str, request: ParsedRequest, now: float) -> tuple[int, Any]:
        """Apply a parsed request of an authorized business: (HTTP status, JSON body)."""
        campaigns = self._campaigns[business_id]
        number = self.stats.requests
        fresh: set[str] = set()  # sendouts created by this request
        results = []
        for (name, version_ref), items in request.groups.items():
            campaign = campaigns.get(name)
            if campaign is None:
                result = _failed(None, name, version_ref, CAMPAIGN_NOT_FOUND, len(items))
            elif campaign.spec.state != "finalized":
                result = _failed(campaign.spec.id, name, version_ref, CAMPAIGN_NOT_FINALIZED,
                                 len(items))
            else:
                result = self._send_group(business_id, campaign, version_ref, items,
                                          request.allow_multiple, fresh, number, now)
            self.stats.accepted += result["acceptedCount"]
            self.stats.rejected += result["rejectedCount"]
            results.append(result)
        return _status_of(results), {"data": results}

    def _send_group(self, business: str, campaign: _Campaign, version_ref: str | None,
                    items: list[_Item], allow_multiple: bool, fresh: set[str],
                    number: int, now: float) -> dict[str, Any]:
        spec = campaign.spec
        sendout_id: str | None
        if version_ref is None:
            latest = self._latest.get((business, spec.id))
            sendout_id, version = latest if latest else (None, campaign.latest)
            required = campaign.unversioned
        else:
            found = campaign.versions.get(version_ref)
            if found is None:
                return _failed(spec.id, spec.name, version_ref, VERSION_NOT_FOUND, len(items))
            version = found
            sendout_id = self._sendouts.get((business, spec.id, version.id))
            required = frozenset(version.variables)
        if sendout_id in fresh:
            sendout_id = None  # the page: each group of a request gets its own sendout

        accepted: list[_Item] = []
        numbers: list[int] = []
        invalid = 0
        seen: set[str] = set()
        repeat_invalid = self.repeat_style == "page"
        for item in items:
            client, variables, scheduled = item
            repeated = client in seen
            seen.add(client)
            if (repeated or not E164.fullmatch(client)
                    or (required and (variables is None or not required <= variables.keys()))
                    or (scheduled is not None and not valid_timestamp(scheduled))):
                invalid += 1
                continue
            accepted.append(item)
            numbers.append(client_number(client))
        delivered = self._delivered.get((business, spec.id))
        if delivered is None:
            delivered = self._delivered[(business, spec.id)] = Recipients()
        if not allow_multiple and accepted:
            # allow_one: a client that already received this campaign is rejected, and
            # (page style) reported as the page's last example does: ENTRY_INVALID on the
            # group. (A client twice in one group was refused above as repeated.)
            known = delivered.known(numbers)
            if any(known):
                invalid += repeat_invalid * sum(known)
                accepted = [item for item, old in zip(accepted, known, strict=True) if not old]
                numbers = [n for n, old in zip(numbers, known, strict=True) if not old]
        delivered.add(numbers)

        result = {
            "campaignId": spec.id, "campaignName": spec.name,
            "campaignVersion": version_ref if version_ref is not None else version.id,
            "sendoutId": sendout_id, "status": "updated",
            "acceptedCount": len(accepted), "rejectedCount": len(items) - len(accepted),
            "error": ENTRY_INVALID if invalid else None,
        }
        if not accepted and invalid:
            result["status"] = "error"
            return result
        if sendout_id is None:
            sendout_id = result["sendoutId"] = self._new_id()
            result["status"] = "created"
            fresh.add(sendout_id)
            self._sendouts[(business, spec.id, version.id)] = sendout_id
            self._latest[(business, spec.id)] = (sendout_id, version)
        self._batches.append(((number, business, spec.name, spec.id, version.label,
                               version.id, sendout_id), now, pack(accepted)))
        return result

    @property
    def delivery_count(self) -> int:
        return self.stats.accepted

    @property
    def deliveries(self) -> list[Delivery]:
        """Every accepted entry, in the order accepted."""
        return list(self.find())

    def find(self, *, business: str | None = None, campaign: str | None = None,
             client: str | None = None) -> Iterator[Delivery]:
        """The accepted entries matching every filter given, in the order accepted."""
        for head, at, packed in self._batches:
            if (business is not None and head[1] != business) or (
                    campaign is not None and head[2] != campaign):
                continue
            for c, variables, scheduled in unpack(packed):
                if client is None or c == client:
                    yield Delivery(*head, c, variables, scheduled, at)


def _failed(campaign_id: str | None, name: str, version: str | None, error: dict[str, str],
            count: int) -> dict[str, Any]:
    return {"campaignId": campaign_id, "campaignName": name, "campaignVersion": version,
            "sendoutId": None, "status": "error", "acceptedCount": 0, "rejectedCount": count,
            "error": error}


def _status_of(results: list[dict[str, Any]]) -> int:
    """[decided] 404 / 409 only when every group failed that way; otherwise 200."""
    if not results:
        return 200
    types = {r["error"]["type"] if r["status"] == "error" else None for r in results}
    if types == {"ERROR_TYPE_NOT_FOUND"}:
        return 404
    if types == {"ERROR_TYPE_FAILED_PRECONDITION"}:
        return 409
    return 200
