"""The manifest language: Campaign, Audience and Sendout documents as pydantic models.

Models only check a document's own shape; references between documents (a Sendout's
campaign, version and audience, audience cycles, variable names) are checked across files
by the workspace loader.
"""

from __future__ import annotations

import re
from itertools import pairwise
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    NaiveDatetime,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from connectly_declare.policy.localtime import is_zone, parse_clock

# Audience and Sendout names become part of ledger keys and CLI arguments, so they are
# plain slugs; campaign names are the vendor's and may be any Unicode text.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
VARIABLE_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"

Name = Annotated[str, Field(pattern=NAME_PATTERN, description="a slug: letters, digits, . _ -")]
VariableName = Annotated[str, Field(pattern=VARIABLE_PATTERN)]
CampaignName = Annotated[str, Field(min_length=1, max_length=256)]
Region = Annotated[str, Field(pattern=r"^[A-Z]{2}$", description="ISO 3166 region, e.g. US")]
OnInvalid = Literal["error", "skip"]
Scalar = str | int | float | bool | None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- Campaign -------------------------------------------------------------------------


class CampaignVersion(_Strict):
    """One finalized version of a campaign and the flow variables it needs."""

    version: Annotated[str, Field(min_length=1, description="version label (v1.0) or id")]
    variables: list[VariableName] = Field(default_factory=list)


class Campaign(_Strict):
    """A Connectly campaign, by its exact name in the vendor's inbox."""

    kind: Literal["Campaign"]
    name: CampaignName
    description: str | None = None
    variables: list[VariableName] = Field(
        default_factory=list,
        description="variables needed by sendouts that name no version "
        "(the server then uses the latest active sendout)",
    )
    versions: list[CampaignVersion] = Field(default_factory=list)

    def variables_for(self, version: str | None) -> list[str] | None:
        """The variable names a send of `version` needs; None when the version is unknown.

        A send that names no version goes to the latest version, so it needs the
        campaign's `variables` when the manifest sets them (even to []), else the latest
        (last listed) version's. `validate`, `apply --sim` and `connectly-declare sim` all
        ask here."""
        if version is None:
            if "variables" in self.model_fields_set or not self.versions:
                return list(self.variables)
            return list(self.versions[-1].variables)
        for v in self.versions:
            if v.version == version:
                return list(v.variables)
        return None


# --- Audience -------------------------------------------------------------------------


class CsvSource(_Strict):
    """Recipients from a CSV file with a header row (path relative to the workspace)."""

    csv: Annotated[str, Field(min_length=1)]
    phone_column: str | None = Field(
        default=None, description="column holding the phone number (default: phone or client)"
    )
    delimiter: Annotated[str, Field(min_length=1, max_length=1)] | None = Field(
        default=None, description="field delimiter (default: sniffed)"
    )
    region: Region | None = None
    on_invalid: OnInvalid = "error"


class JsonlSource(_Strict):
    """Recipients from a JSON Lines file, one object per line."""

    jsonl: Annotated[str, Field(min_length=1)]
    phone_field: str | None = Field(default=None, description="default: phone or client")
    region: Region | None = None
    on_invalid: OnInvalid = "error"


InlineRecipient = str | dict[str, Scalar]


class InlineSource(_Strict):
    """Recipients written in the manifest: a phone string, or a mapping with `client`."""

    inline: list[InlineRecipient]
    region: Region | None = None
    on_invalid: OnInvalid = "error"


class AudienceRef(_Strict):
    """All recipients of another Audience, by name."""

    audience: Name


def _source_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        for tag in ("csv", "jsonl", "inline", "audience"):
            if tag in value:
                return tag
        return None
    for tag, cls in (("csv", CsvSource), ("jsonl", JsonlSource), ("inline", InlineSource),
                     ("audience", AudienceRef)):
        if isinstance(value, cls):
            return tag
    return None


Source = Annotated[
    Annotated[CsvSource, Tag("csv")]
    | Annotated[JsonlSource, Tag("jsonl")]
    | Annotated[InlineSource, Tag("inline")]
    | Annotated[AudienceRef, Tag("audience")],
    Discriminator(
        _source_tag,
        custom_error_type="source_kind",
        custom_error_message="a source needs exactly one of: csv, jsonl, inline, audience",
    ),
]


