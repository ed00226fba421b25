"""The Chat page's documents: attach files (with a progress bar), list and detach them, show sources.

UI only: parsing, chunking, embedding and retrieval live in :mod:`workbench.documents`. Stop ends the
script run, which interrupts ``attach`` at its next progress report: nothing of that file is kept.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from pages._common import show_error
from workbench.documents import KINDS, DocumentError, DocumentIndex, attach, sources_of
from workbench.documents.context import Retriever
from workbench.errors import WorkbenchError
from workbench.messages import Message
from workbench.shared import process_resource
from workbench.store import default_url

ATTACHED = "Files attached here"

FILE_TYPES = sorted({suffix.lstrip(".") for suffix in KINDS})
"""What the chat input accepts (pdf, docx, pptx, html, md, txt)."""


def attach_files(index: DocumentIndex, uploads: list[Any]) -> None:
    """Parse and index each uploaded file, with a progress bar naming its pages, then its chunks."""
    for upload in uploads:
        name = str(upload.name)
        bar = st.progress(0.0, text=f"Reading {name}")

        def progress(what: str, done: int, total: int, name: str = name, bar: Any = bar) -> None:
            unit = "page" if what == "pages" else "passage"
            bar.progress(done / total if total else 1.0, text=f"{name}: {unit} {done} of {total}")

        try:
            document = attach(index, name, upload.getvalue(), progress)
        except DocumentError as exc:
            bar.empty()
            show_error(exc)
            continue
        bar.empty()
        pages = len(document.sections)
        st.toast(f"Attached {name} ({pages} {'page' if pages == 1 else 'pages'})")


def documents_sidebar(index: DocumentIndex) -> None:
    """The attached documents, each with a button that detaches it."""
    if not len(index):
        return
    st.sidebar.markdown("**Documents**")
    for number, document in enumerate(list(index.documents)):
        left, right = st.sidebar.columns([4, 1])
        left.caption(f"{document.name} · {len(document.sections)} {document.kind} parts")
        if right.button("✕", key=f"detach_{number}_{document.sha256[:8]}", help=f"Detach {document.name}"):
            index.remove(document.name)
            st.rerun()


def source_picker(attached: DocumentIndex) -> Retriever:
    """The sidebar's choice of what questions are answered from: the attached files or a knowledge base."""
    from workbench.knowledge import KnowledgeBases

    try:
        url = default_url()
        bases = process_resource("knowledge", url, lambda: KnowledgeBases.open(url))
        names = bases.names()
    except WorkbenchError as exc:  # no sqlite-vec, another database: the attached files still work
        st.sidebar.caption(f"Knowledge bases: {exc}")
        return attached
    if not names:
        return attached
    choice = st.sidebar.selectbox("Answer from", [ATTACHED, *names], key="chat_knowledge_base")
    return attached if choice == ATTACHED else bases.retriever(str(choice))


def show_sources(message: Message) -> None:
    """Under an answer: each source it was given, ``[1] file, page 3``, its passage in an expander."""
    for source in sources_of(message.metadata):
        with st.expander(f"[{source.number}] {source.label}"):
            st.text(source.text)  # plain text: a passage is the file's words, never Markdown to render
