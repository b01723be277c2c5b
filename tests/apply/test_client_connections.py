"""The client against a real HTTP/1.1 server on loopback: it never holds more than
`concurrency` connections, keeps them alive from request to request, and sends the key
on each of them."""

from __future__ import annotations

import asyncio
import json

from connectly_declare.apply.client import ClientSettings, ConnectlyClient, Secret

KEY = "k-loopback-456"
BODY = json.dumps({"data": [{
    "campaignId": "c1", "campaignName": "c", "campaignVersion": "v1", "sendoutId": "s1",
    "status": "created", "acceptedCount": 1, "rejectedCount": 0, "error": None}]}).encode()


class CountingServer:
    """Answers every POST with a 200 after a short pause, counting connections and how
    many requests are being answered at once."""

    def __init__(self) -> None:
        self.connections = 0
        self.requests = 0
        self.keys: set[str] = set()
        self.busy = 0
        self.most_busy = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                headers = dict(line.split(": ", 1) for line in
                               head.decode("latin-1").split("\r\n")[1:] if ": " in line)
                lower = {name.lower(): value for name, value in headers.items()}
                await reader.readexactly(int(lower.get("content-length", "0")))
                self.requests += 1
                self.keys.add(lower.get("x-api-key", ""))
                self.busy += 1
                self.most_busy = max(self.most_busy, self.busy)
                await asyncio.sleep(0.005)
                self.busy -= 1
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (len(BODY), BODY))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def test_at_most_concurrency_connections_each_kept_alive() -> None:
    counting = CountingServer()

    async def go() -> list[str]:
        server = await asyncio.start_server(counting.serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        settings = ClientSettings(f"http://127.0.0.1:{port}", "biz", Secret(KEY),
                                  requests_per_second=10_000, concurrency=4)
        try:
            async with ConnectlyClient(settings) as client:
                results = await asyncio.gather(*(
                    client.send([{"client": f"+1650555{n:04d}", "campaignName": "c"}], None)
                    for n in range(60)))
        finally:
            server.close()
            await server.wait_closed()
        return [result.kind for result in results]

    kinds = asyncio.run(go())
    assert kinds == ["answered"] * 60
    assert counting.requests == 60
    assert counting.most_busy == 4  # the bound is reached, never passed
    assert counting.connections == 4  # and each connection serves many requests
    assert counting.keys == {KEY}