class AudienceSpec(_Strict):
    """Who: sources, minus exclusions, kept where the filter holds."""

    sources: Annotated[list[Source], Field(min_length=1)]
    exclude: list[Source] = Field(default_factory=list)
    where: str | None = Field(
        default=None, description="Jinja expression over `recipient`; keeps those where true"
    )


class Audience(AudienceSpec):
    """Named, reusable recipients."""

    kind: Literal["Audience"]
    name: Name
    description: str | None = None


# --- When: local schedules, quiet hours (connectly_declare.policy) ---------------------


def _zone_name(value: str) -> str:
    if not is_zone(value):
        raise ValueError(f"{value!r} is not an IANA time zone the zone database knows "
                         "(e.g. Europe/Berlin, America/Sao_Paulo)")
    return value


def _auto_or_zone(value: str) -> str:
    return value if value == "auto" else _zone_name(value)


def _clock(value: str) -> str:
    parse_clock(value)  # raises ValueError with the reason
    return value


ZoneName = Annotated[str, AfterValidator(_zone_name),
                     Field(description="an IANA time zone, e.g. America/Sao_Paulo")]
Clock = Annotated[str, AfterValidator(_clock), Field(description="a time of day, HH:MM")]


class ZoneRule(_Strict):
    """How a recipient's time zone is found: a recipient's `field` (an IANA name in the
    data) when present, else `timezone` (`auto`: from the number; or a fixed IANA name),
    else `fallback` for a number with no zone or several."""

    timezone: Annotated[str, AfterValidator(_auto_or_zone)] = Field(
        default="auto", description="auto (from the number) or an IANA zone name")
    field: Annotated[str, Field(min_length=1)] | None = Field(
        default=None, description="recipient field holding an IANA zone name")
    fallback: ZoneName | None = Field(
        default=None, description="zone for numbers with no zone, or several (auto)")


class LocalSchedule(ZoneRule):
    """Send at a wall-clock time in each recipient's own time zone."""

    local: NaiveDatetime = Field(description="local wall-clock time, e.g. 2027-12-20T10:00")


class QuietHours(ZoneRule):
    """No message between `start` and `end` in the recipient's zone (may span midnight)."""

    start: Clock
    end: Clock

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("quiet hours need start and end to differ")
        return self


def _schedule_tag(value: Any) -> str:
    return "local" if isinstance(value, dict | LocalSchedule) else "instant"


Schedule = Annotated[
    Annotated[AwareDatetime, Tag("instant")] | Annotated[LocalSchedule, Tag("local")],
    Discriminator(_schedule_tag),
]


# --- Sendout --------------------------------------------------------------------------


