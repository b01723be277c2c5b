from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectly_declare.sim import Catalog, Simulator, load_catalog

PAGE_CATALOG = Path(__file__).parent / "data" / "page-catalog.yaml"
BUSINESS = "page-business"
KEY = "page-key"
SEND_URL = f"/v1/businesses/{BUSINESS}/send/campaigns"


@pytest.fixture
def catalog() -> Catalog:
    return load_catalog(PAGE_CATALOG)


@pytest.fixture
def sim(catalog: Catalog) -> Simulator:
    return Simulator(catalog, rate_limit=None, seed=1)


@pytest.fixture
async def client(sim: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=sim.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim",
                                 headers={"X-API-Key": KEY}) as c:
        yield c


def entry(client: str, campaign: str, **extra: Any) -> dict[str, Any]:
    return {"client": client, "campaignName": campaign, **extra}
