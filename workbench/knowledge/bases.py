"""Create, fill, list, search and delete knowledge bases (SQLite with sqlite-vec, PostgreSQL with pgvector).

Adding a file is all or nothing: it is read, parsed, chunked and embedded first, then its document row,
chunk rows and vectors are written in one transaction. A file whose content (sha256) is already in the
knowledge base is not parsed or embedded again. Removing a document removes its chunks (ON DELETE
CASCADE) and their vectors (in the same transaction); removing a knowledge base removes all of it.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from workbench.documents.embedding import DEFAULT_EMBEDDER, Embedder, get_embedder
from workbench.documents.errors import DocumentError
from workbench.documents.index import Hit, IndexProgress
from workbench.documents.parsing import parse_document, read_file
from workbench.knowledge import collections, vectors
from workbench.knowledge.schema import kb_chunks, kb_documents, knowledge_bases
from workbench.store import database

MAX_NAME_CHARS = 128
CONVERSATION_PREFIX = "conversation:"
"""Names starting so are the collections of conversations' attached files (hidden from the lists)."""
NAMED = knowledge_bases.c.conversation_id.is_(None)
"""Where a query sees the named knowledge bases only (not the conversations' attached files)."""
T = TypeVar("T")


class KnowledgeBaseError(DocumentError):
    """A knowledge base cannot be found, made or used; the message says what to do."""


@dataclass(frozen=True)
class KnowledgeBaseInfo:
    """A knowledge base as listed: its name, embedder, and how many documents and chunks it holds."""

    name: str
    embedder: str
    documents: int
    chunks: int
    created: datetime


@dataclass(frozen=True)
class AddResult:
    """What adding one file did: ``added`` False when the same content was there (nothing embedded)."""

    file: str
    added: bool
    chunks: int


Infos = list[KnowledgeBaseInfo]
Hits = list[Hit]
AddResults = list[AddResult]
DocumentRows = list[tuple[str, str, int]]
Names = list[str]


