"""A real pgbouncer in transaction pooling mode in front of a test PostgreSQL, for the
tests that show the postgres ledger works behind a transaction-pooling proxy.

pgbouncer (Debian package `pgbouncer`; `.ci/run` installs it when missing) refuses to run
as root, so, like the server, it runs as the `postgres` OS user. The pool is deliberately
tiny (2 server connections) so clients really do share server connections.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from tests.support.pg import PgServer

PGBOUNCER = "/usr/sbin/pgbouncer"


class NoPgbouncer(RuntimeError):
    """pgbouncer is not installed: the tests that need it fail with this."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _as_postgres(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@contextmanager
def pgbouncer(server: PgServer, *, pool_size: int = 2) -> Iterator[str]:
    """Start pgbouncer (pool_mode=transaction) in front of `server`; yields its DSN."""
    binary = PGBOUNCER if Path(PGBOUNCER).exists() else shutil.which("pgbouncer")
    if binary is None:
        raise NoPgbouncer("pgbouncer is not installed: apt-get install pgbouncer")
    parts = urlsplit(server.dsn)
    user, password = unquote(parts.username or ""), unquote(parts.password or "")
    dbname = parts.path.lstrip("/")
    port = _free_port()
    base = Path(tempfile.mkdtemp(prefix="declare-pgbouncer-"))
    try:
        (base / "userlist.txt").write_text(f'"{user}" "{password}"\n', encoding="utf-8")
        (base / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"{dbname} = host={parts.hostname} port={parts.port} dbname={dbname}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
            f"auth_type = scram-sha-256\nauth_file = {base / 'userlist.txt'}\n"
            f"pool_mode = transaction\ndefault_pool_size = {pool_size}\n"
            f"min_pool_size = 0\nmax_client_conn = 200\n"
            f"logfile = {base / 'pgbouncer.log'}\npidfile = {base / 'pgbouncer.pid'}\n",
            encoding="utf-8")
        if os.geteuid() == 0:
            pg = pwd.getpwnam("postgres")
            for path in (base, *base.iterdir()):
                os.chown(path, pg.pw_uid, pg.pw_gid)
        proc = subprocess.Popen(_as_postgres([binary, str(base / "pgbouncer.ini")]),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        err = proc.stderr.read().decode() if proc.stderr else ""
                        raise NoPgbouncer(f"pgbouncer did not start: {err[-2000:]}") from None
                    time.sleep(0.05)
            yield (f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}"
                   f"@127.0.0.1:{port}/{dbname}")
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stderr is not None:
                proc.stderr.close()
    finally:
        shutil.rmtree(base, ignore_errors=True)
