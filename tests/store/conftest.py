"""Store fixtures: a fresh SQLite file per test, and a real PostgreSQL cluster started for the session.

The PostgreSQL cluster is Debian's ``postgresql`` package (``scripts/setup.sh --test`` installs it),
started with initdb/pg_ctl in a temporary folder on a free port, as an unprivileged user when the tests
run as root (PostgreSQL refuses to run as root). Each test gets a database of its own.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from workbench.store import ConversationStore

_counter = itertools.count()


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_user() -> list[str]:
    """The command prefix that runs PostgreSQL as an unprivileged user when we are root."""
    if os.geteuid() != 0:
        return []
    for user in ("postgres", "nobody"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            continue
        return ["runuser", "-u", user, "--"]
    pytest.skip("PostgreSQL cannot run as root and there is no 'postgres' or 'nobody' user to run it as.")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """Start a throwaway PostgreSQL cluster; yield the URL of its maintenance database."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("PostgreSQL is not installed (initdb/pg_ctl not found); run scripts/setup.sh --test.")
    prefix = _as_user()
    folder = Path(tempfile.mkdtemp(prefix="workbench-pg-"))
    if prefix:
        user = prefix[2]
        shutil.chown(folder, user=user)
    data, log = folder / "data", folder / "log"
    port = _free_port()
    subprocess.run(
        [*prefix, initdb, "-D", str(data), "-U", "workbench", "--auth=trust", "-E", "UTF8", "--no-sync"],
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
    started = subprocess.run(
        [*prefix, pg_ctl, "-D", str(data), "-o", options, "-l", str(log), "-w", "start"],
        capture_output=True,
        text=True,
    )
    if started.returncode != 0:
        text = log.read_text() if log.exists() else started.stderr
        shutil.rmtree(folder, ignore_errors=True)
        pytest.fail(f"PostgreSQL did not start:\n{text}")
    try:
        yield f"postgresql://workbench@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgres_db(postgres_url: str) -> str:
    """A new, empty PostgreSQL database; return its URL."""
    name = f"test_{os.getpid()}_{next(_counter)}"
    engine = sa.create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {name}")
    engine.dispose()
    return postgres_url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """The URL of a new SQLite file."""
    return f"sqlite:///{tmp_path / 'conversations.sqlite3'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest) -> str:
    """A fresh database of each kind."""
    return str(
        request.getfixturevalue(f"{request.param}_url" if request.param == "sqlite" else "postgres_db")
    )


@pytest.fixture
def store(store_url: str) -> Iterator[ConversationStore]:
    """An opened store on a fresh database of each kind."""
    opened = ConversationStore.open(store_url)
    yield opened
    opened.close()


@pytest.fixture
def start_writer() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start ``store_writer.py`` with the given arguments in a process of its own (killed at the end)."""
    started: list[subprocess.Popen[str]] = []
    script = Path(__file__).with_name("store_writer.py")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}

    def start(*args: str) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, str(script), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()
