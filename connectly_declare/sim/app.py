"""The simulator as an ASGI application.

`POST /v1/businesses/{businessId}/send/campaigns` is the vendor's endpoint (see
engine.py for what it does with a body); everything under `/_sim/` is the simulator's own
read-only inspection (plus a reset), and `/openapi.json` describes the vendor endpoint.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from connectly_declare.sim.catalog import Catalog
from connectly_declare.sim.engine import (
    BadRequest,
    RepeatStyle,
    SimState,
    parse_request,
    request_error,
)
from connectly_declare.sim.faults import FaultConfig, FaultDice, TokenBuckets
from connectly_declare.sim.openapi import openapi_document

SEND_PATH = "/v1/businesses/{businessId}/send/campaigns"
MAX_BODY_BYTES = 16 * 1024 * 1024


class DroppedConnection(httpx.RemoteProtocolError):
    """Raised by the app to drop a connection after accepting a request.

    Behind uvicorn the response head has been sent, so the server closes the socket and a
    real client sees a truncated response (httpx.RemoteProtocolError). In-process, through
    httpx.ASGITransport, the exception itself reaches the client, which therefore sees the
    same exception class in both cases."""


def _dumps(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


class Simulator:
    """A simulated Connectly: its state and the ASGI app (`.app`) serving it.

    `clock` (monotonic seconds) drives the rate limit; `wall_clock` (epoch seconds) stamps
    deliveries. `rate_limit=None` (or 0) turns the rate limit off. `seed` makes faults and
    generated ids reproducible (FaultConfig.seed is used when `seed` is None).
    `repeat_style` says how an allow_one repeat is answered: ``page`` (ENTRY_INVALID on the
    group, as the vendor page's last example) or ``silent`` (rejected without an error)."""

    def __init__(
        self,
        catalog: Catalog,
        *,
        faults: FaultConfig | None = None,
        rate_limit: float | None = 200.0,
        burst: int | None = None,
        seed: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        repeat_style: RepeatStyle = "page",
    ) -> None:
        self.faults = faults or FaultConfig()
        seed = seed if seed is not None else self.faults.seed
        self.state = SimState(catalog, seed, repeat_style)
        self._dice = FaultDice(self.faults, seed)
        self.buckets = TokenBuckets(rate_limit, burst, clock) if rate_limit else None
        self._wall_clock = wall_clock
        self.app = Starlette(routes=[
            Route(SEND_PATH, _Endpoint(self), methods=["POST"]),
            Route("/_sim/deliveries", self._deliveries, methods=["GET"]),
            Route("/_sim/counts", self._counts, methods=["GET"]),
            Route("/_sim/stats", self._stats, methods=["GET"]),
            Route("/_sim/catalog", self._catalog, methods=["GET"]),
            Route("/_sim/reset", self._reset, methods=["POST"]),
            Route("/openapi.json", self._openapi, methods=["GET"]),
        ])
        self.app.state.simulator = self

    # --- the vendor endpoint -----------------------------------------------------------

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = self.state
        stats = state.stats
        stats.requests += 1
        business = scope["path_params"]["businessId"]
        api_key = None
        for name, value in scope["headers"]:
            if name == b"x-api-key":
                api_key = value.decode("latin-1")
                break
        if not state.authorized(business, api_key):
            return await self._respond(send, 401, request_error(
                401, "Request presented invalid credentials: a missing or wrong X-API-Key."))
        if self.buckets is not None:
            wait = self.buckets.take(api_key or "")
            if wait:
                stats.rate_limited += 1
                return await self._too_many(send, wait, "the rate limit of this API key")
        draw = self._dice.roll()
        if draw.delay_s:
            await asyncio.sleep(draw.delay_s)
        if draw.error_500:
            stats.injected_500 += 1
            return await self._respond(send, 500, request_error(
                500, "Injected fault: internal server error."))
        if draw.error_429:
            stats.injected_429 += 1
            return await self._too_many(send, 1.0 / (self.buckets.rate if self.buckets else 200),
                                        "an injected fault")
        try:
            parsed = parse_request(await _read_body(receive))
        except BadRequest as exc:
            return await self._respond(send, 400, request_error(400, str(exc)))
        status, payload = state.send(business, parsed, self._wall_clock())
        if draw.drop_after_accept:
            stats.injected_drops += 1
            body = _dumps(payload)
            await send({"type": "http.response.start", "status": status, "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode())]})
            raise DroppedConnection("simulated: connection dropped after accepting the request")
        if draw.timeout_after_accept:
            stats.injected_timeouts += 1
            await _hold_until_disconnect(receive, self.faults.hang_seconds)
        await self._respond(send, status, payload)

    async def _too_many(self, send: Send, wait: float, why: str) -> None:
        retry_after = f"{max(wait, 0.001):.3f}".rstrip("0").rstrip(".")
        await self._respond(send, 429, request_error(
            429, f"Too many requests ({why}); retry after {retry_after} s."),
            [(b"retry-after", retry_after.encode())])

    async def _respond(self, send: Send, status: int, payload: Any,
                       headers: list[tuple[bytes, bytes]] | None = None) -> None:
        stats = self.state.stats
        stats.statuses[status] = stats.statuses.get(status, 0) + 1
        body = _dumps(payload)
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *(headers or [])]})
        await send({"type": "http.response.body", "body": body})

    # --- inspection ----------------------------------------------------------------------

    async def _deliveries(self, request: Request) -> Response:
        q = request.query_params
        found = self.state.find(business=q.get("business"), campaign=q.get("campaign"),
                                client=q.get("client"))
        return JSONResponse({"deliveries": [d.as_json() for d in found]})

    async def _counts(self, request: Request) -> Response:
        q = request.query_params
        counts = Counter((d.business, d.campaign, d.client) for d in self.state.find(
            business=q.get("business"), campaign=q.get("campaign"), client=q.get("client")))
        return JSONResponse({"counts": [
            {"business": b, "campaign": c, "client": k, "count": n}
            for (b, c, k), n in sorted(counts.items())
        ]})

    async def _stats(self, request: Request) -> Response:
        state = self.state
        return JSONResponse(state.stats.as_json() | {
            "deliveries": state.delivery_count, "sendouts": state.sendout_count})

    async def _catalog(self, request: Request) -> Response:
        # API keys are secrets even in a simulator's output.
        return JSONResponse(self.state.catalog.model_dump(mode="json", exclude={
            "businesses": {"__all__": {"api_keys"}}}))

    async def _reset(self, request: Request) -> Response:
        self.state.reset()
        if self.buckets is not None:
            self.buckets.reset()
        return JSONResponse({"reset": True})

    async def _openapi(self, request: Request) -> Response:
        return JSONResponse(openapi_document())


