"""Where the database is, how it is opened, how it is migrated, and how writes retry.

SQLite by default: ``conversations.sqlite3`` in the data folder (``WORKBENCH_DATA_DIR``, else
``$XDG_DATA_HOME/workbench``, else ``~/.local/share/workbench``), in WAL mode (readers never wait for
a writer; a killed writer leaves committed transactions intact), foreign keys on, a busy timeout, and
write transactions that take the write lock up front (``BEGIN IMMEDIATE``) so that two writers queue
instead of failing. Any other database SQLAlchemy reaches is named by ``WORKBENCH_DB_URL``
(``postgresql://user@host/db`` uses psycopg 3).

SQLite is reached through ``sqlean.py`` when it is installed: the same DB-API as the standard
library's ``sqlite3``, over a SQLite that can load extensions (this Python's cannot), so every
connection loads ``sqlite-vec`` for the knowledge bases' vectors (:mod:`workbench.knowledge`). Every
engine on a file must use the same SQLite library: two copies of SQLite in one process release each
other's file locks (sqlite.org, "How To Corrupt An SQLite Database File", 2.2.1).
"""

from __future__ import annotations

import logging
import os
import random
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

from workbench.store.errors import StoreError, StoreVersionError

DB_FILENAME = "conversations.sqlite3"
BUSY_TIMEOUT_S = 15.0
WRITE_ATTEMPTS = 5
MIGRATIONS = Path(__file__).with_name("migrations")

T = TypeVar("T")
logger = logging.getLogger(__name__)


