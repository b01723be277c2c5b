"""Replays every request/response example of the vendor's page (Connectly's "send
campaigns" page, copied into the requests below), in the page's order, against one simulator
seeded with tests/sim/data/page-catalog.yaml, and compares the answers field by field.

Bodies are copied from the page verbatim except where a comment says otherwise. What is
not compared, and why, is said next to each example; sendout ids are generated, so only
their identity (same / different / null) is compared."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from connectly_declare.sim import Catalog, Simulator
from tests.sim.conftest import KEY, SEND_URL

pytestmark = pytest.mark.anyio

ERROR_ENTRY_INVALID = {
    "message": "Campaign entry is invalid",
    "type": "ERROR_TYPE_INVALID_REQUEST",
    "code": "ERROR_CODE_CAMPAIGN_ENTRY_INVALID",
    "userTitle": "Campaign entry is invalid",
    "userMessage": "Please check the inputs to the campaign entry.",
}


def compare(got: dict[str, Any], want: dict[str, Any], *, skip: tuple[str, ...] = ()) -> None:
    """Every field of the page's result equals ours, except those in `skip` and the
    sendout id (generated), of which only null-ness is compared."""
    assert set(got) == set(want)
    for field in want:
        if field in skip:
            continue
        if field == "sendoutId":
            assert (got[field] is None) == (want[field] is None), field
        else:
            assert got[field] == want[field], field


async def post(client: httpx.AsyncClient, body: str | dict[str, Any]) -> httpx.Response:
    content = body if isinstance(body, str) else json.dumps(body)
    return await client.post(SEND_URL, content=content,
                             headers={"Content-Type": "application/json"})


# --- "Examples:" section, replayed in order against one simulator ----------------------

SIMPLE_REQUEST = {
    "entries": [
        {
            # The page's request says "campaign_test" but its answer, and every later
            # example that shares this sendout, say "campaignv3": the name is the only
            # field changed, so the answers can be compared whole.
            "client": "+123456789",
            "campaignName": "campaignv3",
            "variables": {"client": "pablo", "name": "test2"},
        }
    ]
}
SIMPLE_RESPONSE = {
    "campaignId": "2963626c-90ea-43e5-9b66-4ce70f003fe3",
    "campaignName": "campaignv3",
    "campaignVersion": "018c5c51-8631-28b5-3c81-b70ecf14faef",
    "sendoutId": "183e801b-1438-4177-b283-909135096e69",
    "status": "created",
    "acceptedCount": 1,
    "rejectedCount": 0,
    "error": None,
}
# Verbatim; the page's point is that without "entries" the answer is empty.
NO_ENTRIES_REQUEST = """{
    "client": "+123456789",
    "campaignName": "campaignv3",
    "variables": {
        "client": "pablo",
        "name": "test2"
    },
    "campaignVersion": "018c4a55-f3df-580c-1629-602f3b14d190"
}"""
# The page shows "campaรฑa": its text was mis-decoded; the name is "campaña".
WRONG_NAME_REQUEST = {"entries": [{"client": "+123456789", "campaignName": "campaña",
                                   "variables": {"client": "pablo", "name": "test2"}}]}
WRONG_NAME_RESPONSE = {
    "campaignId": None,
    "campaignName": "campaña",
    "campaignVersion": None,
    "sendoutId": None,
    "status": "error",
    "acceptedCount": 0,
    "rejectedCount": 1,
    "error": {
        "message": "Campaign not found",
        "type": "ERROR_TYPE_NOT_FOUND",
        "code": "ERROR_CODE_CAMPAIGN_NOT_FOUND",
        "userTitle": "Campaign not found",
        "userMessage": "Please review the campaign name and/or campaign id.",
    },
}
WRONG_VERSION_REQUEST = {"entries": [{
    "client": "+123456789", "campaignName": "campaignv3",
    "variables": {"client": "pablo", "name": "test2"},
    "campaignVersion": "018c4a55-f3df-580c-1629-602f3b14d190"}]}
WRONG_VERSION_RESPONSE = {
    "campaignId": "2963626c-90ea-43e5-9b66-4ce70f003fe3",
    "campaignName": "campaignv3",
    "campaignVersion": "018c4a55-f3df-580c-1629-602f3b14d190",
    "sendoutId": None,
    "status": "error",
    "acceptedCount": 0,
    "rejectedCount": 1,
    "error": {
        "message": "Campaign version not found",
        "type": "ERROR_TYPE_NOT_FOUND",
        "code": "ERROR_CODE_CAMPAIGN_VERSION_NOT_FOUND",
        "userTitle": "Campaign version not found",
        "userMessage": "Please review the campaign version.",
    },
}
MISSING_VARIABLE_REQUEST = {"entries": [{"client": "+123456789", "campaignName": "campaignv3",
                                         "variables": {"client": "pablo"}}]}
MISSING_VARIABLE_RESPONSE = {
    "campaignId": "2963626c-90ea-43e5-9b66-4ce70f003fe3",
    "campaignName": "campaignv3",
    "campaignVersion": "018c5c51-8631-28b5-3c81-b70ecf14faef",
    "sendoutId": "183e801b-1438-4177-b283-909135096e69",
    "status": "error",
    "acceptedCount": 0,
    "rejectedCount": 1,
    "error": ERROR_ENTRY_INVALID,
}


async def test_the_pages_examples_in_order(client: httpx.AsyncClient) -> None:
    # "Simple body request"
    first = await post(client, SIMPLE_REQUEST)
    assert first.status_code == 200
    [got] = first.json()["data"]
    compare(got, SIMPLE_RESPONSE)
    sendout = got["sendoutId"]

    # "If you send the campaign again the status shows as Updated": the page does not
    # show that request. Sent to the same client it would be rejected (allow_one, the
    # default: sim/engine.py's rules), so it goes to another client, with the page's answer.
    again = {"entries": [{**SIMPLE_REQUEST["entries"][0], "client": "+123456788"}]}
    second = await post(client, again)
    assert second.status_code == 200
    [got] = second.json()["data"]
    compare(got, {**SIMPLE_RESPONSE, "status": "updated"})
    assert got["sendoutId"] == sendout  # the page shows the same sendout id

    # "If you send body without entries" -> {"data": []}
    empty = await post(client, NO_ENTRIES_REQUEST)
    assert (empty.status_code, empty.json()) == (200, {"data": []})

    # "If you specify a wrong campaign name": every group not found -> 404 (sim/engine.py's rules)
    wrong_name = await post(client, WRONG_NAME_REQUEST)
    assert wrong_name.status_code == 404
    [got] = wrong_name.json()["data"]
    compare(got, WRONG_NAME_RESPONSE)

    # "If you specify a wrong campaign version" -> 404 as well
    wrong_version = await post(client, WRONG_VERSION_REQUEST)
    assert wrong_version.status_code == 404
    [got] = wrong_version.json()["data"]
    compare(got, WRONG_VERSION_RESPONSE)

    # "If you don't specify all the variables": a per-entry error, so 200; the group
    # names the sendout it would have joined (the one created above, as on the page).
    missing = await post(client, MISSING_VARIABLE_REQUEST)
    assert missing.status_code == 200
    [got] = missing.json()["data"]
    compare(got, MISSING_VARIABLE_RESPONSE)
    assert got["sendoutId"] == sendout

    deliveries = (await client.get("/_sim/deliveries?campaign=campaignv3")).json()["deliveries"]
    assert [d["client"] for d in deliveries] == ["+123456789", "+123456788"]


# --- the HTTP example at the end of the page -------------------------------------------

HTTP_EXAMPLE_REQUEST = """{
  "entries": [
    {
      "client": "+16505551234",
      "campaignName": "campaign 2023 11 17"
    },
    {
      "client": "+16505551235",
      "campaignName": "campaign 2023 11 18",
      "variables": {
        "customername": "John Doe",
        "product": "Sofia AI"
      }
    },
    {
      "client": "+16505551235",
      "campaignName": "campaign 2023 11 18",
      "variables": {
        "customername": "John Doe",
        "product": "Sofia AI"
      },
      "campaignVersion": "v1.0"
    }
  ],
  "options": {
    "if_version_unspecified": "reuse_last_active",
    "if_duplicate_check_unspecified": "allow_one"
  }
}"""
HTTP_EXAMPLE_RESPONSE: list[dict[str, Any]] = [
    {"campaignId": "10f041c3-25b4-4f3b-adb0-889d98476e7a", "campaignName": "local 2023 29",
     "campaignVersion": "v1.0", "sendoutId": "0d300213-1889-448d-b1e5-7503fe4be68f",
     "status": "created", "acceptedCount": 1, "rejectedCount": 0, "error": None},
    {"campaignId": "10f041c3-25b4-4f3b-adb0-889d98476e7a", "campaignName": "local 2023 29",
     "campaignVersion": "v1.0", "sendoutId": "0d300213-1889-448d-b1e5-7503fe4be68f",
     "status": "error", "acceptedCount": 1, "rejectedCount": 0, "error": None},
    {"campaignId": "10f041c3-25b4-4f3b-adb0-889d98476e7a", "campaignName": "local 2023 29",
     "campaignVersion": "v1.1", "sendoutId": "0d300213-1889-448d-b1e5-7503fe4be68f",
     "status": "error", "acceptedCount": 0, "rejectedCount": 1, "error": ERROR_ENTRY_INVALID},
]


async def test_the_pages_http_example(client: httpx.AsyncClient) -> None:
    response = await post(client, HTTP_EXAMPLE_REQUEST)
    assert response.status_code == 200
    got = response.json()["data"]
    want = HTTP_EXAMPLE_RESPONSE
    assert len(got) == len(want) == 3  # one result per (campaignName, campaignVersion) group

    # The page's answer was not made from its request: all three results name one campaign
    # ("local 2023 29", one id) where the request names two, so campaignName and
    # campaignId are compared with the request instead; and it shows one sendout id for
    # two campaigns, so sendout ids are compared for identity below.
    requested = ["campaign 2023 11 17", "campaign 2023 11 18", "campaign 2023 11 18"]
    assert [r["campaignName"] for r in got] == requested
    assert got[1]["campaignId"] == got[2]["campaignId"] != got[0]["campaignId"]

    # Result 1: as the page, except campaignVersion: the page shows the label "v1.0" for an
    # entry without a version, where its first example shows the version's id; the sim
    # answers the id (of v1.0, the campaign's only version).
    compare(got[0], want[0], skip=("campaignName", "campaignId", "campaignVersion"))

    # Result 2: the page's status "error" with one accepted entry and no error contradicts
    # itself (an accepted entry is sent, in a created or updated sendout): status is
    # "created"; counts and error are the page's. campaignVersion: as for result 1 (the id
    # of v1.1, the latest version).
    compare(got[1], want[1],
            skip=("campaignName", "campaignId", "campaignVersion", "status"))
    assert got[1]["status"] == "created"

    # Result 3: the same client again, for the same campaign (v1.0, every variable given):
    # a repeat under allow_one. The page answers it `error`, rejectedCount 1 and
    # ERROR_CODE_CAMPAIGN_ENTRY_INVALID (API.md "How a repeat is reported"); so does the
    # sim by default. Except campaignVersion (the page says "v1.1", the request "v1.0"; the
    # sim echoes the request) and sendoutId (the page names the other groups' sendout for
    # an entry that was not accepted; no v1.0 sendout exists, so it is null).
    compare(got[2], want[2], skip=("campaignName", "campaignId", "campaignVersion", "sendoutId"))
    assert got[2]["campaignVersion"] == "v1.0"
    assert got[2]["sendoutId"] is None

    catalog = (await client.get("/_sim/catalog")).json()["businesses"][0]["campaigns"]
    by_name = {c["name"]: c for c in catalog}
    assert got[0]["campaignVersion"] == by_name["campaign 2023 11 17"]["versions"][0]["id"]
    assert got[1]["campaignVersion"] == by_name["campaign 2023 11 18"]["versions"][1]["id"]
    assert got[0]["sendoutId"] != got[1]["sendoutId"]
    # The repeat was not delivered: +16505551235 received "campaign 2023 11 18" once.
    deliveries = (await client.get("/_sim/deliveries?campaign=campaign 2023 11 18")).json()
    assert [d["client"] for d in deliveries["deliveries"]] == ["+16505551235"]


async def test_the_pages_http_example_with_silent_repeats(catalog: Catalog) -> None:
    # `--repeat-style silent`: the variant a real server could plausibly use; the repeat is
    # rejected (counted, not delivered) without an error.
    sim = Simulator(catalog, rate_limit=None, seed=1, repeat_style="silent")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app),
                                 base_url="http://sim", headers={"X-API-Key": KEY}) as client:
        response = await post(client, HTTP_EXAMPLE_REQUEST)
    assert response.status_code == 200
    got = response.json()["data"]
    assert [(r["acceptedCount"], r["rejectedCount"], r["error"]) for r in got] == [
        (1, 0, None), (1, 0, None), (0, 1, None)]
    assert [d.client for d in sim.state.find(campaign="campaign 2023 11 18")] == [
        "+16505551235"]


async def test_a_genuinely_invalid_entry_carries_the_same_code_as_a_repeat(
        client: httpx.AsyncClient) -> None:
    # API.md: a repeat and an invalid entry can carry the same code; the client must not
    # tell them apart by the code alone.
    body = {"entries": [{"client": "+16505551239", "campaignName": "campaign 2023 11 18",
                         "campaignVersion": "v1.0", "variables": {"customername": "x"}}]}
    [got] = (await post(client, body)).json()["data"]
    assert (got["status"], got["rejectedCount"], got["error"]) == (
        "error", 1, ERROR_ENTRY_INVALID)


# --- request-only examples (the page shows no answer to them) --------------------------


@pytest.mark.parametrize("body", [
    # "Basic entry"
    {"entries": [{"client": "+16505551236", "campaignName": "campaign_basic"}]},
    # "Entry with variables"
    {"entries": [{"client": "+16505551237", "campaignName": "campaign_with_variables",
                  "variables": {"username": "JaneDoe", "product": "Smart Watch"}}]},
    # "Options"
    {"options": {"if_duplicate_check_unspecified": "allow_multiple"},
     "entries": [{"client": "+14155558234", "campaignName": "campaign",
                  "variables": {"key": "value"}}]},
], ids=["basic-entry", "entry-with-variables", "options"])
async def test_the_pages_entry_examples_are_accepted(
    client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    response = await post(client, body)
    assert response.status_code == 200
    [got] = response.json()["data"]
    assert (got["status"], got["acceptedCount"], got["rejectedCount"], got["error"]) == (
        "created", 1, 0, None)


# "Multiple Campaigns", verbatim: a fragment with trailing commas, so not JSON.
MULTIPLE_CAMPAIGNS = """"entries": [
    {
      "client": "+14155558234",
      "campaignName": "campaign_A",
      "campaignVersion": "v1.0",
      "variables": {"key1": "value1", "key2": "value2"},
    },
    {
      "client": "+14155559345",
      "campaignName": "campaign_A",
      "variables": {"key1": "value3", "key2": "value4"},
    },
    {
      "client": "+14155550456",
      "campaignName": "campaign_B",
      "campaignVersion": "v1.0",
      "variables": {"Date": "value5", "Name": "value6","Price":"value7"},
    }
  ]"""


async def test_the_pages_multiple_campaigns_example(client: httpx.AsyncClient) -> None:
    verbatim = await post(client, MULTIPLE_CAMPAIGNS)
    assert verbatim.status_code == 400
    assert "not valid JSON" in verbatim.json()["error"]["message"]

    repaired = "{" + MULTIPLE_CAMPAIGNS.replace("},\n    }", "}\n    }") + "}"
    response = await post(client, repaired)
    assert response.status_code == 200
    got = response.json()["data"]
    # Sendouts A (campaign_A v1.0), B (campaign_A, no version), C (campaign_B v1.0): one
    # result and one new sendout each, in order of first appearance.
    assert [(r["campaignName"], r["status"], r["acceptedCount"]) for r in got] == [
        ("campaign_A", "created", 1), ("campaign_A", "created", 1),
        ("campaign_B", "created", 1)]
    assert [r["campaignVersion"] for r in got][0::2] == ["v1.0", "v1.0"]
    assert len({r["sendoutId"] for r in got}) == 3
