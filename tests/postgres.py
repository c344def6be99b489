"""A throwaway PostgreSQL server for the tests that run on both backends.

`REVIEW_APP_TEST_POSTGRES` may name a server to use (a URL whose user may create databases);
otherwise each test process starts its own cluster from the PostgreSQL binaries on this machine
(Debian's `postgresql` package; as root the server runs as the `postgres` user, since it refuses
to run as root) in a temporary folder (in memory when /dev/shm has room), and stops it at the
end. Each test gets a database of its
own, copied from a migrated template, and dropped after."""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

ENV = "REVIEW_APP_TEST_POSTGRES"


def _binaries() -> Path | None:
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


# Where the cluster's folder goes when this machine has it: a file system in memory.
MEMORY = Path("/dev/shm")
# Room a test process's cluster may take there (its own files, the templates and the databases
# of the tests running at once), with a margin; without it the folder goes to the temp folder.
MEMORY_ROOM = 1 << 30


def _cluster_parent() -> str | None:
    """The folder to make the cluster's folder in. Every test's database is a copy of a
    template (about a thousand small files) dropped after: on a disk file system each create
    and drop costs the kernel about 0.25 s of CPU (ext4 without a journal looks past every
    recently deleted inode to find a free one), against 0.02 s in memory. None: the temp folder."""
    try:
        room = shutil.disk_usage(MEMORY).free
    except OSError:
        return None
    return str(MEMORY) if room >= MEMORY_ROOM and os.access(MEMORY, os.W_OK) else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """A PostgreSQL server the tests may create and drop databases on."""

    def __init__(self) -> None:
        self.url: str | None = None
        self.reason = ""
        self._folder: Path | None = None
        self._bin: Path | None = None
        self._as: list[str] = []
        self._names = itertools.count()
        self._templates: dict[str, str] = {}
        self._admin = None

    def start(self) -> None:
        if os.environ.get(ENV):
            self.url = os.environ[ENV].rstrip("/")
            return
        self._bin = _binaries()
        if self._bin is None:
            self.reason = "PostgreSQL is not installed (Debian's postgresql package; make test installs it as root)"
            return
        if os.geteuid() == 0:
            if shutil.which("runuser") is None:
                self.reason = (
                    "running as root without runuser: cannot start PostgreSQL as another user"
                )
                return
            self._as = ["runuser", "-u", "postgres", "--"]
        self._folder = Path(tempfile.mkdtemp(prefix="review-app-pg-", dir=_cluster_parent()))
        if self._as:
            shutil.chown(self._folder, "postgres")
        data, port = self._folder / "data", _free_port()
        run = dict(check=True, capture_output=True, text=True, cwd="/")
        try:
            subprocess.run(
                [
                    *self._as,
                    str(self._bin / "initdb"),
                    "-D",
                    str(data),
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "--locale=C.UTF-8",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ],
                **run,
            )
            subprocess.run(
                [
                    *self._as,
                    str(self._bin / "pg_ctl"),
                    "-D",
                    str(data),
                    "-w",
                    "-t",
                    "60",
                    "-l",
                    str(self._folder / "log"),
                    "-o",
                    f"-p {port} -k {self._folder} -c listen_addresses=127.0.0.1 -c fsync=off "
                    "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
                    "start",
                ],
                **run,
            )
        except (subprocess.CalledProcessError, OSError) as exc:
            detail = getattr(exc, "stderr", "") or str(exc)
            self.reason = f"could not start PostgreSQL: {detail.strip().splitlines()[-1:]}"
            return
        self.url = f"postgresql://postgres@127.0.0.1:{port}"

    def restart(self) -> None:
        """Stop the server and start it again (as an operator restarting the database would)."""
        if self._folder is None:
            raise RuntimeError("only a cluster these tests started can be restarted")
        subprocess.run(
            [
                *self._as,
                str(self._bin / "pg_ctl"),
                "-D",
                str(self._folder / "data"),
                "-w",
                "-l",
                str(self._folder / "log"),
                "-m",
                "fast",
                "restart",
            ],
            check=True,
            capture_output=True,
            cwd="/",
        )

    def stop(self) -> None:
        if self._admin is not None:
            self._admin.close()
        if self._folder is None:
            return
        subprocess.run(
            [
                *self._as,
                str(self._bin / "pg_ctl"),
                "-D",
                str(self._folder / "data"),
                "-m",
                "immediate",
                "stop",
            ],
            capture_output=True,
            cwd="/",
        )
        shutil.rmtree(self._folder, ignore_errors=True)

    def _admin_connection(self):
        """One connection to the `postgres` database, kept for the whole session: each new
        connection costs the server a process of its own (about 5 ms of CPU), and every test
        creates and drops a database through it. Opened again after a restart."""
        import psycopg

        if self._admin is None or self._admin.closed or self._admin.broken:
            self._admin = psycopg.connect(f"{self.url}/postgres", autocommit=True)
        return self._admin

    def admin(self, sql: str, params: list | None = None) -> list[tuple]:
        import psycopg

        try:
            cursor = self._admin_connection().execute(sql, params)
        except psycopg.OperationalError:
            if not self._admin.broken:  # an error of the statement itself
                raise
            cursor = self._admin_connection().execute(sql, params)  # the server was restarted
        return cursor.fetchall() if cursor.description else []

    def new_url(self) -> str:
        """The URL of a database no test has used, not created yet."""
        return f"{self.url}/t{os.getpid()}_{next(self._names)}"

    def database(self, template: str | None = None, url: str | None = None) -> str:
        """A new database (a copy of `template` when given), at `url` when given (from
        `new_url`); returns its URL."""
        name = (url or self.new_url()).rsplit("/", 1)[1]
        # FILE_COPY copies the template's files as they are: half the CPU of the default
        # (WAL_LOG, which writes every page through the log) to create, and to drop after.
        copy = f" TEMPLATE {template} STRATEGY FILE_COPY" if template else ""
        for attempt in range(50):
            try:
                self.admin(f"CREATE DATABASE {name}{copy}")
                break
            except Exception as exc:  # the template is briefly in use by another copy
                if "being accessed by other users" not in str(exc) or attempt == 49:
                    raise
                time.sleep(0.1)
        return f"{self.url}/{name}"

    def exists(self, url: str) -> bool:
        """Whether the database at `url` has been created."""
        rows = self.admin(
            "SELECT count(*) FROM pg_database WHERE datname = %s", [url.rsplit("/", 1)[1]]
        )
        return rows[0][0] > 0

    def drop(self, url: str) -> None:
        self.admin(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")

    def template(self, key: str, build) -> str:
        """The name of a template database built once by `build(url)` under `key`."""
        if key not in self._templates:
            url = self.database()
            build(url)
            self._templates[key] = url.rsplit("/", 1)[1]
        return self._templates[key]
