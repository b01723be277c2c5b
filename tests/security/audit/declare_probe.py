"""A stand-in for the CLI in the harness's own tests: does one forbidden thing on request,
so tests can prove the harness notices it (tests/security/test_harness.py)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path


def main(action: str) -> int:
    if action == "network":
        try:
            socket.create_connection(("127.0.0.1", 9), timeout=1).close()
        except OSError:
            pass
    elif action == "read-outside":
        Path("/etc/hostname").read_bytes()
    elif action == "read-inside":
        Path("data.csv").read_bytes()
    elif action == "symlink-out":
        Path("link").read_bytes()
    elif action == "process":
        subprocess.run(["true"], check=False)
    elif action == "write":
        Path("written.txt").write_text("x", encoding="utf-8")
    elif action == "spin":
        while True:
            pass
    elif action == "eat":
        blocks = []
        while True:
            blocks.append(bytearray(64 << 20))
    elif action == "traceback":
        raise RuntimeError("boom")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
