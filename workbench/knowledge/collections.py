"""One collection of documents by its row id: a named knowledge base, or a conversation's attached files.

What both kinds share: preparing a document (chunks and their vectors, before any write), writing it
(document row, chunk rows, vectors, and for attached files the file and its pages) in the caller's
transaction, searching, deleting, and copying a whole collection (a forked conversation keeps its
files). Every function but :func:`search` takes a :class:`Connection` inside a transaction of the
caller's; :func:`search` runs its own short reads around the query's embedding.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Protocol, TypeVar

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from workbench.documents.chunking import DEFAULT_CHUNK_TOKENS, DEFAULT_OVERLAP_TOKENS, Chunk, chunk_document
from workbench.documents.embedding import Embedder
from workbench.documents.index import Hit, IndexProgress, embed_chunks
from workbench.documents.model import Document
from workbench.knowledge import vectors
from workbench.knowledge.schema import kb_chunks, kb_documents, kb_sections, knowledge_bases

T = TypeVar("T")
Found = tuple[int, str]
"""A collection's row id and the name of its embedder."""


class Reader(Protocol):
    """Runs ``work`` in one read transaction (the caller's, with its own errors) and returns its result."""

    def __call__(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` and return what it returns."""
        ...


def prepare(
    document: Document,
    embedder: Embedder,
    progress: IndexProgress | None = None,
    cancel: threading.Event | None = None,
) -> tuple[list[Chunk], np.ndarray]:
    """Chunk ``document`` and embed its chunks (nothing is written; Stop raises DocumentCancelledError)."""
    chunks = chunk_document(document, embedder.count_tokens, DEFAULT_CHUNK_TOKENS, DEFAULT_OVERLAP_TOKENS)
    return chunks, embed_chunks(chunks, embedder, progress, cancel)


def insert_document(
    connection: Connection,
    kb_id: int,
    document: Document,
    chunks: list[Chunk],
    embedded: np.ndarray,
    *,
    content: bytes | None = None,
    keep_sections: bool = False,
) -> int:
    """Write a prepared document into collection ``kb_id``; return its row id.

    Args:
        connection: In the caller's transaction.
        kb_id: The collection.
        document: The parsed file.
        chunks: Its chunks, and ``embedded`` their vectors (:func:`prepare`).
        embedded: The chunks' vectors.
        content: The file's bytes, kept for attached files.
        keep_sections: Also keep its pages (attached files go in whole when they fit).
    """
    document_id = int(
        connection.execute(
            kb_documents.insert().values(
                kb_id=kb_id,
                name=document.name,
                kind=document.kind,
                sha256=document.sha256,
                size=document.size,
                sections=len(document.sections),
                added_at=datetime.now(timezone.utc),
                content=content,
            )
        ).inserted_primary_key[0]  # type: ignore[index]
    )
    if keep_sections and document.sections:
        connection.execute(
            kb_sections.insert(),
            [
                {"document_id": document_id, "position": n, "location": s.location, "text": s.text}
                for n, s in enumerate(document.sections)
            ],
        )
    ids = []
    for chunk in chunks:
        ids.append(
            connection.execute(
                kb_chunks.insert().values(
                    document_id=document_id, position=chunk.index, location=chunk.location, text=chunk.text
                )
            ).inserted_primary_key[0]  # type: ignore[index]
        )
    vectors.insert(connection, kb_id, list(zip(ids, embedded, strict=True)))
    return document_id


def search(
    read: Reader, find: Callable[[Connection], Found | None], embed: Callable[[str], np.ndarray], k: int
) -> list[Hit] | None:
    """The ``k`` chunks nearest to a query, best first; None if ``find`` finds no collection.

    The query is embedded (``embed``: embedder name -> vector) between two short reads, with no
    database connection held while the model runs. The second read finds the collection again with
    its hits: one removed meanwhile gives None, one remade with another embedder is embedded for again.
    """
    found = read(find)
    while found is not None:
        vector = embed(found[1])  # the model runs with no connection checked out
        found, result = read(_hits_if_same(find, found[1], vector, k))
        if result is not None:
            return result
    return None


def _hits_if_same(
    find: Callable[[Connection], Found | None], embedder: str, vector: np.ndarray, k: int
) -> Callable[[Connection], tuple[Found | None, list[Hit] | None]]:
    """A read giving the collection found now, and its hits if it still has ``embedder`` (else None)."""

    def work(connection: Connection) -> tuple[Found | None, list[Hit] | None]:
        now = find(connection)
        if now is None or now[1] != embedder:
            return now, None
        return now, hits(connection, now[0], vector, k)

    return work


def hits(connection: Connection, kb_id: int, vector: np.ndarray, k: int) -> list[Hit]:
    """The ``k`` chunks of collection ``kb_id`` nearest to ``vector`` (cosine), best first."""
    if connection.dialect.name != "sqlite":  # pgvector: the nearest and their chunks in one statement
        return [
            Hit(Chunk(str(r[0]), str(r[1]), str(r[2]), int(r[3])), 1.0 - float(r[4]))
            for r in vectors.nearest_chunks(connection, kb_id, vector, k)
        ]
    nearest = vectors.nearest(connection, kb_id, vector, k)
    if not nearest:
        return []
    rows = connection.execute(
        sa.select(
            kb_chunks.c.id, kb_documents.c.name, kb_chunks.c.location, kb_chunks.c.text, kb_chunks.c.position
        )
        .join(kb_documents)
        .where(kb_chunks.c.id.in_([row[0] for row in nearest]), kb_documents.c.kb_id == kb_id)
    ).all()
    found = {row[0]: row for row in rows}
    return [
        Hit(Chunk(str(r[1]), str(r[2]), str(r[3]), int(r[4])), 1.0 - float(distance))
        for chunk_id, distance in nearest
        if (r := found.get(chunk_id)) is not None
    ]


def delete_documents(connection: Connection, kb_id: int, document_ids: list[int]) -> None:
    """Delete documents of collection ``kb_id``: their vectors, then their rows (chunks and pages cascade)."""
    if not document_ids:
        return
    chunk_ids = sa.select(kb_chunks.c.id).where(kb_chunks.c.document_id.in_(document_ids))
    vectors.delete(connection, kb_id, chunk_ids)
    connection.execute(kb_documents.delete().where(kb_documents.c.id.in_(document_ids)))


def drop(connection: Connection, kb_id: int) -> None:
    """Delete collection ``kb_id``: its vector table, then its row (documents, chunks, pages cascade)."""
    vectors.drop(connection, kb_id)
    connection.execute(knowledge_bases.delete().where(knowledge_bases.c.id == kb_id))


def copy(connection: Connection, source_id: int, target_id: int) -> None:
    """Copy every document of collection ``source_id`` (rows, pages, chunks, vectors) into ``target_id``."""
    documents = connection.execute(
        sa.select(kb_documents).where(kb_documents.c.kb_id == source_id).order_by(kb_documents.c.id)
    ).all()
    for document in documents:
        values = {key: value for key, value in document._mapping.items() if key not in ("id", "kb_id")}
        new_id = connection.execute(
            kb_documents.insert().values(kb_id=target_id, **values)
        ).inserted_primary_key[0]  # type: ignore[index]
        pages = connection.execute(
            sa.select(kb_sections.c.position, kb_sections.c.location, kb_sections.c.text)
            .where(kb_sections.c.document_id == document.id)
            .order_by(kb_sections.c.position)
        ).all()
        if pages:
            connection.execute(
                kb_sections.insert(),
                [
                    {"document_id": new_id, "position": p, "location": where, "text": text}
                    for p, where, text in pages
                ],
            )
        pairs = []
        for chunk in connection.execute(
            sa.select(kb_chunks).where(kb_chunks.c.document_id == document.id).order_by(kb_chunks.c.id)
        ).all():
            copied = connection.execute(
                kb_chunks.insert().values(
                    document_id=new_id, position=chunk.position, location=chunk.location, text=chunk.text
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            pairs.append((int(chunk.id), int(copied)))
        vectors.copy(connection, source_id, target_id, pairs)
