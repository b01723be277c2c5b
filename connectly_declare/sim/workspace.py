"""A simulator catalog built from a workspace's Campaign manifests, so a demo needs no
catalog file: every declared campaign exists, finalized, with its declared versions.

The one builder for both `apply --sim` and `connectly-declare sim`; which business it
serves is the caller's (`workspace.environments.sim_business_id`).
"""

from __future__ import annotations

from connectly_declare.sim.catalog import Catalog, catalog_from_campaigns
from connectly_declare.workspace.load import Workspace


def catalog_from_workspace(workspace: Workspace, api_key: str, business_id: str) -> Catalog:
    """A one-business catalog of the workspace's campaigns, accepting `api_key`; a send
    naming no version needs what `Campaign.variables_for(None)` says (as `validate`)."""
    return catalog_from_campaigns(business_id, api_key, (
        (c.name, [(v.version, list(v.variables)) for v in c.versions],
         c.variables_for(None) or [])
        for c in workspace.campaigns.values()
    ))


__all__ = ["catalog_from_workspace"]
