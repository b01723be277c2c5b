"""The simulator's OpenAPI document, and property tests against it: random valid and
invalid bodies never get a 5xx (no faults are injected here) nor an answer outside the
documented shape."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectly_declare.sim import Simulator, load_catalog, serve_in_thread
from connectly_declare.sim.openapi import openapi_document
from tests.sim.conftest import BUSINESS, KEY, PAGE_CATALOG, SEND_URL

CHECKED_IN = Path(__file__).resolve().parents[2] / "schema" / "sim-openapi.json"
REGENERATE = ("python -c 'import connectly_declare.sim.openapi as o; o.main()' "
              "> schema/sim-openapi.json")
DOC = openapi_document()


def test_the_checked_in_document_is_the_served_one() -> None:
    assert json.loads(CHECKED_IN.read_text(encoding="utf-8")) == DOC, (
        f"schema/sim-openapi.json is stale; regenerate it: {REGENERATE}")
    with serve_in_thread(Simulator(load_catalog(PAGE_CATALOG)).app) as url:
        assert httpx.get(f"{url}/openapi.json").json() == DOC


def test_the_document_is_valid_json_schema_where_it_holds_schemas() -> None:
    for schema in DOC["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)


# --- schemathesis: bodies generated from the document, valid and invalid -----------------

SIM = Simulator(load_catalog(PAGE_CATALOG), rate_limit=None, seed=0)
SCHEMA = schemathesis.openapi.from_asgi("/openapi.json", SIM.app)


@SCHEMA.auth()
class _ApiKey:
    """The catalog's key; schemathesis's own checks also send none and wrong ones."""

    def get(self, case: schemathesis.Case, context: Any) -> str:
        return KEY

    def set(self, case: schemathesis.Case, data: str, context: Any) -> None:
        case.headers = {**(case.headers or {}), "X-API-Key": data}


@pytest.mark.slow  # ~5 s: each case also runs schemathesis's auth and header checks
@SCHEMA.parametrize()
@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
def test_schemathesis_finds_no_5xx_and_no_undocumented_answer(case: schemathesis.Case) -> None:
    case.path_parameters = {"businessId": BUSINESS}  # a business of the catalog
    case.call_and_validate()


# --- hypothesis: bodies that know the catalog, so entries are also accepted ---------------

_CATALOG = load_catalog(PAGE_CATALOG).businesses[0]
_NAMES = [c.name for c in _CATALOG.campaigns]
_VERSIONS = [ref for c in _CATALOG.campaigns for v in c.versions for ref in (v.label, v.id)]
_VARIABLES = sorted({n for c in _CATALOG.campaigns for v in c.versions for n in v.variables})

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                 max_size=3),
    max_leaves=6,
)
_clients = st.one_of(
    st.integers(1000000, 10**9).map(lambda n: f"+1650{n}"),
    st.sampled_from(["+1(604) 585 2331", "16505551234", "", "+0123456"]),
    st.text(max_size=16),
)
_entry = st.fixed_dictionaries(
    {"client": _clients, "campaignName": st.sampled_from(_NAMES) | st.text(max_size=10)},
    optional={
        "campaignVersion": st.none() | st.sampled_from(_VERSIONS) | st.text(max_size=6),
        "variables": st.none() | st.dictionaries(
            st.sampled_from(_VARIABLES) | st.text(max_size=4), st.text(max_size=6),
            max_size=4),
        "scheduledAt": st.none() | st.sampled_from(
            ["2030-01-01T00:00:00Z", "2030-01-01T09:30:00+02:00", "2030-13-01T00:00:00Z",
             "tomorrow"]) | st.text(max_size=20),
    },
)
# Entries a server would accept: a finalized campaign (and version) with its variables.
_FINALIZED = [c for c in _CATALOG.campaigns if c.state == "finalized"]
_SENDABLE = [(c.name, None, c.variables) for c in _FINALIZED] + [
    (c.name, v.label, v.variables) for c in _FINALIZED for v in c.versions]
_good_entry = st.tuples(st.sampled_from(_SENDABLE), st.integers(10**6, 10**9 - 1)).map(
    lambda t: {"client": f"+1650{t[1]}", "campaignName": t[0][0],
               **({"campaignVersion": t[0][1]} if t[0][1] else {}),
               "variables": {name: "x" for name in t[0][2]}})
_entry = st.one_of(_good_entry, _good_entry, _entry)
_options = st.fixed_dictionaries({}, optional={
    "if_duplicate_check_unspecified": st.sampled_from(["allow_one", "allow_multiple", "x"]),
    "if_version_unspecified": st.sampled_from(["reuse_last_active", "newest"]),
})
_valid_shape = st.fixed_dictionaries(
    {"entries": st.lists(_entry, max_size=25)}, optional={"options": _options})
# Any JSON at all, or a valid shape with one field replaced by any JSON value.
_mangled = st.tuples(_valid_shape, st.sampled_from(["entries", "options", "client",
                                                    "variables", "campaignVersion"]),
                     _json_values).map(lambda t: _mangle(*t))
_bodies = st.one_of(_valid_shape, _valid_shape, _mangled, _json_values)


def _mangle(body: dict[str, Any], field: str, value: Any) -> dict[str, Any]:
    if field in ("entries", "options"):
        return {**body, field: value}
    if body["entries"]:
        body["entries"][0] = {**body["entries"][0], field: value}
    return body


def _validator(status: int) -> jsonschema.Draft202012Validator:
    ref = DOC["paths"]["/v1/businesses/{businessId}/send/campaigns"]["post"]["responses"][
        str(status)]["content"]["application/json"]["schema"]["$ref"]
    return jsonschema.Draft202012Validator({"$ref": ref, "components": DOC["components"]})


VALIDATORS = {status: _validator(status) for status in (200, 400, 404, 409)}


@pytest.fixture(scope="module")
def http() -> Iterator[tuple[httpx.Client, Simulator]]:
    sim = Simulator(load_catalog(PAGE_CATALOG), rate_limit=None, seed=0)
    with serve_in_thread(sim.app) as url, httpx.Client(
            base_url=url, headers={"X-API-Key": KEY}) as client:
        yield client, sim
    # the bodies reached both sides: accepted entries and refused requests
    assert sim.state.stats.accepted > 0 and sim.state.stats.statuses.get(400), (
        sim.state.stats)


@given(body=_bodies)
@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
def test_random_bodies_get_documented_answers(http: tuple[httpx.Client, Simulator],
                                              body: Any) -> None:
    client, sim = http
    accepted_before = sim.state.stats.accepted
    response = client.post(SEND_URL, content=json.dumps(body))
    assert response.status_code in VALIDATORS, response.text
    payload = response.json()
    VALIDATORS[response.status_code].validate(payload)
    if response.status_code == 400:
        assert sim.state.stats.accepted == accepted_before
        return
    # one result per (campaignName, campaignVersion) group, in order of first appearance,
    # each counting every entry of its group once
    groups: dict[tuple[str, str | None], int] = {}
    for e in (body.get("entries") or []):
        key = (e["campaignName"], e.get("campaignVersion"))
        groups[key] = groups.get(key, 0) + 1
    results = payload["data"]
    assert [r["campaignName"] for r in results] == [name for name, _ in groups]
    assert [r["acceptedCount"] + r["rejectedCount"] for r in results] == list(groups.values())
    assert sim.state.stats.accepted == accepted_before + sum(r["acceptedCount"] for r in results)
