"""The files attached to a conversation, saved with it in the conversations' database.

Each conversation with attached files has a collection of its own: a row of ``knowledge_bases`` with
its ``conversation_id`` (revision 0007), hidden from the named knowledge bases, with the files' bytes,
pages, chunks and vectors (sqlite-vec or pgvector, as knowledge bases). So a reload, a second tab or
the history sidebar gives a conversation its documents back. Deleting a conversation hides them with it
(undo brings both back); purging it removes them (:func:`purge`); a fork copies them (:func:`copy`).

Rows that were changed by hand or by another program never break a page: a document whose row cannot
be read is left out of the list, and a failed read or search is a :class:`DocumentError` that says so.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from workbench.documents.embedding import DEFAULT_EMBEDDER, Embedder, get_embedder
from workbench.documents.errors import DocumentError
from workbench.documents.index import AttachedFile, Hit, IndexProgress
from workbench.documents.model import Document
from workbench.errors import WorkbenchError
from workbench.knowledge import collections, vectors
from workbench.knowledge.bases import CONVERSATION_PREFIX
from workbench.knowledge.schema import kb_documents, kb_sections, knowledge_bases
from workbench.store import database
from workbench.store.schema import conversations

T = TypeVar("T")
UNSAVED = (
    "The change to this conversation's documents could not be saved ({error}): a row in the database is "
    "in the way. Try again, or attach the files in a new conversation."
)
ORPHAN_AGE = timedelta(days=1)
"""Files attached to a conversation that was never saved are purged once this old."""
UNREADABLE = (
    "The documents saved with this conversation could not be read ({error}); detach them and attach "
    "the files again."
)


def available(engine: Engine) -> bool:
    """Whether this database can keep attached files (sqlite-vec or pgvector is there)."""
    try:
        return vectors.unavailable(engine) is None
    except (SQLAlchemyError, WorkbenchError):
        return False


class ConversationDocuments:
    """The documents attached to one conversation, saved in the store (an ``AttachedDocuments``).

    Cheap to make (nothing is read until used); thread-safe, and two objects on one conversation (two
    tabs) see each other's files.

    Args:
        engine: The conversations' database (migrated, with a vector index: :func:`available`).
        conversation_id: The conversation (its row may not exist yet: files can come first).
        embedder: Gives the embedder of a name (the default one, loaded on first use).
    """

    def __init__(
        self, engine: Engine, conversation_id: str, embedder: Callable[[str], Embedder] = get_embedder
    ) -> None:
        self._engine = engine
        self.conversation_id = conversation_id
        self._embedder = embedder

    # --- reading --------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.listing())

    def listing(self) -> list[AttachedFile]:
        """The attached documents, in the order they were attached (unreadable rows left out)."""
        statement = (
            sa.select(
                kb_documents.c.name,
                kb_documents.c.kind,
                kb_documents.c.sections,
                kb_documents.c.sha256,
                kb_documents.c.size,
            )
            .join(knowledge_bases)
            .where(knowledge_bases.c.conversation_id == self.conversation_id)
            .order_by(kb_documents.c.id)
        )
        rows = self._read(lambda c: c.execute(statement).all())
        found = []
        for row in rows:
            try:
                found.append(AttachedFile(str(row[0]), str(row[1]), int(row[2]), str(row[3]), int(row[4])))
            except (TypeError, ValueError):
                continue  # a row changed by hand: not listed
        return found

    def has(self, sha256: str) -> bool:
        """Whether a file with this content is attached."""
        return any(file.sha256 == sha256 for file in self.listing())

    def content(self, name: str) -> bytes | None:
        """The bytes of the attached file ``name`` (None if there is none, or they are not bytes)."""
        statement = (
            sa.select(kb_documents.c.content)
            .join(knowledge_bases)
            .where(knowledge_bases.c.conversation_id == self.conversation_id, kb_documents.c.name == name)
            .order_by(kb_documents.c.id)
        )
        found = self._read(lambda c: c.execute(statement).scalars().first())
        return bytes(found) if isinstance(found, (bytes, bytearray, memoryview)) else None

    def sections(self) -> list[tuple[str, str, str]]:
        """(file, location, text) of every non-empty page, slide or part, in order."""
        statement = (
            sa.select(kb_documents.c.name, kb_sections.c.location, kb_sections.c.text)
            .select_from(kb_sections.join(kb_documents).join(knowledge_bases))
            .where(knowledge_bases.c.conversation_id == self.conversation_id)
            .order_by(kb_documents.c.id, kb_sections.c.position)
        )
        rows = self._read(lambda c: c.execute(statement).all())
        return [
            (str(name), str(where or ""), text)
            for name, where, text in rows
            if isinstance(text, str) and text.strip()
        ]

    def search(self, query: str, k: int = 5) -> list[Hit]:
        """The ``k`` attached passages nearest to ``query``, best first."""

        def embed(embedder: str) -> np.ndarray:
            try:
                return self._embedder(embedder).query(query)
            except WorkbenchError as exc:
                raise DocumentError(UNREADABLE.format(error=exc)) from None

        return collections.search(self._read, self._collection_in, embed, k) or []

    # --- changing -------------------------------------------------------------------------------
    def add(
        self,
        document: Document,
        progress: IndexProgress | None = None,
        cancel: threading.Event | None = None,
        data: bytes | None = None,
    ) -> bool:
        """Chunk and embed ``document``, then save it in one transaction; False if already attached.

        Raises:
            DocumentCancelledError: If ``cancel`` was set (or the caller stopped); nothing is saved.
        """
        if self.has(document.sha256):
            return False
        found = self._collection()
        embedder = self._embedder(found[1] if found is not None else DEFAULT_EMBEDDER)
        chunks, embedded = collections.prepare(document, embedder, progress, cancel)

        def work(connection: Connection) -> bool:
            kb_id = self._ensure(connection, embedder)
            present = sa.select(kb_documents.c.id).where(
                kb_documents.c.kb_id == kb_id, kb_documents.c.sha256 == document.sha256
            )
            if connection.execute(present).first() is not None:  # another tab attached it meanwhile
                return False
            collections.insert_document(
                connection, kb_id, document, chunks, embedded, content=data, keep_sections=True
            )
            return True

        return self._write(work)

    def remove(self, name: str) -> None:
        """Detach the document(s) called ``name``: file, pages, chunks and vectors."""

        def work(connection: Connection) -> None:
            found = self._collection_in(connection)
            if found is None:
                return
            ids = [
                int(i)
                for i in connection.execute(
                    sa.select(kb_documents.c.id).where(
                        kb_documents.c.kb_id == found[0], kb_documents.c.name == name
                    )
                ).scalars()
            ]
            collections.delete_documents(connection, found[0], ids)

        self._write(work)

    # --- helpers --------------------------------------------------------------------------------
    def _read(self, work: Callable[[Connection], T]) -> T:
        try:
            return database.run_read(self._engine, work)
        except SQLAlchemyError as exc:
            raise DocumentError(UNREADABLE.format(error=type(exc).__name__)) from None

    def _write(self, work: Callable[[Connection], T]) -> T:
        """One write transaction; a race with another tab is tried again, a bad row is an error to show."""
        for attempt in range(2):
            try:
                return database.run_write(self._engine, work)
            except IntegrityError as exc:  # two tabs made the collection at once, or a row in the way
                if attempt:
                    raise DocumentError(UNSAVED.format(error=type(exc).__name__)) from None
            except SQLAlchemyError as exc:
                raise DocumentError(UNSAVED.format(error=type(exc).__name__)) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _collection(self) -> tuple[int, str] | None:
        return self._read(self._collection_in)

    def _collection_in(self, connection: Connection) -> tuple[int, str] | None:
        row = connection.execute(
            sa.select(knowledge_bases.c.id, knowledge_bases.c.embedder).where(
                knowledge_bases.c.conversation_id == self.conversation_id
            )
        ).first()
        return None if row is None else (int(row[0]), str(row[1]))

    def _ensure(self, connection: Connection, embedder: Embedder) -> int:
        found = self._collection_in(connection)
        if found is not None:
            return found[0]
        return _create(connection, self.conversation_id, embedder.name, embedder.dim)


def _create(connection: Connection, conversation_id: str, embedder: str, dim: int) -> int:
    """Make ``conversation_id``'s hidden collection (its row and vector table); return its id."""
    kb_id = int(
        connection.execute(
            knowledge_bases.insert().values(
                name=f"{CONVERSATION_PREFIX}{conversation_id}",
                embedder=embedder,
                dim=dim,
                created_at=datetime.now(timezone.utc),
                conversation_id=conversation_id,
            )
        ).inserted_primary_key[0]  # type: ignore[index]
    )
    vectors.create(connection, kb_id, dim)
    return kb_id


