"""DECLARE_SIM_RATE_LIMIT: the simulator's rate limit and the pacing against it, for
benchmarks (bench/bench_scale.py measures apply with it off and on); the real side never
reads it."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from connectly_declare.commands.apply_send import UNPACED, client_settings, sending_endpoint
from connectly_declare.commands.destination import (
    SIM_RATE_LIMIT_ENV,
    resolve_destination,
    sim_rate_limit,
)
from connectly_declare.errors import DeclareError
from connectly_declare.sim.catalog import catalog_from_campaigns
from connectly_declare.workspace.config import WorkspaceConfig


def test_the_variable_is_a_number_of_requests_per_second() -> None:
    assert sim_rate_limit({}) is None
    assert sim_rate_limit({SIM_RATE_LIMIT_ENV: " "}) is None
    assert sim_rate_limit({SIM_RATE_LIMIT_ENV: "0"}) == 0.0
    assert sim_rate_limit({SIM_RATE_LIMIT_ENV: "50"}) == 50.0
    for bad in ("fast", "-1", "inf", "nan"):
        with pytest.raises(DeclareError, match=SIM_RATE_LIMIT_ENV):
            sim_rate_limit({SIM_RATE_LIMIT_ENV: bad})


def test_pacing_follows_it_on_the_simulator_side_only(tmp_path: Path) -> None:
    config = WorkspaceConfig(business_id="b", requests_per_second=150)
    env = {SIM_RATE_LIMIT_ENV: "0", "CONNECTLY_API_KEY": "k"}

    def rate(sim: bool, environ: dict[str, str]) -> float:
        dest = resolve_destination(tmp_path, config, None, sim=sim, environ=environ)
        return client_settings(dest, "http://127.0.0.1:1").requests_per_second

    assert rate(True, env) == UNPACED
    assert rate(True, {**env, SIM_RATE_LIMIT_ENV: "20"}) == 20
    assert rate(True, {"CONNECTLY_API_KEY": "k"}) == 150  # unset: declare.yaml's
    assert rate(False, env) == 150  # never for real sends


@pytest.mark.parametrize(("value", "throttled"), [("1", True), ("0", False)])
def test_the_in_process_simulator_takes_its_limit_from_it(tmp_path: Path, value: str,
                                                           throttled: bool) -> None:
    dest = resolve_destination(tmp_path, WorkspaceConfig(), None, sim=True,
                               environ={SIM_RATE_LIMIT_ENV: value})
    key = dest.api_key.reveal()
    catalog = catalog_from_campaigns(dest.business_id, key, [("c", [("v1", ["x"])], [])])
    with sending_endpoint(dest, catalog) as url:
        endpoint = f"{url}/v1/businesses/{dest.business_id}/send/campaigns"
        # empty bodies: past the rate limit they are answered 400, within it never 429
        codes = [httpx.post(endpoint, headers={"X-API-Key": key}, content=b"").status_code
                 for _ in range(5)]
    assert (429 in codes) is throttled, codes
    assert codes[0] == 400
