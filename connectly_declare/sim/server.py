"""Serving the simulator on loopback with uvicorn: in a background thread (tests,
`apply --sim`) or in the foreground until SIGINT/SIGTERM (`connectly-declare sim`)."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from types import FrameType

import uvicorn
from starlette.types import ASGIApp

from connectly_declare.errors import DeclareError
from connectly_declare.sim.app import DroppedConnection

# Requests held by the timeout fault end when their client hangs up; this bounds how long
# a shutdown waits for one whose client is still there.
SHUTDOWN_GRACE_S = 2.0
KEEP_ALIVE_S = 30  # idle keep-alive connections, seconds (see _config)


class _QuietDrops(logging.Filter):
    """Uvicorn logs the exception the app raises to drop a connection on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DroppedConnection)


_QUIET_DROPS = _QuietDrops()


def check_loopback(host: str) -> None:
    """Refuse to serve on anything but a loopback address: the simulator has no real
    authentication and keeps phone numbers in memory."""
    try:
        if host == "localhost" or ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise DeclareError(f"the simulator only listens on loopback, not on {host!r}",
                       hint="use --host 127.0.0.1 (the default) or ::1")


def _bind(host: str, port: int) -> socket.socket:
    check_loopback(host)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted sockets only when the
    # protocol says TCP, and without it every keep-alive response waits ~40 ms for the
    # client's delayed ACK (head and body are written separately).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise DeclareError(f"cannot listen on {host}:{port}: {exc.strerror}",
                           hint="pick another --port, or 0 for any free port") from exc
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _config(app: ASGIApp, log_level: str, access_log: bool) -> uvicorn.Config:
    logging.getLogger("uvicorn.error").addFilter(_QUIET_DROPS)
    # Idle keep-alive connections are kept longer than a client keeps them (httpx: 5 s,
    # uvicorn's default too): with equal timeouts the server may close a connection just
    # as the client sends on it, and that request is dropped unanswered (in doubt).
    return uvicorn.Config(app, log_level=log_level, access_log=access_log, lifespan="off",
                          timeout_graceful_shutdown=int(SHUTDOWN_GRACE_S), http="auto",
                          loop="auto", timeout_keep_alive=KEEP_ALIVE_S)


@contextlib.contextmanager
def serve_in_thread(app: ASGIApp, host: str = "127.0.0.1", port: int = 0,
                    *, log_level: str = "warning") -> Iterator[str]:
    """Serve `app` with uvicorn in a background thread; yield its base URL
    (`http://127.0.0.1:PORT`, port 0 picks a free one) and stop it on exit."""
    sock = _bind(host, port)
    server = uvicorn.Server(_config(app, log_level, access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                              name="declare-sim", daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the simulator's server thread stopped while starting")
            threading.Event().wait(0.01)
        yield url_of(sock)
    finally:
        server.should_exit = True
        thread.join(timeout=SHUTDOWN_GRACE_S + 5)
        sock.close()


class _ForegroundServer(uvicorn.Server):
    """Stops on SIGINT/SIGTERM and returns normally (uvicorn's own handler re-raises the
    signal after shutting down, which would turn a clean stop into exit 130/143)."""

    stopped_by: int | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        def stop(sig: int, frame: FrameType | None) -> None:
            if self.should_exit:
                self.force_exit = True
            self.should_exit = True
            self.stopped_by = sig

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def run_server(app: ASGIApp, host: str = "127.0.0.1", port: int = 8765, *,
               on_ready: Callable[[str], None] = print, access_log: bool = False,
               log_level: str = "warning") -> int:
    """Serve `app` in the foreground until SIGINT or SIGTERM. `on_ready` gets the base URL
    once the port is bound. Returns the signal number that stopped it (0 if none)."""
    sock = _bind(host, port)
    server = _ForegroundServer(_config(app, log_level, access_log))
    on_ready(url_of(sock))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    return server.stopped_by or 0