def data_dir() -> Path:
    """Return the folder for Workbench's data (not created here)."""
    explicit = os.environ.get("WORKBENCH_DATA_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "workbench"


def default_url() -> str:
    """Return the database URL: ``WORKBENCH_DB_URL``, else the SQLite file in :func:`data_dir`."""
    explicit = os.environ.get("WORKBENCH_DB_URL")
    if explicit:
        return explicit
    return f"sqlite:///{data_dir() / DB_FILENAME}"


def normalize_url(url: str) -> sa.URL:
    """Parse a database URL; ``postgresql://`` without a driver means psycopg 3.

    Raises:
        StoreError: If the URL cannot be parsed.
    """
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise StoreError(
            f"The database URL {url!r} is not valid ({exc}); use e.g. sqlite:////path/to/file.sqlite3 "
            "or postgresql://user@host/dbname in WORKBENCH_DB_URL."
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def create_store_engine(url: str) -> Engine:
    """Create the engine for ``url``, with SQLite's pragmas and write locking set up.

    Raises:
        StoreError: If the SQLite folder cannot be created or the driver is missing.
    """
    parsed = normalize_url(url)
    is_sqlite = parsed.get_backend_name() == "sqlite"
    kwargs: dict[str, Any] = {}
    if is_sqlite:
        if parsed.database and parsed.database != ":memory:":
            folder = Path(parsed.database).expanduser().parent
            try:
                folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            except OSError as exc:
                raise StoreError(
                    f"Cannot create the data folder {folder} ({exc.strerror}); set WORKBENCH_DATA_DIR "
                    "to a folder you can write to."
                ) from None
        kwargs["connect_args"] = {"timeout": BUSY_TIMEOUT_S, "check_same_thread": False}
        module = sqlite_module()
        if module is not None:
            kwargs["module"] = module
    try:
        engine = sa.create_engine(parsed, **kwargs)
    except ModuleNotFoundError as exc:
        raise StoreError(
            f"The database driver {exc.name!r} is not installed; for PostgreSQL run "
            "pip install 'psycopg[binary]'."
        ) from None
    if is_sqlite:
        _configure_sqlite(engine)
    return engine


def sqlite_module() -> Any | None:
    """The DB-API module for SQLite: ``sqlean`` (loads extensions) when installed, else None (stdlib)."""
    try:
        import sqlean
    except ImportError:
        return None
    return sqlean


SQLITE_ERRORS: tuple[type[Exception], ...] = (sqlite3.Error,) + (
    () if sqlite_module() is None else (sqlite_module().Error,)  # type: ignore[union-attr]
)
"""The errors a raw SQLite connection raises (the standard library's, and sqlean's)."""


def has_vectors(connection: Connection) -> bool:
    """Whether this SQLite connection has ``sqlite-vec`` loaded (``vec0`` tables for knowledge bases)."""
    try:
        connection.exec_driver_sql("SELECT vec_version()").scalar_one()
    except sa.exc.OperationalError:
        return False
    return True


def _load_vectors(dbapi_connection: Any) -> None:
    """Load sqlite-vec into a new connection, when both the extension and a SQLite that loads it exist."""
    if not hasattr(dbapi_connection, "enable_load_extension"):
        return
    try:
        import sqlite_vec
    except ImportError:
        return
    try:
        dbapi_connection.enable_load_extension(True)
        sqlite_vec.load(dbapi_connection)
    except Exception as exc:  # a missing or broken extension leaves the store working, without vectors
        logger.warning("sqlite-vec could not be loaded (%s): knowledge bases are not available.", exc)
    finally:
        dbapi_connection.enable_load_extension(False)


def _configure_sqlite(engine: Engine) -> None:
    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below emit BEGIN itself (the pysqlite driver would not).
        dbapi_connection.isolation_level = None
        _load_vectors(dbapi_connection)
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        # In WAL mode NORMAL keeps every commit across a killed process; only a power cut can lose
        # the last commits (never the file's consistency).
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # IMMEDIATE takes the write lock now and waits (busy timeout) for it; a deferred transaction
        # that reads first and writes later would fail with "database is locked" without waiting.
        immediate = connection.get_execution_options().get("write", True)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _is_lock_error(exc: OperationalError) -> bool:
    text = str(exc.orig).lower()
    return "database is locked" in text or "database is busy" in text or "deadlock" in text


def run_write(engine: Engine, work: Callable[[Connection], T]) -> T:
    """Run ``work`` in one write transaction, retrying when the database is locked.

    Raises:
        StoreError: If the database stayed locked through every attempt, or failed otherwise.
    """
    for attempt in range(WRITE_ATTEMPTS):
        try:
            with engine.connect() as connection, connection.begin():
                return work(connection)
        except OperationalError as exc:
            if not _is_lock_error(exc) or attempt == WRITE_ATTEMPTS - 1:
                raise _store_error(engine, exc) from None
            time.sleep(0.05 * (2**attempt) * (1 + random.random()))
    raise AssertionError("unreachable")  # pragma: no cover


def run_read(engine: Engine, work: Callable[[Connection], T]) -> T:
    """Run ``work`` in one read transaction (a consistent snapshot).

    Raises:
        StoreError: If the database failed.
    """
    try:
        with engine.connect() as connection:
            connection = connection.execution_options(write=False)
            with connection.begin():
                return work(connection)
    except OperationalError as exc:
        raise _store_error(engine, exc) from None


def _store_error(engine: Engine, exc: OperationalError) -> StoreError:
    where = engine.url.render_as_string(hide_password=True)
    return StoreError(
        f"The conversation database {where} failed: {exc.orig}. Check that it is reachable and "
        "writable; if it is locked, close other programs that hold it and try again."
    )


def _alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def forget_old_rows(engine: Engine) -> None:
    """Rebuild the database so that no old version of a rewritten row is left in its files.

    Run after migration 0003 removed secrets: SQLite is rebuilt (``VACUUM``: the rows an earlier rename
    rewrote leave their old bytes in free space) and its WAL emptied; PostgreSQL's ``conversations``
    table is rewritten (``VACUUM FULL``: dead row versions hold the old records). A database that cannot
    do it now (another program holds it) is left as it is, with a warning: the secrets are gone from
    every live row either way.
    """
    try:
        if engine.dialect.name == "sqlite":
            raw = engine.raw_connection()
            try:  # outside any transaction (VACUUM refuses one): the connection is in autocommit mode
                raw.driver_connection.execute("VACUUM")  # type: ignore[union-attr]
                raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[union-attr]
            finally:
                raw.close()
        elif engine.dialect.name == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.exec_driver_sql("VACUUM FULL conversations")
    except sa.exc.SQLAlchemyError as exc:  # a failed clean-up must not block the open
        logger.warning("The conversation database was not compacted after removing saved API keys: %s", exc)
    except SQLITE_ERRORS as exc:
        logger.warning("The conversation database was not compacted after removing saved API keys: %s", exc)


def head_revision() -> str:
    """Return the newest schema revision this release knows."""
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    assert head is not None
    return head


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the database's schema up to ``revision`` (by default the newest), keeping every row.

    Raises:
        StoreVersionError: If the database has a revision this release does not know (a newer one).
        StoreError: If the database cannot be reached or migrated.
    """
    scripts = ScriptDirectory(str(MIGRATIONS))

    def upgrade(connection: Connection) -> None:
        if connection.dialect.name == "postgresql":  # one migrator at a time across replicas
            connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7316020101)")
        current = MigrationContext.configure(connection).get_current_revision()
        if current is not None and current not in {s.revision for s in scripts.walk_revisions()}:
            raise StoreVersionError(
                f"The conversation database has schema revision {current}, which this Workbench does "
                "not know: it was written by a newer release. Upgrade Workbench, or point "
                "WORKBENCH_DATA_DIR / WORKBENCH_DB_URL at another database."
            )
        target = scripts.get_current_head() if revision == "head" else revision
        if current != target:
            config = _alembic_config(connection)
            command.upgrade(config, revision)
            removed[0] = int(config.attributes.get("secrets_removed", 0))

    removed = [0]  # records migration 0003 cleaned (set again if a locked attempt is retried)
    run_write(engine, upgrade)
    if removed[0]:
        forget_old_rows(engine)
