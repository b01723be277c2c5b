"""The Connectly API client: one `POST .../send/campaigns` per call, paced, bounded, and
honest about what it knows.

What a call returns (:class:`SendResult`) says which of these happened:

- ``answered``     HTTP 200 with one result per group (parsed into :class:`GroupResult`)
- ``refused``      400/404/409 or another 4xx: the request was processed and refused whole
- ``unauthorized`` 401: the key is wrong; apply stops issuing requests
- ``not_sent``     the request provably never reached the server (connection refused,
                   connect timeout, DNS), or 429s outlasted their retries
- ``unknown``      5xx, read timeout, dropped connection, unreadable 200: the server may
                   have accepted the entries

The API key lives only inside :class:`Secret` and the httpx auth hook that puts it in the
``X-API-Key`` header; neither's repr shows it, and error texts are built from exception
types and messages that never include request headers.
"""

from __future__ import annotations

import asyncio
import json
import random
import ssl
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import httpx
from aiolimiter import AsyncLimiter

from connectly_declare.workspace.config import DEFAULT_CONCURRENCY

SendKind = Literal["answered", "refused", "unauthorized", "not_sent", "unknown"]
REDACTED = "***"


class Secret:
    """A string that never shows itself in repr/str/logs; `reveal()` is the one way out."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({REDACTED})"

    __str__ = __repr__

    def __reduce__(self) -> Any:  # never pickled into a crash dump with its value
        raise TypeError("a Secret cannot be pickled")


class _ApiKeyAuth(httpx.Auth):
    """Adds `X-API-Key` at send time, so the key is not in the client's default headers."""

    def __init__(self, key: Secret) -> None:
        self._key = key

    def auth_flow(self, request: httpx.Request) -> Any:
        request.headers["X-API-Key"] = self._key.reveal()
        yield request

    def __repr__(self) -> str:
        return f"_ApiKeyAuth({REDACTED})"


@dataclass(frozen=True, slots=True)
class GroupResult:
    """One `data[]` item of a 200 response."""

    status: str  # created / updated / error
    accepted_count: int
    rejected_count: int
    sendout_id: str | None
    campaign_name: str | None
    campaign_version: str | None
    error: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class SendResult:
    """What one call to :meth:`ConnectlyClient.send` established."""

    kind: SendKind
    http_status: int | None = None
    groups: tuple[GroupResult, ...] = ()
    error: dict[str, Any] | None = None  # the API's error object or {"message": ...}
    attempts: int = 1
    throttled: int = 0  # 429s waited out


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """Everything the client needs, as plain values (the key wrapped in a Secret)."""

    base_url: str
    business_id: str
    api_key: Secret
    requests_per_second: float = 200.0
    concurrency: int = DEFAULT_CONCURRENCY
    timeout_seconds: float = 30.0
    # 429s mean "not processed"; past this many in a row the batch is left not sent.
    max_throttle_retries: int = 50
    # connection refused / DNS / connect timeout: retried with backoff this many times.
    max_connect_retries: int = 5
    backoff_base_seconds: float = 0.2
    backoff_max_seconds: float = 10.0
    # Pacing bucket depth: the server's bucket holds 200, ours only `burst`, so the server
    # always keeps headroom for network jitter and we never spend its burst at start.
    burst: int = 0  # 0: a fifth of a second's worth (at least 1)
    extra_headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def endpoint(self) -> str:
        return (f"{self.base_url.rstrip('/')}/v1/businesses/"
                f"{quote(self.business_id, safe='')}/send/campaigns")


def make_limiter(requests_per_second: float, burst: int = 0) -> AsyncLimiter:
    """A leaky bucket at `requests_per_second` that holds only `burst` requests.

    aiolimiter's `AsyncLimiter(rate, 1)` lets `rate` requests through at once on start;
    against a server bucket of the same size that spends all its headroom immediately and
    turns any later jitter into 429s. `AsyncLimiter(burst, burst / rate)` has the same rate
    with a shallow bucket.
    """
    # A fifth of a second: deep enough to catch up after a short stall of the event loop
    # (a busy machine), shallow enough that the server's bucket of 200 always keeps headroom.
    depth = burst or max(1, int(requests_per_second / 5))
    return AsyncLimiter(depth, depth / requests_per_second)


