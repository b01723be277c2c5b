"""The simulator's catalog: businesses, their API keys and their campaigns.

A catalog is plain data, read from a YAML or JSON file (:func:`load_catalog`) or built from
plain tuples (:func:`catalog_from_campaigns`, which the workspace adapter uses). Ids left out
are derived from names (UUID 5), so a hand-written catalog gives the same ids on every run.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from connectly_declare.errors import DeclareError, Location, ManifestErrors, Problem

# A fixed namespace so derived ids are stable across runs and machines.
_ID_NAMESPACE = uuid.UUID("6f0b7c8e-2f5e-4b43-9a3c-5d0c6f1f2a10")
DEFAULT_VERSION_LABEL = "v1"

NonEmpty = Annotated[str, Field(min_length=1)]


def derived_id(*parts: str) -> str:
    """A stable UUID for a thing named by `parts` (business, campaign, version...)."""
    return str(uuid.uuid5(_ID_NAMESPACE, "\x1f".join(parts)))


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SimVersion(_Frozen):
    """One version of a campaign: addressable by its label or its id."""

    label: NonEmpty
    id: NonEmpty
    variables: list[str] = Field(default_factory=list)


class SimCampaign(_Frozen):
    """A campaign as the vendor's inbox knows it. Only finalized campaigns can be sent.

    `variables` are those a send without a version must give; they default to the latest
    (last listed) version's. A campaign listed without versions gets one, labelled `v1`.
    """

    name: NonEmpty
    id: NonEmpty
    state: Literal["finalized", "draft"] = "finalized"
    versions: list[SimVersion]
    variables: list[str]

    @model_validator(mode="before")
    @classmethod
    def _fill_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            return data
        data = dict(data)
        data.setdefault("id", derived_id("campaign", data["name"]))
        versions = data.get("versions")
        if versions is None or versions == []:
            versions = [{"label": DEFAULT_VERSION_LABEL, "variables": data.get("variables", [])}]
        if isinstance(versions, list):
            filled = []
            for v in versions:
                if isinstance(v, dict) and isinstance(v.get("label"), str):
                    v = {"id": derived_id("version", str(data["id"]), v["label"]), **v}
                filled.append(v)
            data["versions"] = filled
            last = filled[-1]
            if "variables" not in data and isinstance(last, dict):
                data["variables"] = last.get("variables", [])
        return data

    @model_validator(mode="after")
    def _unique_versions(self) -> SimCampaign:
        seen: set[str] = set()
        for v in self.versions:
            for ref in dict.fromkeys((v.label, v.id)):
                if ref in seen:
                    raise ValueError(f"version {ref!r} is listed twice in campaign {self.name!r}")
                seen.add(ref)
        return self


class Business(_Frozen):
    """A business (the `{businessId}` of the URL), the API keys it accepts, its campaigns."""

    id: NonEmpty
    api_keys: Annotated[list[NonEmpty], Field(min_length=1)]
    campaigns: list[SimCampaign] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_campaigns(self) -> Business:
        names = [c.name for c in self.campaigns]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"campaign names listed twice in business {self.id!r}: {dupes}")
        return self


class Catalog(_Frozen):
    """Everything the simulator knows before its first request."""

    businesses: list[Business]

    @model_validator(mode="after")
    def _unique_businesses(self) -> Catalog:
        ids = [b.id for b in self.businesses]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"business ids listed twice: {dupes}")
        return self


def _problems(err: ValidationError, file: str) -> list[Problem]:
    out = []
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"])
        message = e["msg"].removeprefix("Value error, ")
        out.append(Problem(Location(file), f"{where}: {message}" if where else message))
    return out


def load_catalog(path: str | Path) -> Catalog:
    """Read a catalog from a YAML (`.yaml`/`.yml`) or JSON file.

    Raises DeclareError naming the file on unreadable, unparsable or invalid content.
    """
    path = Path(path)
    hint = "see README.md, section Simulator, for the catalog format"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DeclareError(f"cannot read the simulator catalog: {exc}",
                           location=Location(str(path)), hint=hint) from exc
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise DeclareError(f"the simulator catalog is not valid JSON: {exc.msg}",
                           location=Location(str(path), exc.lineno, exc.colno), hint=hint) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = Location(str(path), mark.line + 1, mark.column + 1) if mark else Location(str(path))
        raise DeclareError(f"the simulator catalog is not valid YAML: "
                           f"{getattr(exc, 'problem', None) or exc}",
                           location=where, hint=hint) from exc
    try:
        return Catalog.model_validate(data)
    except ValidationError as exc:
        raise ManifestErrors(_problems(exc, str(path))) from exc


def catalog_from_campaigns(
    business_id: str,
    api_key: str,
    campaigns: Iterable[tuple[str, list[tuple[str, list[str]]], list[str]]],
) -> Catalog:
    """A one-business catalog from plain data: for each campaign its name, its versions as
    (label, variable names) and the variables of a send that names no version. Every
    campaign is finalized; ids are derived from the names. Raises DeclareError on
    inconsistent data (a version label listed twice, a campaign named twice)."""
    try:
        return Catalog(businesses=[Business(
            id=business_id,
            api_keys=[api_key],
            campaigns=[
                SimCampaign.model_validate({
                    "name": name,
                    "versions": [{"label": label, "variables": list(variables)}
                                 for label, variables in versions],
                    "variables": list(unversioned),
                })
                for name, versions, unversioned in campaigns
            ],
        )])
    except ValidationError as exc:
        raise ManifestErrors(_problems(exc, "")) from exc


__all__ = [
    "Business",
    "Catalog",
    "SimCampaign",
    "SimVersion",
    "catalog_from_campaigns",
    "derived_id",
    "load_catalog",
]