class SendOptions(_Strict):
    """The API's own `options`, by its own names and values."""

    if_duplicate_check_unspecified: Literal["allow_one", "allow_multiple"] = "allow_one"
    if_version_unspecified: Literal["reuse_last_active"] | None = None

    @property
    def allow_multiple(self) -> bool:
        return self.if_duplicate_check_unspecified == "allow_multiple"

    def as_api(self) -> dict[str, str]:
        """The request's `options` object (only the values that are set)."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


# A duration: days, hours, minutes, seconds in that order, e.g. 2h, 1d, 1h30m, 90s.
DURATION_PATTERN = (r"^(\d+d(\d+h)?(\d+m)?(\d+s)?|\d+h(\d+m)?(\d+s)?|\d+m(\d+s)?|\d+s)$")
Duration = Annotated[str, Field(json_schema_extra={"pattern": DURATION_PATTERN},
                                description="a duration: 2h, 1d, 1h30m, 90s")]


class Wave(_Strict):
    """One wave of a rollout: who (cumulative `percent` or `count` of the audience, the
    same people on every machine) and the gate before it (`after`, `approve`,
    `max_rejected_percent`, all measured on the previous wave)."""

    percent: Annotated[float, Field(gt=0, le=100, description=(
        "cumulative share of the audience, 0.01 to 100"))] | None = None
    count: Annotated[int, Field(ge=1, description=(
        "cumulative number of recipients (instead of percent)"))] | None = None
    after: Duration | None = Field(default=None, description=(
        "time since the previous wave's last accepted outcome"))
    approve: bool = Field(default=False, description=(
        "the wave waits for a committed `promote:` record naming it"))
    max_rejected_percent: Annotated[float, Field(ge=0, le=100)] | None = Field(
        default=None, description="halt if more of the previous wave was rejected")

    @field_validator("after")
    @classmethod
    def _duration(cls, text: str | None) -> str | None:
        if text is not None and not re.match(DURATION_PATTERN, text):
            raise ValueError(f"not a duration: {text!r}; write e.g. 2h, 1d, 1h30m or 90s")
        return text

    @model_validator(mode="after")
    def _one_size(self) -> Wave:
        if (self.percent is None) == (self.count is None):
            raise ValueError("a wave needs exactly one of percent or count")
        if self.percent is not None and round(self.percent * 100) < 1:
            raise ValueError("percent must be at least 0.01")
        return self


class Promotion(_Strict):
    """A reviewed approval of a rollout wave's `approve: true` gate, committed with the
    manifest (Git history says who merged it; `by` says who approved)."""

    wave: Annotated[int, Field(ge=1, description="the wave's number, 1 = the first")]
    by: Annotated[str, Field(min_length=1, description="who approved (name or handle)")]
    note: str | None = None


class Sendout(_Strict):
    """One campaign (and version) to one audience, with variables and a schedule."""

    kind: Literal["Sendout"]
    name: Name
    description: str | None = None
    campaign: CampaignName
    version: str | None = None
    audience: Name | AudienceSpec
    options: SendOptions = Field(default_factory=SendOptions)
    schedule: Schedule | None = Field(
        default=None, description="ISO 8601 with a time zone offset (sent as scheduledAt), "
        "or {local: wall-clock time, timezone: auto | IANA name} per recipient")
    quiet_hours: QuietHours | Literal["none"] | None = Field(
        default=None, description="overrides declare.yaml's quiet_hours; `none`: no quiet hours")
    priority: int = Field(default=0, description="frequency caps: higher goes first")
    exempt: bool = Field(default=False, description="transactional: no frequency cap")
    vars: dict[str, Scalar] = Field(default_factory=dict)
    variables: dict[VariableName, str] = Field(
        default_factory=dict, description="campaign variable name -> Jinja template"
    )
    round: Annotated[int, Field(ge=1)] = 1
    max_recipients: Annotated[int, Field(ge=0)] | None = None
    enabled: bool = True
    rollout: Annotated[list[Wave], Field(min_length=1, max_length=20, description=(
        "send in waves, each after a gate (see the README's Staged rollouts)"))] | None = None
    promote: list[Promotion] = Field(default_factory=list, description=(
        "approvals of rollout waves with `approve: true`"))

    @field_validator("rollout")
    @classmethod
    def _waves_grow(cls, waves: list[Wave] | None) -> list[Wave] | None:
        if not waves:
            return waves
        first = waves[0]
        if first.after is not None or first.max_rejected_percent is not None:
            raise ValueError("wave 1 has no previous wave: `after` and "
                             "`max_rejected_percent` belong on later waves (use `schedule` "
                             "to delay the first)")
        for kind in ("percent", "count"):
            sizes = [(i, getattr(w, kind)) for i, w in enumerate(waves, 1)
                     if getattr(w, kind) is not None]
            for (_, before), (number, size) in pairwise(sizes):
                if size < before:
                    raise ValueError(f"wave {number}'s {kind} {size:g} is smaller than an "
                                     f"earlier wave's {before:g}: {kind} is cumulative")
        return waves

    @field_validator("promote")
    @classmethod
    def _promotions_name_gates(cls, promote: list[Promotion],
                               info: ValidationInfo) -> list[Promotion]:
        waves = info.data.get("rollout") or []
        for promotion in promote:
            number = promotion.wave
            if number > len(waves) or not waves[number - 1].approve:
                raise ValueError(
                    f"names wave {number}, but the rollout has no wave {number} with "
                    "`approve: true`")
        return promote


Manifest = Annotated[Campaign | Audience | Sendout, Field(discriminator="kind")]
KINDS = ("Campaign", "Audience", "Sendout")

__all__ = [
    "KINDS",
    "Audience",
    "AudienceRef",
    "AudienceSpec",
    "Campaign",
    "CampaignVersion",
    "CsvSource",
    "InlineSource",
    "JsonlSource",
    "LocalSchedule",
    "Manifest",
    "Promotion",
    "QuietHours",
    "SendOptions",
    "Sendout",
    "Source",
    "Wave",
    "ZoneName",
    "ZoneRule",
]