def _describe(exc: BaseException) -> str:
    # httpx messages name the URL at most, never headers; the type tells timeouts apart.
    text = str(exc).strip() or "no details"
    return f"{type(exc).__name__}: {text}"


def _error_of(response: httpx.Response) -> dict[str, Any]:
    """The server's own words for a non-200 answer: the top-level `error` object, else the
    first `data[].error` (a 404/409 carries its groups' errors there, as a 200 does), else a
    top-level `message`; the HTTP status only when the body says nothing."""
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        body = None
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            return err
        data = body.get("data")
        if isinstance(data, list):
            for item in data:
                if isinstance(item, dict) and isinstance(item.get("error"), dict):
                    return dict(item["error"])
        if isinstance(body.get("message"), str):
            return {"message": body["message"]}
    return {"message": f"HTTP {response.status_code}"}


def host_of(url: str) -> str:
    """The host (and port) of `url`, never its user info: what an error may name."""
    parts = urlsplit(url)
    host = parts.hostname or url
    return f"{host}:{parts.port}" if parts.port else host


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def parse_groups(body: Any) -> tuple[GroupResult, ...] | None:
    """The `data[]` of a 200 body, or None when it is not the documented shape."""
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        return None
    groups = []
    for item in body["data"]:
        if not isinstance(item, dict):
            return None
        err = item.get("error")
        groups.append(GroupResult(
            status=str(item.get("status") or ""),
            accepted_count=_int(item.get("acceptedCount")),
            rejected_count=_int(item.get("rejectedCount")),
            sendout_id=item.get("sendoutId") if isinstance(item.get("sendoutId"), str) else None,
            campaign_name=item.get("campaignName")
            if isinstance(item.get("campaignName"), str) else None,
            campaign_version=item.get("campaignVersion")
            if isinstance(item.get("campaignVersion"), str) else None,
            error=err if isinstance(err, dict) else None,
        ))
    return tuple(groups)


def _retry_after(response: httpx.Response, fallback: float) -> float:
    raw = response.headers.get("Retry-After", "")
    try:
        value = float(raw)
    except ValueError:
        return fallback
    if value != value:  # NaN
        return fallback
    return min(max(value, 0.0), 60.0)


