"""The simulator of a large `apply --sim`, served from a child process.

In-process, the simulator's request handling shares apply's one core with the plan and the
HTTP client (about a third of a million-entry apply's CPU time); apart, it runs on the
machine's other core. :func:`simulator_process` starts `python -m connectly_declare.sim.child`
and yields its base URL; the child gets its settings on stdin, never on its command line
(the catalog holds the API key), serves on 127.0.0.1 only, and exits as soon as its stdin
reaches end of file: when apply closes it, or when apply dies in any way, SIGKILL included
(the kernel closes the pipe's write end with the process). It runs in a session of its own
so a Ctrl-C or a pipeline's SIGTERM to apply's process group does not stop it while apply
still waits for the requests in flight.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator

from connectly_declare.errors import DeclareError
from connectly_declare.sim.catalog import Catalog

START_TIMEOUT_S = 60.0  # for the child to import and listen (seconds; a loaded machine)
STOP_TIMEOUT_S = 10.0


def _read_line(stream: int, deadline: float) -> bytes:
    """One line from the child's stdout (raw fd), or what came before it exited."""
    data = b""
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([stream], [], [], left)[0]:
            break
        chunk = os.read(stream, 4096)
        if not chunk:
            break
        data += chunk
    return data


@contextlib.contextmanager
def simulator_process(catalog: Catalog, rate_limit: float | None) -> Iterator[str]:
    """Serve the simulator for `catalog` from a child process on loopback; yield its base
    URL and stop it on exit. `rate_limit` as for :func:`create_app` (None: off)."""
    settings = json.dumps({"catalog": catalog.model_dump(mode="json"),
                           "rate_limit": rate_limit}).encode() + b"\n"
    process = subprocess.Popen(
        [sys.executable, "-m", "connectly_declare.sim.child"], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, bufsize=0, close_fds=True, start_new_session=True)
    assert process.stdin is not None and process.stdout is not None
    try:
        process.stdin.write(settings)
        process.stdin.flush()
        line = _read_line(process.stdout.fileno(), time.monotonic() + START_TIMEOUT_S)
        process.stdout.close()
        url = line.decode("utf-8", "replace").strip()
        if not url.startswith("http://127.0.0.1:"):
            raise DeclareError("the simulator's process did not start (its error, if any, "
                               "is above)", hint="run `connectly-declare sim` to see why")
        yield url
    finally:
        with contextlib.suppress(OSError):
            process.stdin.close()  # end of file: the child exits
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main() -> None:
    """The child: read the settings line, serve, print the URL, exit at stdin's end."""
    from connectly_declare.sim.app import create_app
    from connectly_declare.sim.server import serve_in_thread

    stdin = sys.stdin.buffer
    settings = json.loads(stdin.readline())
    app = create_app(Catalog.model_validate(settings["catalog"]),
                     rate_limit=settings["rate_limit"])
    with serve_in_thread(app, "127.0.0.1", 0) as url:
        sys.stdout.write(url + "\n")
        sys.stdout.flush()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # apply reads only the URL
        while stdin.read(65536):  # nothing more is sent: this waits for end of file
            pass
        # apply is done, or gone: no one is left to answer, and nothing needs keeping
        os._exit(0)


if __name__ == "__main__":
    main()
