"""A throwaway PostgreSQL 15 server on loopback, as plain helpers: the suite's `postgres_url`
fixture (tests/conftest.py) and benchmarks/prefect_load.py start theirs with
`postgres_server(root)`.
"""

from __future__ import annotations

import os
import pwd
import shlex
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_PG_BINARIES = ("initdb", "pg_ctl", "postgres")
_PG_USER = "retrain"


def _pg_bindir() -> Path | None:
    """The first directory holding initdb, pg_ctl and postgres, preferring PostgreSQL 15."""
    candidates: list[Path] = []
    on_path = shutil.which("initdb")
    if on_path:
        candidates += [Path(on_path).parent, Path(on_path).resolve().parent]
    candidates.append(Path("/usr/lib/postgresql/15/bin"))
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        if out.returncode == 0 and out.stdout.strip():
            candidates.append(Path(out.stdout.strip()))
    complete = [d for d in candidates if all((d / b).is_file() for b in _PG_BINARIES)]
    for bindir in complete:
        version = subprocess.run(
            [str(bindir / "postgres"), "--version"], capture_output=True, text=True
        ).stdout
        if " 15." in version:
            return bindir
    # Another major version still runs; the version test then says what was found.
    return complete[0] if complete else None


def _pg_runas() -> tuple[int, int] | None:
    """(uid, gid) to run the server as: initdb and pg_ctl refuse to run as root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return entry.pw_uid, entry.pw_gid
    raise RuntimeError("running as root and neither user 'postgres' nor 'nobody' exists")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pg_admin(port: int):
    """An autocommit connection to the maintenance database, for CREATE/DROP DATABASE."""
    import psycopg

    return psycopg.connect(
        host="127.0.0.1", port=port, user=_PG_USER, dbname="postgres", autocommit=True
    )



@contextmanager
def postgres_server(root: Path) -> Iterator[str]:
    """initdb + pg_ctl start under `root` (made here, mode 0700); yields the SQLAlchemy URL of
    its `retrain` database (postgresql+psycopg://retrain@127.0.0.1:<port>/retrain) and stops
    the server afterwards. RuntimeError if there are no binaries or the server fails."""
    bindir = _pg_bindir()
    if bindir is None:
        raise RuntimeError("no PostgreSQL binaries (initdb, pg_ctl, postgres) found")
    runas = _pg_runas()
    root.mkdir(mode=0o700)
    data, log = root / "data", root / "server.log"
    if runas is not None:
        # The server's user must reach its files through the root-only parent dir.
        root.parent.chmod(0o711)
        os.chown(root, *runas)
    as_user = {"user": runas[0], "group": runas[1], "extra_groups": []} if runas else {}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            list(args), cwd=root, capture_output=True, text=True, timeout=120, **as_user
        )

    def server_log() -> str:
        return log.read_text() if log.exists() else "(no server log)"

    init = run(
        str(bindir / "initdb"), "-D", str(data), "-U", _PG_USER,
        "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync",
    )  # fmt: skip
    if init.returncode != 0:
        raise RuntimeError(f"initdb failed:\n{init.stdout}\n{init.stderr}")

    port = _free_port()
    # pg_ctl hands -o to a shell.
    options = f"-p {port} -k {shlex.quote(str(root))} -c listen_addresses=127.0.0.1"
    options += " -c fsync=off -c max_connections=200"
    pg_ctl = str(bindir / "pg_ctl")
    try:
        start = run(
            pg_ctl, "-w", "-t", "60", "-D", str(data), "-o", options, "-l", str(log), "start"
        )
        if start.returncode != 0:
            raise RuntimeError(
                f"pg_ctl start failed:\n{start.stdout}\n{start.stderr}\n"
                f"--- server log {log} ---\n{server_log()}"
            )
        with pg_admin(port) as conn:
            conn.execute(f'CREATE DATABASE "{_PG_USER}"')
        yield f"postgresql+psycopg://{_PG_USER}@127.0.0.1:{port}/{_PG_USER}"
    finally:
        # Also after a failed start: pg_ctl may have timed out on a server that did come up.
        run(pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop")




def pg_bindir() -> Path | None:
    """Where initdb, pg_ctl and postgres are (None if nowhere)."""
    return _pg_bindir()


def create_database(url: str, name: str) -> str:
    """CREATE DATABASE `name` on the server of `url`; returns the URL of the new database."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    with pg_admin(parsed.port) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return parsed.set(database=name).render_as_string(hide_password=False)