class ConnectlyClient:
    """Async client over at most `concurrency` keep-alive connections. Use as `async with`.

    Each connection is its own one-connection httpx client, lent to one request at a time.
    One httpx pool of `concurrency` connections would do the same, but httpcore re-checks
    every pooled socket (a poll and a peer lookup each) and counts the idle ones once per
    connection, on every request and every response: at 16 connections that was a quarter
    of apply's CPU, more than the API's 200 requests/s leave room for. With one connection
    per pool the check is one socket. A given `transport` (tests) is shared by one client.
    """

    def __init__(
        self,
        settings: ClientSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Any] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.limiter = make_limiter(settings.requests_per_second, settings.burst)
        self._transport = transport
        self._idle: list[httpx.AsyncClient] = []  # connections not lent out
        self._open: list[httpx.AsyncClient] = []  # every client made, to close
        self._slots = asyncio.Semaphore(max(1, settings.concurrency))
        self._tls: ssl.SSLContext | None = None  # one verifying context for every connection
        self.requests = 0  # HTTP requests that reached the server (429s included)
        self.throttled = 0

    def _connection(self) -> httpx.AsyncClient:
        if self._idle:
            return self._idle.pop()
        if self._transport is not None and self._open:
            return self._open[0]  # one shared client over the given transport
        size = self.settings.concurrency if self._transport is not None else 1
        if self._tls is None:
            self._tls = httpx.create_ssl_context()  # what httpx makes by default, once
        http = httpx.AsyncClient(
            verify=self._tls,
            auth=_ApiKeyAuth(self.settings.api_key),
            timeout=httpx.Timeout(self.settings.timeout_seconds),
            limits=httpx.Limits(max_connections=size, max_keepalive_connections=size),
            transport=self._transport,
            headers={"Content-Type": "application/json", **self.settings.extra_headers},
        )
        self._open.append(http)
        return http

    async def _post(self, content: bytes) -> httpx.Response:
        async with self._slots:
            http = self._connection()
            try:
                return await http.post(self.settings.endpoint, content=content)
            finally:
                if self._transport is None:
                    self._idle.append(http)

    async def __aenter__(self) -> ConnectlyClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        opened, self._open, self._idle = self._open, [], []
        for http in opened:
            await http.aclose()

    def __repr__(self) -> str:
        return f"ConnectlyClient({self.settings.endpoint!r})"

    def _backoff(self, attempt: int) -> float:
        base = min(self.settings.backoff_max_seconds,
                   self.settings.backoff_base_seconds * 2.0 ** attempt)
        return base * (0.5 + self._rng.random() / 2)

    async def send(self, entries: Sequence[Mapping[str, Any]],
                   options: Mapping[str, str] | None, *,
                   before_request: Callable[[], Awaitable[None]] | None = None,
                   keep_trying: Callable[[], bool] | None = None) -> SendResult:
        """POST one request; retry what provably was not processed; classify the rest.

        `before_request` runs once, after the first rate-limit token and before the first
        byte is sent: apply writes the batch's intent there, so a batch waiting for a token
        when a crash comes is not left in doubt. What it raises propagates.
        `keep_trying()` False ends the retries of what was provably not processed (429s,
        refused connections) with a `not_sent` result: apply is stopping."""
        body: dict[str, Any] = {"entries": list(entries)}
        if options:
            body["options"] = dict(options)
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        throttled = connect_failures = attempts = 0
        while True:
            attempts += 1
            await self.limiter.acquire()
            if before_request is not None:
                await before_request()
                before_request = None
            # Counted once it may have reached the server: a summary that says "in N
            # requests" must not count connections that were refused.
            self.requests += 1
            try:
                response = await self._post(content)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.UnsupportedProtocol,
                    httpx.LocalProtocolError) as exc:
                # The request never left: safe to retry, and safe to call "not sent".
                self.requests -= 1
                connect_failures += 1
                if (connect_failures > self.settings.max_connect_retries
                        or isinstance(exc, httpx.UnsupportedProtocol | httpx.LocalProtocolError)
                        or (keep_trying is not None and not keep_trying())):
                    return SendResult("not_sent", None, (), {"message": self._unreachable(exc)},
                                      attempts, throttled)
                await self._sleep(self._backoff(connect_failures - 1))
                continue
            except httpx.PoolTimeout as exc:
                # Waiting for a pooled connection: nothing was written yet.
                self.requests -= 1
                return SendResult("not_sent", None, (), {"message": _describe(exc)},
                                  attempts, throttled)
            except httpx.TransportError as exc:
                # Read/write timeouts, dropped connections: the server may have acted.
                return SendResult("unknown", None, (), {"message": _describe(exc)},
                                  attempts, throttled)
            result = self._classify(response, attempts, throttled)
            if result is not None:
                return result
            throttled += 1
            self.throttled += 1
            if throttled > self.settings.max_throttle_retries or (
                    keep_trying is not None and not keep_trying()):
                return SendResult("not_sent", 429, (), _error_of(response), attempts, throttled)
            wait = _retry_after(response, self._backoff(min(throttled, 6)))
            # Jitter so that workers told the same Retry-After do not return in lockstep.
            await self._sleep(wait + self._rng.uniform(0.0, max(0.05, wait / 2)))

    def _unreachable(self, exc: BaseException) -> str:
        return (f"could not reach {host_of(self.settings.base_url)} "
                f"(the request was never sent): {_describe(exc)}")

    def _classify(self, response: httpx.Response, attempts: int,
                  throttled: int) -> SendResult | None:
        code = response.status_code
        if code == 429:
            return None
        if code == 200:
            try:
                groups = parse_groups(response.json())
            except (ValueError, UnicodeDecodeError):
                groups = None
            if groups is None:
                return SendResult("unknown", code, (),
                                  {"message": "HTTP 200 with a body that is not {data: [...]}"},
                                  attempts, throttled)
            return SendResult("answered", code, groups, None, attempts, throttled)
        if code == 401:
            return SendResult("unauthorized", code, (), _error_of(response), attempts, throttled)
        if 400 <= code < 500:
            return SendResult("refused", code, (), _error_of(response), attempts, throttled)
        # 5xx and anything unexpected: the server may or may not have processed it.
        return SendResult("unknown", code, (), _error_of(response), attempts, throttled)


__all__ = [
    "ClientSettings",
    "ConnectlyClient",
    "GroupResult",
    "Secret",
    "SendKind",
    "SendResult",
    "host_of",
    "make_limiter",
    "parse_groups",
]
