"""A local Connectly simulator for demos, tests and benchmarks (`connectly-declare sim`).

- :mod:`catalog`: businesses, API keys and campaigns the simulator knows.
- :mod:`engine`: what the endpoint does with a body (no HTTP).
- :mod:`faults`: fault injection and the per-key rate limit.
- :mod:`app`: the ASGI app (`create_app`, `Simulator`).
- :mod:`server`: uvicorn on loopback (`serve_in_thread`, `run_server`).
- :mod:`openapi`: the OpenAPI document of the simulated endpoint.
"""

from connectly_declare.sim.app import DroppedConnection, Simulator, create_app
from connectly_declare.sim.catalog import (
    Business,
    Catalog,
    SimCampaign,
    SimVersion,
    catalog_from_campaigns,
    load_catalog,
)
from connectly_declare.sim.faults import FaultConfig
from connectly_declare.sim.server import run_server, serve_in_thread

__all__ = [
    "Business",
    "Catalog",
    "DroppedConnection",
    "FaultConfig",
    "SimCampaign",
    "SimVersion",
    "Simulator",
    "catalog_from_campaigns",
    "create_app",
    "load_catalog",
    "run_server",
    "serve_in_thread",
]
