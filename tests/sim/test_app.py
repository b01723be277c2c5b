"""The simulated endpoint's behaviour, in process through httpx.ASGITransport."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from connectly_declare.sim import Catalog, DroppedConnection, FaultConfig, Simulator
from connectly_declare.sim.faults import FaultDice
from tests.sim.conftest import BUSINESS, KEY, SEND_URL, entry

pytestmark = pytest.mark.anyio

BASIC = "campaign_basic"
TWO_VERSIONS = "coupon campaign"  # v1.0 needs customername, product, coupon; v1.1 not coupon
V11_VARS = {"customername": "Ann", "product": "Tea"}


async def send(client: httpx.AsyncClient, entries: list[dict[str, Any]],
               **options: str) -> httpx.Response:
    body: dict[str, Any] = {"entries": entries}
    if options:
        body["options"] = options
    return await client.post(SEND_URL, json=body)


def summary(response: httpx.Response) -> list[tuple[Any, ...]]:
    return [(r["campaignName"], r["campaignVersion"], r["status"], r["acceptedCount"],
             r["rejectedCount"], r["error"] and r["error"]["code"])
            for r in response.json()["data"]]


async def deliveries(http: httpx.AsyncClient, **query: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = (
        await http.get("/_sim/deliveries", params=query)).json()["deliveries"]
    return found


# --- authentication --------------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "wrong"}, {"X-API-Key": ""}],
                         ids=["missing", "wrong", "empty"])
async def test_a_missing_or_wrong_key_is_401(client: httpx.AsyncClient,
                                             headers: dict[str, str]) -> None:
    client.headers.pop("X-API-Key")
    response = await client.post(SEND_URL, json={"entries": [entry("+16505551234", BASIC)]},
                                 headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "ERROR_TYPE_UNAUTHENTICATED"
    assert await deliveries(client) == []


async def test_a_key_only_opens_its_own_business(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/businesses/other/send/campaigns", json={"entries": []})
    assert response.status_code == 401


# --- malformed requests ----------------------------------------------------------------

E = {"client": "+16505551234", "campaignName": BASIC}


@pytest.mark.parametrize(("body", "message"), [
    ('{"entries": [', "not valid JSON"),
    ("[]", "must be a JSON object"),
    ('"entries"', "must be a JSON object"),
    ("[" * 100_000, "not valid JSON"),
    ({"entries": {"client": "+16505551234"}}, "entries: expected an array"),
    ({"entries": ["+16505551234"]}, "entries[0]: expected an object"),
    ({"entries": [{"campaignName": BASIC}]}, "entries[0].client: required string"),
    ({"entries": [E, {"client": "+16505551234"}]}, "entries[1].campaignName: required"),
    ({"entries": [{**E, "client": 16505551234}]}, "entries[0].client: required string, got"),
    ({"entries": [{**E, "campaignVersion": 1}]}, "entries[0].campaignVersion: expected a str"),
    ({"entries": [{**E, "variables": ["a"]}]}, "entries[0].variables: expected an object"),
    ({"entries": [{**E, "variables": {"a": 1}}]}, "entries[0].variables: expected an object"),
    ({"entries": [{**E, "scheduledAt": 1700000000}]}, "entries[0].scheduledAt: expected"),
    ({"entries": [E], "options": "allow_multiple"}, "options: expected an object"),
    ({"entries": [E], "options": {"if_duplicate_check_unspecified": "allow_two"}},
     "options.if_duplicate_check_unspecified: unknown value 'allow_two'"),
    ({"entries": [E], "options": {"if_version_unspecified": "newest"}},
     "options.if_version_unspecified: unknown value"),
    ({"entries": [E] * 1001}, "at most 1000 entries"),
], ids=lambda v: v if isinstance(v, str) and len(v) < 40 else None)
async def test_malformed_requests_are_400(client: httpx.AsyncClient, body: Any,
                                          message: str) -> None:
    if isinstance(body, str):
        response = await client.post(SEND_URL, content=body)
    else:
        response = await client.post(SEND_URL, json=body)
    assert response.status_code == 400
    assert message in response.json()["error"]["message"]
    assert await deliveries(client) == []


async def test_a_thousand_entries_are_one_request(client: httpx.AsyncClient) -> None:
    response = await send(client, [entry(f"+1650555{i:04d}", BASIC) for i in range(1000)])
    assert summary(response) == [(BASIC, response.json()["data"][0]["campaignVersion"],
                                  "created", 1000, 0, None)]


@pytest.mark.parametrize("body", [{}, {"entries": []}, {"entries": None},
                                  {"options": {"if_duplicate_check_unspecified": "allow_one"}}])
async def test_a_body_without_entries_is_answered_with_no_data(client: httpx.AsyncClient,
                                                               body: dict[str, Any]) -> None:
    response = await client.post(SEND_URL, json=body)
    assert (response.status_code, response.json()) == (200, {"data": []})


# --- grouping, sendouts ----------------------------------------------------------------


async def test_one_result_per_group_in_order_of_first_appearance(
    client: httpx.AsyncClient,
) -> None:
    response = await send(client, [
        entry("+16505550001", TWO_VERSIONS, variables=V11_VARS),
        entry("+16505550002", BASIC),
        entry("+16505550003", TWO_VERSIONS, campaignVersion="v1.1", variables=V11_VARS),
        entry("+16505550004", TWO_VERSIONS, variables=V11_VARS),
        entry("+16505550005", BASIC),
    ])
    assert response.status_code == 200
    data = response.json()["data"]
    assert [(r["campaignName"], r["acceptedCount"]) for r in data] == [
        (TWO_VERSIONS, 2), (BASIC, 2), (TWO_VERSIONS, 1)]
    assert data[2]["campaignVersion"] == "v1.1"
    # each group of one request gets its own sendout, even on the same version
    assert len({r["sendoutId"] for r in data}) == 3


async def test_created_then_updated(client: httpx.AsyncClient, sim: Simulator) -> None:
    first = await send(client, [entry("+16505550001", BASIC)])
    second = await send(client, [entry("+16505550002", BASIC)])
    versioned = await send(client, [entry("+16505550003", BASIC, campaignVersion="v1.0")])
    [a], [b], [c] = (r.json()["data"] for r in (first, second, versioned))
    assert (a["status"], b["status"], c["status"]) == ("created", "updated", "updated")
    assert a["sendoutId"] == b["sendoutId"] == c["sendoutId"]
    assert sim.state.sendout_count == 1


async def test_a_version_is_found_by_label_or_id(client: httpx.AsyncClient,
                                                 catalog: Catalog) -> None:
    version_id = next(c for c in catalog.businesses[0].campaigns
                      if c.name == BASIC).versions[0].id
    by_label = await send(client, [entry("+16505550001", BASIC, campaignVersion="v1.0")])
    by_id = await send(client, [entry("+16505550002", BASIC, campaignVersion=version_id)])
    assert summary(by_label)[0][2:] == ("created", 1, 0, None)
    assert summary(by_id)[0][1:] == (version_id, "updated", 1, 0, None)


async def test_sends_without_a_version_need_the_unversioned_variables(
    client: httpx.AsyncClient,
) -> None:
    # v1.1 is the latest version: `coupon` (v1.0 only) is not needed without a version
    without = await send(client, [entry("+16505550001", TWO_VERSIONS, variables=V11_VARS)])
    v10 = await send(client, [entry("+16505550002", TWO_VERSIONS, campaignVersion="v1.0",
                                    variables=V11_VARS)])
    assert summary(without)[0][2:] == ("created", 1, 0, None)
    assert summary(v10)[0][2:] == ("error", 0, 1, "ERROR_CODE_CAMPAIGN_ENTRY_INVALID")


# --- entry errors ----------------------------------------------------------------------


@pytest.mark.parametrize("bad", [
    {"client": "16505551234"},
    {"client": "+1(604) 585 2331"},
    {"client": "+0123456789"},
    {"client": "+16505551234\n"},
    {"client": "+1650555١٢٣٤"},  # Arabic-Indic digits
    {"client": ""},
    {"scheduledAt": "tomorrow"},
    {"scheduledAt": "2024-05-01T09:00:00"},  # no offset: ambiguous
    {"scheduledAt": "2024-02-30T09:00:00Z"},
    {"scheduledAt": "2030-05-01T09:00:00Z\n"},
    {"variables": {"username": "Jane"}},
    {"variables": None},
], ids=str)
async def test_an_invalid_entry_is_rejected_with_entry_invalid(
    client: httpx.AsyncClient, bad: dict[str, Any]
) -> None:
    good = entry("+16505550001", "campaign_with_variables",
                 variables={"username": "Jane", "product": "Tea"})
    response = await send(client, [{**good, "client": "+16505550002", **bad}])
    assert summary(response) == [("campaign_with_variables",
                                  response.json()["data"][0]["campaignVersion"], "error", 0, 1,
                                  "ERROR_CODE_CAMPAIGN_ENTRY_INVALID")]
    # in a group with accepted entries the group is sent and still carries the error
    mixed = await send(client, [good, {**good, "client": "+16505550002", **bad}])
    assert summary(mixed)[0][2:] == ("created", 1, 1, "ERROR_CODE_CAMPAIGN_ENTRY_INVALID")
    assert [d["client"] for d in await deliveries(client)] == ["+16505550001"]


@pytest.mark.parametrize("when", ["2030-05-01T09:00:00Z", "2030-05-01T09:00:00.5+02:00",
                                  "2030-05-01T09:00+05:30"])
async def test_a_scheduled_entry_is_kept_with_its_time(client: httpx.AsyncClient,
                                                       when: str) -> None:
    response = await send(client, [entry("+16505550001", BASIC, scheduledAt=when)])
    assert summary(response)[0][2:] == ("created", 1, 0, None)
    [kept] = await deliveries(client)
    assert kept["scheduledAt"] == when


async def test_a_client_twice_in_one_group_is_invalid_the_second_time(
    client: httpx.AsyncClient,
) -> None:
    twice = [entry("+16505550001", BASIC), entry("+16505550001", BASIC)]
    response = await send(client, twice, if_duplicate_check_unspecified="allow_multiple")
    assert summary(response)[0][2:] == ("created", 1, 1, "ERROR_CODE_CAMPAIGN_ENTRY_INVALID")


async def test_not_found_and_draft_statuses(client: httpx.AsyncClient) -> None:
    missing = await send(client, [entry("+16505550001", "nope")])
    draft = await send(client, [entry("+16505550001", "draft campaign")])
    both = await send(client, [entry("+16505550001", "nope"),
                               entry("+16505550001", "draft campaign")])
    mixed = await send(client, [entry("+16505550001", "nope"), entry("+16505550001", BASIC)])
    assert missing.status_code == 404
    assert draft.status_code == 409
    assert summary(draft) == [("draft campaign", None, "error", 0, 1,
                               "ERROR_CODE_CAMPAIGN_NOT_FINALIZED")]
    # [decided] 404/409 only when every group failed that way
    assert both.status_code == 200
    assert mixed.status_code == 200
    assert [r[2] for r in summary(mixed)] == ["error", "created"]


# --- the duplicate check ---------------------------------------------------------------


async def test_allow_one_never_sends_a_campaign_twice_to_a_client(
    client: httpx.AsyncClient,
) -> None:
    one = entry("+16505550001", TWO_VERSIONS, variables={**V11_VARS, "coupon": "X"})
    first = await send(client, [one])
    again = await send(client, [one, entry("+16505550002", TWO_VERSIONS, variables=V11_VARS)])
    other_version = await send(client, [{**one, "campaignVersion": "v1.0"}])
    assert summary(first)[0][2:] == ("created", 1, 0, None)
    # The repeat is rejected and reported as the vendor's page does (the default): the
    # group carries ENTRY_INVALID, and is still updated with the new client
    assert summary(again)[0][2:] == ("updated", 1, 1, "ERROR_CODE_CAMPAIGN_ENTRY_INVALID")
    # any version: the check is per (campaign, client); nothing accepted: status error
    assert summary(other_version)[0][2:] == ("error", 0, 1, "ERROR_CODE_CAMPAIGN_ENTRY_INVALID")
    counts = (await client.get("/_sim/counts")).json()["counts"]
    assert [(c["client"], c["count"]) for c in counts] == [("+16505550001", 1),
                                                          ("+16505550002", 1)]


async def test_silent_repeat_style_rejects_repeats_without_an_error(catalog: Catalog) -> None:
    sim = Simulator(catalog, rate_limit=None, seed=1, repeat_style="silent")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app),
                                 base_url="http://sim", headers={"X-API-Key": KEY}) as client:
        one = entry("+16505550001", TWO_VERSIONS, variables={**V11_VARS, "coupon": "X"})
        first = await send(client, [one])
        again = await send(client, [one, entry("+16505550002", TWO_VERSIONS,
                                                variables=V11_VARS)])
        other_version = await send(client, [{**one, "campaignVersion": "v1.0"}])
    assert summary(first)[0][2:] == ("created", 1, 0, None)
    assert summary(again)[0][2:] == ("updated", 1, 1, None)
    assert summary(other_version)[0][2:] == ("created", 0, 1, None)
    assert sorted(d.client for d in sim.state.deliveries) == ["+16505550001", "+16505550002"]


def test_an_unknown_repeat_style_is_refused(catalog: Catalog) -> None:
    with pytest.raises(ValueError, match="repeat_style"):
        Simulator(catalog, repeat_style="loud")  # type: ignore[arg-type]


async def test_allow_multiple_lifts_the_duplicate_check(client: httpx.AsyncClient) -> None:
    one = [entry("+16505550001", BASIC)]
    await send(client, one)
    twice = await send(client, one, if_duplicate_check_unspecified="allow_multiple")
    thrice = await send(client, one, if_duplicate_check_unspecified="allow_one")
    assert summary(twice)[0][2:] == ("updated", 1, 0, None)
    # allow_one again: a repeat, reported as the page does
    assert summary(thrice)[0][2:] == ("error", 0, 1, "ERROR_CODE_CAMPAIGN_ENTRY_INVALID")
    assert len(await deliveries(client, client="+16505550001")) == 2


# --- the rate limit --------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_the_rate_limit_is_a_token_bucket_per_key(catalog: Catalog) -> None:
    clock = FakeClock()
    two_keys = catalog.model_copy(update={"businesses": [catalog.businesses[0].model_copy(
        update={"api_keys": [KEY, "second-key"]})]})
    sim = Simulator(two_keys, rate_limit=200, clock=clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app),
                                 base_url="http://sim", headers={"X-API-Key": KEY}) as c:
        statuses = [(await c.post(SEND_URL, json={})).status_code for _ in range(201)]
        assert statuses == [200] * 200 + [429]  # burst 200
        limited = await c.post(SEND_URL, json={"entries": [entry("+16505550001", BASIC)]})
        assert limited.status_code == 429
        assert float(limited.headers["Retry-After"]) == pytest.approx(1 / 200)
        assert limited.json()["error"]["code"] == "ERROR_CODE_RATE_LIMITED"
        other = await c.post(SEND_URL, json={}, headers={"X-API-Key": "second-key"})
        assert other.status_code == 200  # a bucket per key
        clock.now += 0.0501  # 10 tokens and a bit
        refilled = [(await c.post(SEND_URL, json={})).status_code for _ in range(11)]
        assert refilled == [200] * 10 + [429]
        stats = (await c.get("/_sim/stats")).json()
    assert stats["requests"] == 201 + 1 + 1 + 11
    assert stats["tooManyRequests"] == stats["rateLimited"] == 3
    assert sim.state.deliveries == []


async def test_burst_and_rate_are_configurable(catalog: Catalog) -> None:
    clock = FakeClock()
    sim = Simulator(catalog, rate_limit=10, burst=2, clock=clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app),
                                 base_url="http://sim", headers={"X-API-Key": KEY}) as c:
        statuses = [(await c.post(SEND_URL, json={})).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        assert float((await c.post(SEND_URL, json={})).headers["Retry-After"]) == 0.1


# --- inspection ------------------------------------------------------------------------


async def test_every_accepted_entry_is_kept(catalog: Catalog) -> None:
    sim = Simulator(catalog, rate_limit=None, wall_clock=lambda: 1234.5)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app),
                                 base_url="http://sim", headers={"X-API-Key": KEY}) as c:
        response = await c.post(SEND_URL, json={"entries": [
            entry("+16505550001", "campaign_with_variables", campaignVersion="v1.0",
                  variables={"username": "Jane", "product": "Tea"},
                  scheduledAt="2030-01-01T00:00:00Z"),
            entry("+16505550002", BASIC)]})
        [kept_1, kept_2] = (await c.get("/_sim/deliveries")).json()["deliveries"]
        only_2 = (await c.get("/_sim/deliveries", params={"campaign": BASIC})).json()
        none = (await c.get("/_sim/deliveries",
                            params={"campaign": BASIC, "client": "+16505550001"})).json()
    result_1 = response.json()["data"][0]
    assert kept_1 == {
        "request": 1, "business": BUSINESS, "campaign": "campaign_with_variables",
        "campaignId": result_1["campaignId"], "version": "v1.0",
        "versionId": catalog.businesses[0].campaigns[2].versions[0].id,
        "sendoutId": result_1["sendoutId"], "client": "+16505550001",
        "variables": {"username": "Jane", "product": "Tea"},
        "scheduledAt": "2030-01-01T00:00:00Z", "at": 1234.5,
    }
    assert kept_2["client"] == "+16505550002" and kept_2["variables"] is None
    assert only_2 == {"deliveries": [kept_2]}
    assert none == {"deliveries": []}


async def test_stats_count_requests_statuses_and_entries(client: httpx.AsyncClient) -> None:
    await send(client, [entry("+16505550001", BASIC), entry("bad", BASIC)])
    await send(client, [entry("+16505550001", "nope")])
    await client.post(SEND_URL, content="{")
    await client.post(SEND_URL, json={}, headers={"X-API-Key": "wrong"})
    stats = (await client.get("/_sim/stats")).json()
    assert stats == {
        "requests": 4, "statuses": {"200": 1, "400": 1, "401": 1, "404": 1},
        "rateLimited": 0, "tooManyRequests": 0,
        "injected": {"500": 0, "429": 0, "timeout": 0, "drop": 0},
        "entries": {"accepted": 1, "rejected": 2}, "deliveries": 1, "sendouts": 1,
    }


async def test_reset_forgets_everything_but_the_catalog(client: httpx.AsyncClient) -> None:
    await send(client, [entry("+16505550001", BASIC)])
    assert (await client.post("/_sim/reset")).json() == {"reset": True}
    assert await deliveries(client) == []
    assert (await client.get("/_sim/stats")).json()["requests"] == 0
    again = await send(client, [entry("+16505550001", BASIC)])
    assert summary(again)[0][2:] == ("created", 1, 0, None)


async def test_the_catalog_route_hides_api_keys(client: httpx.AsyncClient) -> None:
    shown = (await client.get("/_sim/catalog")).text
    assert KEY not in shown
    assert "campaignv3" in shown


# --- faults (in process; over real sockets in test_server.py) --------------------------

ONE = {"entries": [entry("+16505550001", BASIC)]}


def faulty(catalog: Catalog, **faults: Any) -> httpx.AsyncClient:
    sim = Simulator(catalog, faults=FaultConfig(**faults), rate_limit=None)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app),
                             base_url="http://sim", headers={"X-API-Key": KEY})


async def test_injected_500_records_nothing(catalog: Catalog) -> None:
    async with faulty(catalog, error_500_rate=1.0) as c:
        response = await c.post(SEND_URL, json=ONE)
        assert response.status_code == 500
        assert response.json()["error"]["type"] == "ERROR_TYPE_INTERNAL"
        assert await deliveries(c) == []
        assert (await c.get("/_sim/stats")).json()["injected"]["500"] == 1


async def test_injected_429_has_retry_after_and_records_nothing(catalog: Catalog) -> None:
    async with faulty(catalog, error_429_rate=1.0) as c:
        response = await c.post(SEND_URL, json=ONE)
        assert response.status_code == 429
        assert float(response.headers["Retry-After"]) > 0
        assert await deliveries(c) == []
        stats = (await c.get("/_sim/stats")).json()
        assert (stats["injected"]["429"], stats["tooManyRequests"]) == (1, 1)


async def test_a_dropped_connection_comes_after_accepting(catalog: Catalog) -> None:
    async with faulty(catalog, drop_after_accept_rate=1.0) as c:
        with pytest.raises(httpx.RemoteProtocolError) as raised:
            await c.post(SEND_URL, json=ONE)
        assert isinstance(raised.value, DroppedConnection)
        assert [d["client"] for d in await deliveries(c)] == ["+16505550001"]
        assert (await c.get("/_sim/stats")).json()["injected"]["drop"] == 1


async def test_a_held_response_comes_after_accepting(catalog: Catalog) -> None:
    # In process no client timeout fires, so the answer arrives after hang_seconds; over a
    # socket the client's timeout fires first (test_server.py).
    async with faulty(catalog, timeout_after_accept_rate=1.0, hang_seconds=0.01) as c:
        response = await c.post(SEND_URL, json=ONE)
        assert summary(response)[0][2:] == ("created", 1, 0, None)
        assert (await c.get("/_sim/stats")).json()["injected"]["timeout"] == 1


async def test_faults_are_reproducible_with_a_seed(catalog: Catalog) -> None:
    async def run(seed: int) -> list[int]:
        sim = Simulator(catalog, rate_limit=None, faults=FaultConfig(
            error_500_rate=0.3, error_429_rate=0.3, seed=seed))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app),
                                     base_url="http://sim", headers={"X-API-Key": KEY}) as c:
            return [(await c.post(SEND_URL, json={})).status_code for _ in range(40)]

    first, same, other = await run(7), await run(7), await run(8)
    assert first == same
    assert first != other
    assert {200, 429, 500} <= set(first)


def test_fault_config_checks_its_rates() -> None:
    with pytest.raises(ValueError, match="error_500_rate must be between 0 and 1"):
        FaultConfig(error_500_rate=1.5)
    with pytest.raises(ValueError, match="latency_ms must not be negative"):
        FaultConfig(latency_ms=-1)


def test_latency_is_fixed_plus_seeded_jitter() -> None:
    config = FaultConfig(latency_ms=20, jitter_ms=10, seed=5)
    dice, same_seed = FaultDice(config, 5), FaultDice(config, 5)
    delays = [dice.roll().delay_s for _ in range(50)]
    again = [same_seed.roll().delay_s for _ in range(50)]
    assert delays == again
    assert all(0.020 <= d <= 0.030 for d in delays)
    assert len(set(delays)) > 1
    assert FaultDice(FaultConfig(), None).roll() == FaultDice(FaultConfig(), 1).roll()


async def test_latency_delays_but_changes_nothing(catalog: Catalog) -> None:
    async with faulty(catalog, latency_ms=1, jitter_ms=1) as c:
        response = await c.post(SEND_URL, json=ONE)
        assert summary(response)[0][2:] == ("created", 1, 0, None)
