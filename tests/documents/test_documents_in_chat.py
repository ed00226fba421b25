"""Documents in a conversation: chunking, the real e5 embedder, retrieval, sources and citations.

The chat loop runs on the scripted backend (the 135M model's free text is never asserted); the files
are real (made by tests/documents/files.py), the parsers and the embedder are the real ones.
"""

from __future__ import annotations

import threading

import pytest

from tests.documents import files
from tests.scripted import PlainDialect, ScriptedBackend
from workbench.chat_model import ChatModel
from workbench.documents import DocumentCancelledError, DocumentError, DocumentIndex, attach, sources_of
from workbench.documents.chunking import chunk_document
from workbench.documents.embedding import get_embedder
from workbench.documents.model import Document, Section
from workbench.messages import Role
from workbench.modes.chat import ChatSession

FACTS = [
    "The Zephyr turbine spins at 3000 rpm and is cooled by mineral oil.",
    "Our office cafeteria serves noodles on Tuesdays.",
    "The quarterly budget review happens in the second week of March.",
    "颐和园是北京的一座皇家园林，以昆明湖和万寿山闻名。",
]


def session_with(*replies: str, context_length: int = 20_000) -> tuple[ChatSession, DocumentIndex]:
    backend = ScriptedBackend(*replies, chunk_chars=None, context_length=context_length)
    session = ChatSession(ChatModel(backend, dialect=PlainDialect()))
    session.documents = index = DocumentIndex()
    return session, index


def test_chunks_are_cut_by_tokens_with_overlap_and_keep_their_page() -> None:
    embedder = get_embedder()
    sentences = " ".join(f"Sentence {i} is about topic {i % 7}." for i in range(120))
    document = Document("a.pdf", "pdf", [Section(sentences, "page 4"), Section("短。" * 10, "page 5")])
    chunks = chunk_document(document, embedder.count_tokens, chunk_tokens=60, overlap_tokens=15)
    assert len(chunks) > 5
    assert all(embedder.count_tokens(chunk.text) <= 60 for chunk in chunks)
    assert {chunk.location for chunk in chunks} == {"page 4", "page 5"}
    first, second = chunks[0].text, chunks[1].text
    assert first.split(". ")[-1].rstrip(".") in second  # the tail of one chunk starts the next
    assert chunks[-1].source == "a.pdf, page 5"


def test_retrieval_finds_the_passage_in_english_and_chinese() -> None:
    index = DocumentIndex(chunk_tokens=40, overlap_tokens=8)
    attach(index, "facts.pdf", files.pdf(FACTS[:3]))
    attach(index, "北京.txt", FACTS[3].encode())
    assert index.search("How fast does the turbine rotate?", 1)[0].chunk.source == "facts.pdf, page 1"
    assert index.search("When is the budget meeting?", 1)[0].chunk.location == "page 3"
    assert index.search("昆明湖在哪个园林里？", 1)[0].chunk.document == "北京.txt"


def test_a_short_document_goes_in_whole_and_the_reply_keeps_its_sources() -> None:
    session, index = session_with("It spins at 3000 rpm [1].")
    attach(index, "turbine.pdf", files.pdf(FACTS[:2]))
    reply = session.send("How fast does it spin?").close()
    prompt = ScriptedBackend.of(session.model).prompts[-1]
    assert "[1] turbine.pdf, page 1:\nThe Zephyr turbine spins at 3000 rpm" in prompt
    assert "[2] turbine.pdf, page 2:" in prompt  # whole: every page
    assert prompt.rstrip().endswith("Question: How fast does it spin?\nassistant:")
    sources = sources_of(reply.metadata)
    assert [(s.number, s.label) for s in sources] == [(1, "turbine.pdf, page 1"), (2, "turbine.pdf, page 2")]
    assert "3000 rpm" in sources[0].text
    assert session.messages[0].content == "How fast does it spin?"  # the history keeps the question only
    assert session.messages[0].role is Role.USER


def test_a_long_document_is_retrieved_not_sent_whole() -> None:
    filler = [f"Page {n} is about the history of the company picnic in year {1900 + n}." for n in range(40)]
    pages = [*filler[:25], FACTS[0], *filler[25:]]
    session, index = session_with("Answer [1].", context_length=2500)  # the scripted model counts characters
    attach(index, "manual.pdf", files.pdf(pages))
    reply = session.send("How fast does the Zephyr turbine spin?").close()
    sources = sources_of(reply.metadata)
    assert 1 <= len(sources) <= 5
    assert sources[0].label == "manual.pdf, page 26" and "3000 rpm" in sources[0].text
    assert len(ScriptedBackend.of(session.model).prompts[-1]) < 2500


def test_a_bad_file_leaves_the_index_as_it_was() -> None:
    index = DocumentIndex()
    attach(index, "good.txt", b"Good text about turbines.")
    before = index.chunks
    for name, data in [("scan.pdf", files.scanned_pdf()), ("secret.pdf", files.encrypted_pdf())]:
        with pytest.raises(DocumentError, match=name.replace(".", r"\.")):
            attach(index, name, data)
    assert index.chunks == before and [d.name for d in index.documents] == ["good.txt"]


def test_stop_while_embedding_keeps_nothing_and_progress_counts_pages_then_chunks() -> None:
    index = DocumentIndex(chunk_tokens=20, overlap_tokens=4)
    cancel = threading.Event()
    seen: list[tuple[str, int, int]] = []

    def progress(what: str, done: int, total: int) -> None:
        seen.append((what, done, total))
        if what == "chunks":
            cancel.set()

    with pytest.raises(DocumentCancelledError):
        attach(index, "long.pdf", files.pdf([" ".join(["word"] * 200)] * 3), progress, cancel)
    assert len(index) == 0 and index.chunks == []
    assert seen[:4] == [("pages", 0, 3), ("pages", 1, 3), ("pages", 2, 3), ("pages", 3, 3)]
    assert seen[4][0] == "chunks"


def test_the_same_content_is_not_embedded_twice() -> None:
    index = DocumentIndex()
    data = files.word(["Same content."])
    attach(index, "a.docx", data)
    count = len(index.chunks)
    attach(index, "copy of a.docx", data)
    assert len(index.chunks) == count and len(index) == 1
    index.remove("a.docx")
    assert index.chunks == [] and len(index) == 0