def purge(connection: Connection, conversation_ids: list[str]) -> None:
    """Remove the attached files of these conversations for good (in the caller's transaction)."""
    if not conversation_ids:
        return
    ids = connection.execute(
        sa.select(knowledge_bases.c.id).where(knowledge_bases.c.conversation_id.in_(conversation_ids))
    ).scalars()
    for kb_id in list(ids):
        collections.drop(connection, int(kb_id))


def copy(connection: Connection, source_conversation: str, target_conversation: str) -> None:
    """Give ``target_conversation`` a copy of ``source_conversation``'s attached files (a fork)."""
    row = connection.execute(
        sa.select(knowledge_bases).where(knowledge_bases.c.conversation_id == source_conversation)
    ).first()
    taken = connection.execute(
        sa.select(knowledge_bases.c.id).where(knowledge_bases.c.conversation_id == target_conversation)
    ).first()
    if row is None or taken is not None:
        return
    kb_id = _create(connection, target_conversation, str(row.embedder), int(row.dim))
    collections.copy(connection, int(row.id), kb_id)


def described(connection: Connection, conversation_id: str) -> list[dict[str, Any]]:
    """A conversation's attached files as its JSON export lists them: name, kind, size, sha256."""
    rows = connection.execute(
        sa.select(kb_documents.c.name, kb_documents.c.kind, kb_documents.c.size, kb_documents.c.sha256)
        .join(knowledge_bases)
        .where(knowledge_bases.c.conversation_id == conversation_id)
        .order_by(kb_documents.c.id)
    ).all()
    return [{"name": str(r[0]), "kind": str(r[1]), "size": r[2], "sha256": str(r[3])} for r in rows]


def orphans(connection: Connection, older_than: timedelta = ORPHAN_AGE) -> list[str]:
    """Conversations with attached files but no row, whose files are older than ``older_than``."""
    saved = sa.select(conversations.c.id).where(conversations.c.id == knowledge_bases.c.conversation_id)
    statement = sa.select(knowledge_bases.c.conversation_id).where(
        knowledge_bases.c.conversation_id.is_not(None),
        ~saved.exists(),
        knowledge_bases.c.created_at < datetime.now(timezone.utc) - older_than,
    )
    return [str(i) for i in connection.execute(statement).scalars()]


__all__ = ["ConversationDocuments", "available", "copy", "described", "orphans", "purge"]
