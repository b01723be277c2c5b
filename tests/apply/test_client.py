"""The HTTP client against plain handler functions (httpx.MockTransport): what each kind
of answer or failure becomes, and where the API key goes."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from connectly_declare.apply.client import (
    ClientSettings,
    ConnectlyClient,
    Secret,
    SendResult,
    make_limiter,
)

KEY = "k-very-secret-123"
ENTRIES = [{"client": "+16505550001", "campaignName": "c"}]


def run(handler: Callable[[httpx.Request], httpx.Response], *, before: Any = None,
        keep_trying: Any = None,
        **settings: Any) -> tuple[SendResult, ConnectlyClient, list[float]]:
    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)

    async def go() -> tuple[SendResult, ConnectlyClient]:
        client = ConnectlyClient(
            ClientSettings("http://api.test", "biz/1", Secret(KEY), **settings),
            transport=httpx.MockTransport(handler), sleep=sleep, rng=random.Random(1))
        async with client:
            return await client.send(ENTRIES, {"if_duplicate_check_unspecified": "allow_one"},
                                     before_request=before, keep_trying=keep_trying), client

    result, client = asyncio.run(go())
    return result, client, slept


def ok(accepted: int = 1, rejected: int = 0) -> httpx.Response:
    return httpx.Response(200, json={"data": [{
        "campaignId": "c1", "campaignName": "c", "campaignVersion": "v1", "sendoutId": "s1",
        "status": "created", "acceptedCount": accepted, "rejectedCount": rejected,
        "error": None}]})


def test_answered_request_carries_key_only_in_header_and_body_as_sent() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return ok()

    result, _, _ = run(handler)
    assert result.kind == "answered"
    assert result.groups[0].sendout_id == "s1" and result.groups[0].accepted_count == 1
    (request,) = seen
    assert request.url.raw_path == b"/v1/businesses/biz%2F1/send/campaigns"
    assert request.headers["X-API-Key"] == KEY
    assert KEY not in str(request.url)
    assert json.loads(request.content) == {
        "entries": ENTRIES, "options": {"if_duplicate_check_unspecified": "allow_one"}}


def test_429_waits_retry_after_then_retries_and_counts() -> None:
    answers = iter([httpx.Response(429, headers={"Retry-After": "0.25"}),
                    httpx.Response(429, headers={"Retry-After": "0.5"}), ok()])
    calls: list[int] = []

    async def before() -> None:
        calls.append(1)

    result, client, slept = run(lambda r: next(answers), before=before)
    assert result.kind == "answered" and result.throttled == 2 and result.attempts == 3
    assert client.throttled == 2 and client.requests == 3
    assert slept[0] >= 0.25 and slept[1] >= 0.5  # at least Retry-After, plus jitter
    assert calls == [1]  # the intent hook runs once, not once per attempt


def test_endless_429_gives_up_as_not_sent() -> None:
    result, _, _ = run(lambda r: httpx.Response(429, headers={"Retry-After": "0"}),
                       max_throttle_retries=3)
    assert result.kind == "not_sent" and result.throttled == 4


def test_stopping_ends_retries_of_what_was_not_processed() -> None:
    result, client, _ = run(lambda r: httpx.Response(429, headers={"Retry-After": "0"}),
                            keep_trying=lambda: False)
    assert result.kind == "not_sent" and client.requests == 1


def test_connection_refused_is_retried_with_backoff_then_not_sent() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    result, client, slept = run(handler, max_connect_retries=2)
    # three attempts, none of them a request the server saw
    assert result.kind == "not_sent" and result.attempts == 3 and client.requests == 0
    assert len(slept) == 2
    message = (result.error or {})["message"]
    assert "Connection refused" in message and "could not reach" in message
    assert "the request was never sent" in message


def test_connection_refused_then_success() -> None:
    answers: list[Any] = [httpx.ConnectError("refused"), ok()]

    def handler(request: httpx.Request) -> httpx.Response:
        item = answers.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    assert run(handler)[0].kind == "answered"


@pytest.mark.parametrize("exc", [httpx.ReadTimeout("timed out"),
                                 httpx.RemoteProtocolError("Server disconnected"),
                                 httpx.ReadError("reset by peer"),
                                 httpx.WriteTimeout("write timed out")])
def test_failures_after_sending_leave_the_outcome_unknown(exc: Exception) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    result, client, _ = run(handler)
    assert result.kind == "unknown" and client.requests == 1  # never retried by the client


@pytest.mark.parametrize(("status", "kind"), [(500, "unknown"), (502, "unknown"),
                                              (503, "unknown"), (401, "unauthorized"),
                                              (400, "refused"), (404, "refused"),
                                              (409, "refused")])
def test_status_codes(status: int, kind: str) -> None:
    body = {"error": {"code": f"E{status}", "message": "m"}}
    result, _, _ = run(lambda r: httpx.Response(status, json=body))
    assert result.kind == kind and result.http_status == status
    assert result.error == body["error"]


@pytest.mark.parametrize("body", [b"not json", b'{"data": {}}', b'{"data": [1]}', b"[]"])
def test_a_200_that_is_not_the_documented_shape_is_unknown(body: bytes) -> None:
    result, _, _ = run(lambda r: httpx.Response(200, content=body))
    assert result.kind == "unknown"


def test_the_key_does_not_show_in_reprs() -> None:
    secret = Secret(KEY)
    settings = ClientSettings("http://api.test", "b", secret)
    client = ConnectlyClient(settings)
    for text in (repr(secret), str(secret), repr(settings), repr(client), f"{settings}"):
        assert KEY not in text
    with pytest.raises(TypeError):
        import pickle
        pickle.dumps(secret)
    asyncio.run(client.aclose())


def test_the_limiter_holds_a_fifth_of_a_second_not_a_whole_second() -> None:
    # A full second's bucket (200) at start would spend the server's whole burst at once.
    limiter = make_limiter(200.0)
    assert limiter.max_rate == 40 and limiter.time_period == pytest.approx(0.2)
    assert make_limiter(4.0).max_rate == 1


@pytest.mark.parametrize(("status", "body", "words"), [
    # a 404/409 carries its groups' errors in data[], as a 200 does
    (404, {"data": [{"status": "error", "acceptedCount": 0, "rejectedCount": 1, "error": {
        "code": "ERROR_CODE_CAMPAIGN_NOT_FOUND", "message": "Campaign not found"}}]},
     {"code": "ERROR_CODE_CAMPAIGN_NOT_FOUND", "message": "Campaign not found"}),
    (409, {"data": [{"status": "error", "error": {
        "code": "ERROR_CODE_CAMPAIGN_NOT_FINALIZED", "message": "Campaign is not finalized"}}]},
     {"code": "ERROR_CODE_CAMPAIGN_NOT_FINALIZED", "message": "Campaign is not finalized"}),
    (400, {"error": {"code": "ERROR_CODE_MALFORMED_REQUEST", "message": "bad"}},
     {"code": "ERROR_CODE_MALFORMED_REQUEST", "message": "bad"}),
    (503, {"message": "maintenance"}, {"message": "maintenance"}),
    (502, "not json", {"message": "HTTP 502"}),  # only when the body says nothing
], ids=["404-data", "409-data", "400-top-level", "503-message", "502-nothing"])
def test_every_status_keeps_the_servers_words(status: int, body: object,
                                              words: dict[str, str]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if isinstance(body, str):
            return httpx.Response(status, text=body)
        return httpx.Response(status, json=body)

    result, _, _ = run(handler)
    assert result.http_status == status
    assert {k: (result.error or {}).get(k) for k in words} == words
