"""Loaded by the security harness (PYTHONPATH) into the CLI under test: a PEP 578 audit hook
that records what `validate` and `plan` must never do on a stranger's workspace, so the
harness can fail the case:

- open a network connection or resolve a name (plan needs no network);
- start a process;
- open a file outside the workspace and the Python installation (reading), or anywhere
  outside the workspace (writing), but for an anonymous temporary file (O_TMPFILE: no
  name, gone with the process), where a large plan keeps its entries to send.

Violations are appended, one per line, to $DECLARE_AUDIT_LOG with raw os calls (no `open`,
which would itself be audited). Nothing is blocked: the point is to see what the tool
tries, not to change its behaviour.
"""

from __future__ import annotations

import os
import sys


def _install() -> None:
    log_path = os.environ.pop("DECLARE_AUDIT_LOG", "")
    allow = [p for p in os.environ.pop("DECLARE_AUDIT_ALLOW", "").split(os.pathsep) if p]
    if not log_path:
        return
    workspace = allow[0] if allow else ""
    read_ok = (*allow, "/usr/lib/python3", "/usr/local/lib/python3", "/usr/share/zoneinfo",
               "/etc/localtime", "/dev/null", "/dev/urandom", "/etc/ssl", "/usr/lib/ssl",
               "/proc/self", "/sys/fs/cgroup")
    python_roots = tuple(allow[1:])
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    busy = False

    def record(line: str) -> None:
        os.write(fd, (line.replace("\n", "\\n") + "\n").encode("utf-8", "replace"))

    def under(path: str, roots: tuple[str, ...]) -> bool:
        return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)

    def hook(event: str, args: tuple[object, ...]) -> None:
        nonlocal busy
        if busy:
            return
        busy = True
        try:
            if event in ("socket.connect", "socket.getaddrinfo", "socket.sendto"):
                record(f"network {event} {args[1:]!r}")
            elif event in ("subprocess.Popen", "os.system", "os.exec", "os.posix_spawn",
                           "os.spawn", "os.fork"):
                record(f"process {event} {args!r}")
            elif event == "open":
                path, mode = args[0], args[1]
                if isinstance(path, int) or path is None:
                    return
                raw = os.fsdecode(path)  # type: ignore[arg-type]
                writing = isinstance(mode, str) and any(c in mode for c in "wax+")
                if isinstance(args[2], int) and args[2] & (os.O_WRONLY | os.O_RDWR):
                    writing = True
                # Imports open hundreds of files under the Python roots: skip resolving
                # those (the workspace is never under them, so no escape hides there).
                if not writing and ".." not in raw and under(raw, python_roots):
                    return
                real = os.path.realpath(raw)
                # An anonymous file (O_TMPFILE, where a large plan spools its entries to
                # send, plan/spool.py) is opened on its folder: a folder can be opened for
                # writing only so, and then no name is made; the file goes with the process.
                if writing and os.path.isdir(real):
                    return
                if writing and not under(real, (workspace,)) and real != "/dev/null":
                    record(f"write outside the workspace: {real}")
                elif not writing and not under(real, read_ok):
                    record(f"read outside the workspace: {real}")
        finally:
            busy = False

    sys.addaudithook(hook)


_install()