class _Endpoint:
    """The vendor endpoint as a raw ASGI app (an object, so Starlette routes to it as ASGI):
    it must control the response bytes to drop a connection mid-response."""

    def __init__(self, simulator: Simulator) -> None:
        self.simulator = simulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.simulator.handle(scope, receive, send)


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise BadRequest(f"the body is larger than {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _hold_until_disconnect(receive: Receive, seconds: float) -> None:
    """Wait `seconds`, or less if the client hangs up first (the next ASGI message after
    the body is the disconnect)."""
    try:
        await asyncio.wait_for(receive(), timeout=seconds)
    except TimeoutError:
        pass


def create_app(
    catalog: Catalog,
    *,
    faults: FaultConfig | None = None,
    rate_limit: float | None = 200.0,
    burst: int | None = None,
    seed: int | None = None,
    clock: Callable[[], float] = time.monotonic,
    wall_clock: Callable[[], float] = time.time,
    repeat_style: RepeatStyle = "page",
) -> Starlette:
    """The simulator's ASGI app; its Simulator (state, stats) is `app.state.simulator`."""
    return Simulator(catalog, faults=faults, rate_limit=rate_limit, burst=burst, seed=seed,
                     clock=clock, wall_clock=wall_clock, repeat_style=repeat_style).app
