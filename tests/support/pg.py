"""A real PostgreSQL server for tests and benchmarks.

`DECLARE_TEST_PG_DSN` names a server to use (CI starts one in `.ci/run`); without it a
throwaway PostgreSQL 15 is initialised in a temporary directory and started on a free
loopback port. We run as root and `initdb` refuses root, so the server runs as the
`postgres` OS user. The test role gets a random password, so tests that sweep output and
files for secrets have a real password to look for.

Also a small command line for `.ci/run` (one server for the whole CI run)::

    python tests/support/pg.py start DIR   # prints the DSN on stdout
    python tests/support/pg.py stop DIR
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

ENV_DSN = "DECLARE_TEST_PG_DSN"
PG_BIN_DIRS = ("/usr/lib/postgresql/15/bin", "/usr/local/bin", "/usr/bin")
TEST_ROLE = "declare_test"
TEST_DB = "declare_test"


class NoPostgres(RuntimeError):
    """No PostgreSQL server could be had: the tests that need one fail with this."""


@dataclass(frozen=True)
class PgServer:
    dsn: str  # postgresql://declare_test:PASSWORD@127.0.0.1:PORT/declare_test
    password: str
    data_dir: Path | None = None  # None: a server we did not start

    @property
    def host_port(self) -> tuple[str, int]:
        parts = urlsplit(self.dsn)
        return parts.hostname or "", parts.port or 5432


def _binary(name: str) -> str:
    for directory in PG_BIN_DIRS:
        candidate = Path(directory) / name
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise NoPostgres(
            f"{name} not found in {', '.join(PG_BIN_DIRS)} or PATH: install PostgreSQL 15 "
            f"(apt-get install postgresql-15) or set {ENV_DSN} to a server's DSN"
        )
    return found


def _as_postgres(args: list[str]) -> list[str]:
    """Run as the `postgres` OS user when we are root (initdb and postgres refuse root)."""
    if os.geteuid() != 0:
        return args
    try:
        pwd.getpwnam("postgres")
    except KeyError as err:
        raise NoPostgres("running as root and there is no `postgres` OS user") from err
    return ["runuser", "-u", "postgres", "--", *args]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _run(args: list[str], what: str) -> None:
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise NoPostgres(f"{what} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")


def start(base: Path) -> PgServer:
    """initdb + start a server in `base` (created, then owned by postgres); on failure
    nothing is left running."""
    try:
        return _start(base)
    except BaseException:
        stop(base)
        raise


def _start(base: Path) -> PgServer:
    base.mkdir(parents=True, exist_ok=True)
    data, sockets = base / "data", base / "sock"
    sockets.mkdir(exist_ok=True)
    password = secrets.token_urlsafe(18)
    admin_pw = secrets.token_urlsafe(18)
    pwfile = base / "pwfile"
    pwfile.write_text(admin_pw + "\n", encoding="utf-8")
    if os.geteuid() == 0:
        pg = pwd.getpwnam("postgres")
        for path in (base, sockets, pwfile):
            os.chown(path, pg.pw_uid, pg.pw_gid)
        base.chmod(0o700)
    _run(_as_postgres([_binary("initdb"), "-D", str(data), "-U", "postgres", "-E", "UTF8",
                       "--locale=C", "--auth-local=trust", "--auth-host=scram-sha-256",
                       f"--pwfile={pwfile}"]), "initdb")
    pwfile.unlink()
    port = _free_port()
    options = (f"-c listen_addresses=127.0.0.1 -c port={port} "
               f"-c unix_socket_directories={sockets} -c max_connections=200 "
               f"-c shared_buffers=64MB")
    _run(_as_postgres([_binary("pg_ctl"), "-D", str(data), "-l", str(base / "server.log"),
                       "-o", options, "-w", "-t", "60", "start"]), "pg_ctl start")
    psql = [_binary("psql"), "-h", str(sockets), "-p", str(port), "-U", "postgres",
            "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-q"]
    # Two -c: CREATE DATABASE refuses to run in the transaction one -c with two statements is.
    _run(_as_postgres([*psql, "-c", f"CREATE ROLE {TEST_ROLE} LOGIN PASSWORD '{password}'",
                       "-c", f"CREATE DATABASE {TEST_DB} OWNER {TEST_ROLE}"]),
         "creating the test role")
    dsn = f"postgresql://{TEST_ROLE}:{quote(password, safe='')}@127.0.0.1:{port}/{TEST_DB}"
    return PgServer(dsn=dsn, password=password, data_dir=data)


def stop(base: Path) -> None:
    data = base / "data"
    if (data / "postmaster.pid").exists():
        subprocess.run(_as_postgres([_binary("pg_ctl"), "-D", str(data), "-m", "immediate",
                                     "-w", "stop"]), capture_output=True, check=False)
    shutil.rmtree(base, ignore_errors=True)


def from_env(environ: dict[str, str] | None = None) -> PgServer | None:
    env = os.environ if environ is None else environ
    dsn = env.get(ENV_DSN, "").strip()
    if not dsn:
        return None
    return PgServer(dsn=dsn, password=urlsplit(dsn).password or "")


@contextmanager
def postgres_server() -> Iterator[PgServer]:
    """The server named by DECLARE_TEST_PG_DSN, else a throwaway one (stopped on exit)."""
    given = from_env()
    if given is not None:
        yield given
        return
    base = Path(tempfile.mkdtemp(prefix="declare-pg-"))
    try:
        yield start(base)
    finally:
        stop(base)


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("start", "stop"):
        print("usage: pg.py start|stop DIR", file=sys.stderr)
        return 2
    base = Path(argv[1])
    if argv[0] == "start":
        try:
            server = start(base)
        except NoPostgres as err:
            print(f"pg.py: {err}", file=sys.stderr)
            return 1
        print(server.dsn)
    else:
        stop(base)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
