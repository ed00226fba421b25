"""Each knowledge base's vectors, in the database's own vector index: sqlite-vec or pgvector.

SQLite: a ``vec0`` virtual table ``kb_vectors_<id>`` (rowid = chunk id, cosine distance; sqlite-vec is
loaded on every connection, see :mod:`workbench.store.database`). PostgreSQL: a table
``kb_vectors_<id>`` (``chunk_id`` referencing ``kb_chunks`` ON DELETE CASCADE, ``embedding
vector(dim)``) with an HNSW index over cosine distance (the ``vector`` extension). Distances are
cosine distances (1 - cosine similarity) on both.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from workbench.store import database


def table(kb_id: int) -> str:
    """The name of knowledge base ``kb_id``'s vector table."""
    return f"kb_vectors_{int(kb_id)}"


def unavailable(engine: Engine) -> str | None:
    """Why this database cannot hold knowledge bases, or None when it can."""
    if engine.dialect.name == "sqlite":
        if database.run_read(engine, database.has_vectors):
            return None
        return "Knowledge bases need sqlite-vec in a SQLite that loads extensions: pip install sqlite-vec sqlean.py"
    if engine.dialect.name == "postgresql":
        found = database.run_read(
            engine,
            lambda c: c.exec_driver_sql(
                "SELECT 1 FROM pg_available_extensions WHERE name = 'vector'"
            ).first(),
        )
        if found is not None:
            return None
        return "Knowledge bases on PostgreSQL need the pgvector extension installed on its server."
    return f"Knowledge bases need SQLite or PostgreSQL, not {engine.dialect.name}."


def create(connection: Connection, kb_id: int, dim: int) -> None:
    """Make the empty vector table of knowledge base ``kb_id``."""
    name = table(kb_id)
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql(
            f"CREATE VIRTUAL TABLE {name} USING vec0(embedding float[{int(dim)}] distance_metric=cosine)"
        )
        return
    connection.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS vector")
    connection.exec_driver_sql(
        f"CREATE TABLE {name} (chunk_id integer PRIMARY KEY REFERENCES kb_chunks (id) ON DELETE CASCADE, "
        f"embedding vector({int(dim)}) NOT NULL)"
    )
    connection.exec_driver_sql(f"CREATE INDEX ix_{name} ON {name} USING hnsw (embedding vector_cosine_ops)")


def drop(connection: Connection, kb_id: int) -> None:
    """Drop knowledge base ``kb_id``'s vector table."""
    connection.exec_driver_sql(f"DROP TABLE IF EXISTS {table(kb_id)}")


def _key(connection: Connection) -> str:
    return "rowid" if connection.dialect.name == "sqlite" else "chunk_id"


def _value(connection: Connection, vector: np.ndarray) -> bytes | str:
    array = np.asarray(vector, dtype=np.float32)
    if connection.dialect.name == "sqlite":
        return array.tobytes()
    return "[" + ",".join(f"{float(x):.7g}" for x in array) + "]"  # pgvector's text form


def insert(connection: Connection, kb_id: int, rows: list[tuple[int, np.ndarray]]) -> None:
    """Store (chunk id, vector) pairs."""
    if not rows:
        return
    cast = ":embedding" if connection.dialect.name == "sqlite" else "CAST(:embedding AS vector)"
    statement = sa.text(f"INSERT INTO {table(kb_id)} ({_key(connection)}, embedding) VALUES (:id, {cast})")
    connection.execute(statement, [{"id": int(i), "embedding": _value(connection, v)} for i, v in rows])


def delete(connection: Connection, kb_id: int, chunk_ids: sa.Select[tuple[int]]) -> None:
    """Delete the vectors of the chunks ``chunk_ids`` selects."""
    vectors = sa.table(table(kb_id), sa.column(_key(connection)))
    connection.execute(vectors.delete().where(vectors.c[_key(connection)].in_(chunk_ids)))


def nearest(connection: Connection, kb_id: int, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
    """The ``k`` chunk ids nearest to ``vector``, with their cosine distance, nearest first."""
    value = _value(connection, vector)
    if connection.dialect.name == "sqlite":
        statement = sa.text(
            f"SELECT rowid, distance FROM {table(kb_id)} WHERE embedding MATCH :v AND k = :k ORDER BY distance"
        )
    else:
        statement = sa.text(
            f"SELECT chunk_id, embedding <=> CAST(:v AS vector) AS distance FROM {table(kb_id)} "
            "ORDER BY distance LIMIT :k"
        )
    rows = connection.execute(statement, {"v": value, "k": max(1, int(k))}).all()
    return [(int(row[0]), float(row[1])) for row in rows]


def nearest_chunks(connection: Connection, kb_id: int, vector: np.ndarray, k: int) -> list[tuple[Any, ...]]:
    """pgvector: (file, location, text, position, distance) of the ``k`` nearest chunks, nearest first."""
    statement = sa.text(
        f"SELECT d.name, c.location, c.text, c.position, v.distance FROM (SELECT chunk_id, "
        f"embedding <=> CAST(:v AS vector) AS distance FROM {table(kb_id)} ORDER BY distance "
        # A literal: for LIMIT $n a generic plan guesses 10% of the rows, and may join them by a scan.
        f"LIMIT {max(1, int(k))}) v "
        "JOIN kb_chunks c ON c.id = v.chunk_id JOIN kb_documents d ON d.id = c.document_id "
        "WHERE d.kb_id = :kb ORDER BY v.distance"
    )
    return [
        tuple(row) for row in connection.execute(statement, {"v": _value(connection, vector), "kb": kb_id})
    ]


def copy(connection: Connection, source_id: int, target_id: int, pairs: list[tuple[int, int]]) -> None:
    """Copy vectors from collection ``source_id`` to ``target_id``: (old chunk id, new chunk id) pairs."""
    if not pairs:
        return
    key = _key(connection)
    if connection.dialect.name == "sqlite":
        read = f"SELECT embedding FROM {table(source_id)} WHERE rowid = :id"
        write = f"INSERT INTO {table(target_id)} (rowid, embedding) VALUES (:id, :embedding)"
    else:  # pgvector: as text, the form it reads back
        read = f"SELECT CAST(embedding AS text) FROM {table(source_id)} WHERE chunk_id = :id"
        write = f"INSERT INTO {table(target_id)} ({key}, embedding) VALUES (:id, CAST(:embedding AS vector))"
    rows = []
    for old, new in pairs:
        found = connection.execute(sa.text(read), {"id": old}).first()
        if found is not None:
            rows.append({"id": new, "embedding": found[0]})
    if rows:
        connection.execute(sa.text(write), rows)