class KnowledgeBases:
    """The knowledge bases of one database (the conversations' own, by default). Thread-safe."""

    def __init__(self, engine: Engine, embedder: Callable[[str], Embedder] = get_embedder) -> None:
        """Wrap an engine whose database is migrated and has sqlite-vec; use :meth:`open` instead."""
        self._engine = engine
        self._embedder = embedder

    @classmethod
    def open(cls, url: str | None = None) -> KnowledgeBases:
        """Open (and migrate) the database at ``url`` (default: the conversations' database).

        Raises:
            KnowledgeBaseError: If the database has no vector index (sqlite-vec, pgvector).
            StoreError: If the database cannot be opened or migrated.
        """
        engine = database.create_store_engine(url or database.default_url())
        try:
            database.migrate(engine)
            problem = vectors.unavailable(engine)
            if problem is not None:
                raise KnowledgeBaseError(problem)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine)

    def close(self) -> None:
        """Release the database connections."""
        self._engine.dispose()

    def __enter__(self) -> KnowledgeBases:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- knowledge bases ------------------------------------------------------------------------
    def create(self, name: str, embedder: str = DEFAULT_EMBEDDER) -> KnowledgeBaseInfo:
        """Create an empty knowledge base ``name`` embedded with ``embedder``.

        Raises:
            KnowledgeBaseError: If the name is not valid or taken, or the embedder unknown.
        """
        name = self._check_name(name)
        dim = self._embedder(embedder).dim

        def work(connection: Connection) -> None:
            if self._id(connection, name) is not None:
                raise KnowledgeBaseError(f"A knowledge base called {name!r} exists already.")
            kb_id = connection.execute(
                knowledge_bases.insert().values(
                    name=name, embedder=embedder, dim=dim, created_at=datetime.now(timezone.utc)
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            vectors.create(connection, kb_id, dim)

        database.run_write(self._engine, work)
        return self.info(name)

    def list(self) -> Infos:
        """Every knowledge base, by name."""
        documents = (
            sa.select(sa.func.count())
            .select_from(kb_documents)
            .where(kb_documents.c.kb_id == knowledge_bases.c.id)
            .scalar_subquery()
        )
        chunks = (
            sa.select(sa.func.count())
            .select_from(kb_chunks.join(kb_documents))
            .where(kb_documents.c.kb_id == knowledge_bases.c.id)
            .scalar_subquery()
        )
        statement = (
            sa.select(
                knowledge_bases.c.name,
                knowledge_bases.c.embedder,
                documents,
                chunks,
                knowledge_bases.c.created_at,
            )
            .where(NAMED)
            .order_by(knowledge_bases.c.name)
        )
        rows = database.run_read(self._engine, lambda c: c.execute(statement).all())
        return [KnowledgeBaseInfo(str(r[0]), str(r[1]), int(r[2]), int(r[3]), r[4]) for r in rows]

    def names(self) -> Names:
        """The knowledge bases' names, sorted (cheap: no counting, for a picker)."""
        statement = sa.select(knowledge_bases.c.name).where(NAMED).order_by(knowledge_bases.c.name)
        return database.run_read(
            self._engine, lambda c: [str(name) for name in c.execute(statement).scalars()]
        )

    def info(self, name: str) -> KnowledgeBaseInfo:
        """One knowledge base.

        Raises:
            KnowledgeBaseError: If there is none called ``name``.
        """
        for found in self.list():
            if found.name == name:
                return found
        raise self._missing(name)

    def documents(self, name: str) -> DocumentRows:
        """(file, kind, chunks) of each document in the knowledge base, in the order they were added."""
        statement = (
            sa.select(kb_documents.c.name, kb_documents.c.kind, sa.func.count(kb_chunks.c.id))
            .select_from(kb_documents.outerjoin(kb_chunks))
            .join(knowledge_bases)
            .where(knowledge_bases.c.name == name, NAMED)
            .group_by(kb_documents.c.id)
            .order_by(kb_documents.c.id)
        )
        self.info(name)
        rows = database.run_read(self._engine, lambda c: c.execute(statement).all())
        return [(str(r[0]), str(r[1]), int(r[2])) for r in rows]

    def remove(self, name: str, file: str | None = None) -> int:
        """Delete the knowledge base ``name``, or only its document(s) called ``file``.

        Returns:
            How many documents went.

        Raises:
            KnowledgeBaseError: If there is no such knowledge base, or no such document in it.
        """

        def work(connection: Connection) -> int:
            kb_id = self._id(connection, name)
            if kb_id is None:
                raise self._missing(name)
            chosen = kb_documents.c.kb_id == kb_id
            if file is not None:
                chosen = sa.and_(chosen, kb_documents.c.name == file)
            ids = [row[0] for row in connection.execute(sa.select(kb_documents.c.id).where(chosen))]
            if file is not None and not ids:
                raise KnowledgeBaseError(
                    f"{name!r} holds no document called {file!r}; see: python -m workbench kb list {name}"
                )
            if file is None:
                collections.drop(connection, kb_id)
            else:
                collections.delete_documents(connection, kb_id, ids)
            return len(ids)

        return database.run_write(self._engine, work)

    # --- documents ------------------------------------------------------------------------------
    def add(
        self,
        name: str,
        files: Sequence[str | Path | tuple[str, bytes]],
        *,
        create: bool = True,
        progress: Callable[[str, str, int, int], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> AddResults:
        """Add files (paths, or (name, bytes) pairs) to the knowledge base ``name``.

        Args:
            name: The knowledge base; created with the default embedder if missing and ``create``.
            files: What to add.
            create: Create the knowledge base when there is none called ``name``.
            progress: Told (file, "pages" or "chunks", done, total).
            cancel: Set it to stop: the file being added is not kept (those before it are).

        Raises:
            DocumentError: If a file cannot be used (it names the file); the files before it stay. A
                knowledge base this call created is removed again when none of its files was added.
            KnowledgeBaseError: If there is no such knowledge base and ``create`` is off.
        """
        created = False
        try:
            base = self.info(name)
        except KnowledgeBaseError:
            if not create:
                raise
            base = self.create(name)
            created = True
        embedder = self._embedder(base.embedder)
        results: AddResults = []
        try:
            for item in files:
                file_name, data = item if isinstance(item, tuple) else (Path(item).name, read_file(item))
                results.append(self._add_one(name, embedder, file_name, data, progress, cancel))
        except BaseException:  # a refused file, a cancel, a Stop: no empty knowledge base left behind
            if created and not any(result.added for result in results):
                self.remove(name)
            raise
        return results

    def _add_one(
        self,
        name: str,
        embedder: Embedder,
        file_name: str,
        data: bytes,
        progress: Callable[[str, str, int, int], None] | None,
        cancel: threading.Event | None,
    ) -> AddResult:
        digest = hashlib.sha256(data).hexdigest()
        present = (
            sa.select(kb_documents.c.id)
            .join(knowledge_bases)
            .where(knowledge_bases.c.name == name, NAMED, kb_documents.c.sha256 == digest)
        )
        if database.run_read(self._engine, lambda c: c.execute(present).first()) is not None:
            return AddResult(file_name, False, 0)
        told: IndexProgress | None = None
        if progress is not None:
            report = progress

            def told(what: str, done: int, total: int) -> None:
                report(file_name, what, done, total)

        document = parse_document(
            file_name,
            data,
            progress=None if told is None else (lambda done, total: told("pages", done, total)),
            cancel=cancel,
        )
        chunks, embedded = collections.prepare(document, embedder, told, cancel)

        def work(connection: Connection) -> AddResult:
            kb_id = self._id(connection, name)
            if kb_id is None:
                raise self._missing(name)
            if connection.execute(present).first() is not None:  # added meanwhile by another process
                return AddResult(file_name, False, 0)
            collections.insert_document(connection, kb_id, document, chunks, embedded)
            return AddResult(file_name, True, len(chunks))

        return database.run_write(self._engine, work)

    # --- search ---------------------------------------------------------------------------------
    def search(self, name: str, query: str, k: int = 5) -> Hits:
        """The ``k`` chunks of knowledge base ``name`` nearest to ``query`` (cosine), best first.

        Raises:
            KnowledgeBaseError: If there is no such knowledge base.
        """
        statement = sa.select(knowledge_bases.c.id, knowledge_bases.c.embedder).where(
            knowledge_bases.c.name == name, NAMED
        )

        def find(connection: Connection) -> collections.Found | None:
            row = connection.execute(statement).first()
            return None if row is None else (int(row[0]), str(row[1]))

        def read(work: Callable[[Connection], T]) -> T:
            return database.run_read(self._engine, work)

        hits = collections.search(read, find, lambda embedder: self._embedder(embedder).query(query), k)
        if hits is None:
            raise self._missing(name)
        return hits

    def retriever(self, name: str) -> KnowledgeBaseRetriever:
        """What a chat session reads its sources from (``ChatSession.documents``).

        Raises:
            KnowledgeBaseError: If there is no such knowledge base.
        """
        return KnowledgeBaseRetriever(self, self.info(name).name)

    def document_count(self, name: str) -> int:
        """How many documents the knowledge base ``name`` holds (0 if there is none)."""
        statement = (
            sa.select(sa.func.count())
            .select_from(kb_documents.join(knowledge_bases))
            .where(knowledge_bases.c.name == name, NAMED)
        )
        return int(database.run_read(self._engine, lambda c: c.execute(statement).scalar_one()))

    # --- helpers --------------------------------------------------------------------------------
    @staticmethod
    def _id(connection: Connection, name: str) -> int | None:
        found = connection.execute(
            sa.select(knowledge_bases.c.id).where(knowledge_bases.c.name == name, NAMED)
        ).first()
        return None if found is None else int(found[0])

    @staticmethod
    def _missing(name: str) -> KnowledgeBaseError:
        return KnowledgeBaseError(
            f"There is no knowledge base called {name!r}; see them with: python -m workbench kb list"
        )

    @staticmethod
    def _check_name(name: str) -> str:
        name = name.strip()
        if not name or len(name) > MAX_NAME_CHARS or any(ord(c) < 32 for c in name):
            raise KnowledgeBaseError(
                f"A knowledge base name is 1 to {MAX_NAME_CHARS} printable characters; {name[:40]!r} is not."
            )
        if name.startswith(CONVERSATION_PREFIX):
            raise KnowledgeBaseError(
                f"Names starting with {CONVERSATION_PREFIX!r} are kept for the files attached to "
                "conversations; choose another name."
            )
        return name


class KnowledgeBaseRetriever:
    """A knowledge base seen as a chat session's sources: always searched, never sent whole."""

    def __init__(self, bases: KnowledgeBases, name: str) -> None:
        self.bases = bases
        self.name = name

    def __len__(self) -> int:
        return self.bases.document_count(self.name)

    def sections(self) -> list[tuple[str, str, str]]:
        """None: a knowledge base is searched, never sent whole."""
        return []

    def search(self, query: str, k: int = 5) -> Hits:
        """The passages nearest to ``query``."""
        return self.bases.search(self.name, query, k)
