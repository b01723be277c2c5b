"""A simulator catalog built from a workspace's Campaign manifests, so a demo needs no
catalog file: every declared campaign exists, finalized, with its declared versions."""

from __future__ import annotations

from collections.abc import Mapping

from connectly_declare.sim.catalog import Catalog, catalog_from_campaigns
from connectly_declare.workspace.config import SIM_BUSINESS_ID
from connectly_declare.workspace.load import Workspace
from connectly_declare.workspace.manifests import Campaign


def unversioned_variables(campaign: Campaign) -> list[str]:
    """What a send without a version must give: the campaign's `variables` when the
    manifest sets them, else its latest (last listed) version's."""
    if "variables" in campaign.model_fields_set or not campaign.versions:
        return list(campaign.variables)
    return list(campaign.versions[-1].variables)


def workspace_business_id(workspace: Workspace, environ: Mapping[str, str]) -> str:
    """The business id `declare.yaml` names (directly or through its environment
    variable), else a fixed one."""
    config = workspace.config
    if config.business_id:
        return config.business_id
    if config.business_id_env and environ.get(config.business_id_env):
        return environ[config.business_id_env]
    return SIM_BUSINESS_ID


def catalog_from_workspace(workspace: Workspace, api_key: str, *,
                           business_id: str | None = None,
                           environ: Mapping[str, str] | None = None) -> Catalog:
    """A one-business catalog of the workspace's campaigns, accepting `api_key`."""
    business = business_id or workspace_business_id(workspace, environ or {})
    return catalog_from_campaigns(business, api_key, (
        (c.name, [(v.version, list(v.variables)) for v in c.versions], unversioned_variables(c))
        for c in workspace.campaigns.values()
    ))
