"""Documents on the Chat, Tool and Code pages: attach files (with a progress bar), list and detach them,
pick a knowledge base, make, fill and remove knowledge bases, show an answer's sources.

UI only: parsing, chunking, embedding, retrieval and saving live in :mod:`workbench.documents` and
:mod:`workbench.knowledge`. The attached files belong to the open conversation: saved with it in the
store when the store can keep them (sqlite-vec, pgvector), else kept in this browser session. Stop ends
the script run, which interrupts ``attach`` at its next progress report: nothing of that file is kept.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import streamlit as st

from pages._common import session_object, show_error
from workbench.documents import KINDS, AttachedDocuments, DocumentIndex, attach, sources_of
from workbench.documents.context import Retriever
from workbench.errors import WorkbenchError
from workbench.messages import Message
from workbench.shared import process_resource
from workbench.store import default_url
from workbench.store.page_history import PageHistory

if TYPE_CHECKING:
    from workbench.knowledge import KnowledgeBases

ATTACHED = "Files attached here"

FILE_TYPES = sorted({suffix.lstrip(".") for suffix in KINDS})
"""What the chat inputs accept (pdf, docx, pptx, html, md, txt)."""


def attached_documents(key: str, history: PageHistory | None, conversation_id: str) -> AttachedDocuments:
    """The open conversation's attached files: saved with it when the store can keep them.

    Without a store (or one without a vector index) they live in this browser session, one set per
    conversation, as before.
    """
    from workbench.knowledge import ConversationDocuments
    from workbench.knowledge.attached import available

    if history is not None:
        engine = history.store.engine
        if process_resource("attached_documents", history.store.url, lambda: available(engine)):
            return ConversationDocuments(engine, conversation_id)
    kept: dict[str, DocumentIndex] = session_object(f"{key}_documents", dict)
    return kept.setdefault(conversation_id, DocumentIndex())


def _progress_bar(name: str) -> tuple[Any, Callable[[str, int, int], None]]:
    """A progress bar for reading ``name``, and what to tell it ("pages" or "chunks", done, total)."""
    bar = st.progress(0.0, text=f"Reading {name}")

    def progress(what: str, done: int, total: int) -> None:
        unit = "page" if what == "pages" else "passage"
        bar.progress(done / total if total else 1.0, text=f"{name}: {unit} {done} of {total}")

    return bar, progress


def attach_files(index: AttachedDocuments, uploads: list[Any]) -> list[str]:
    """Parse and index each uploaded file, with a progress bar naming its pages, then its chunks.

    Returns:
        The names of the files attached (a refused file is named in an error instead).
    """
    attached = []
    for upload in uploads:
        name = str(upload.name)
        bar, progress = _progress_bar(name)
        try:
            document = attach(index, name, upload.getvalue(), progress)
        except WorkbenchError as exc:  # a bad file, or the store failing: named, and the page goes on
            bar.empty()
            show_error(exc)
            continue
        bar.empty()
        pages = len(document.sections)
        st.toast(f"Attached {name} ({pages} {'page' if pages == 1 else 'pages'})")
        attached.append(name)
    return attached


def attach_sent(given: Any, index: AttachedDocuments) -> None:
    """Attach the documents sent with a chat input, before its text is sent (so a question sent with them
    can use them). Its images are :mod:`pages._images`' (``message_box_prompt``)."""
    if given is None:
        return
    from pages._images import split_uploads

    documents = split_uploads(list(given.files))[1]
    if documents:
        attach_files(index, documents)


def documents_sidebar(key: str, index: AttachedDocuments) -> None:
    """The attached documents, each with a button that detaches it."""
    try:
        listing = index.listing()
    except WorkbenchError as exc:  # saved rows that cannot be read: said, the page goes on
        st.sidebar.warning(str(exc))
        return
    if not listing:
        return
    st.sidebar.markdown("**Documents**")
    for number, file in enumerate(listing):
        left, right = st.sidebar.columns([4, 1])
        left.caption(f"{file.name} · {file.parts} {file.kind} parts")
        if right.button("✕", key=f"{key}_detach_{number}_{file.sha256[:8]}", help=f"Detach {file.name}"):
            try:
                index.remove(file.name)
            except WorkbenchError as exc:
                show_error(exc)
            else:
                st.rerun()


def source_picker(key: str, attached: AttachedDocuments) -> Retriever:
    """The sidebar's choice of what questions are answered from: the attached files or a knowledge base;
    under it, the knowledge bases themselves (:func:`knowledge_sidebar`)."""
    from workbench.knowledge import KnowledgeBases

    try:
        url = default_url()
        bases = process_resource("knowledge", url, lambda: KnowledgeBases.open(url))
        names = bases.names()
    except WorkbenchError as exc:  # no sqlite-vec, another database: the attached files still work
        st.sidebar.caption(f"Knowledge bases: {exc}")
        return attached
    chosen: Retriever = attached
    if names:
        choice = st.sidebar.selectbox("Answer from", [ATTACHED, *names], key=f"{key}_knowledge_base")
        if choice != ATTACHED:
            try:
                chosen = bases.retriever(str(choice))
            except WorkbenchError as exc:  # removed meanwhile (another tab): said, the attached files used
                st.sidebar.warning(str(exc))
    knowledge_sidebar(key, bases)
    return chosen


def knowledge_sidebar(key: str, bases: KnowledgeBases) -> None:
    """The sidebar's "Knowledge bases": each with its documents count and a remove button (asked twice),
    and a form that adds uploaded files to a new or an existing one, with a progress bar per file."""
    # Kept open once used: adding the first base draws the picker above it, which makes it a new expander
    with st.sidebar.expander("Knowledge bases", expanded=bool(st.session_state.get(f"{key}_kb_used"))):
        pending = st.session_state.get(f"{key}_kb_removing")
        problem = st.session_state.pop(f"{key}_kb_problem", None)
        if problem:
            st.error(problem)
        try:
            infos = bases.list()
        except WorkbenchError as exc:
            show_error(exc)
            return
        for number, info in enumerate(infos):
            left, right = st.columns([4, 1])
            documents = "document" if info.documents == 1 else "documents"
            left.caption(f"{info.name} · {info.documents} {documents}")
            right.button(
                "✕",
                key=f"{key}_kb_remove_{number}",
                help=f"Remove {info.name}",
                on_click=_ask_removal,
                args=(key, info.name),
            )
            if pending == info.name:
                st.warning(f"Remove {info.name} and its {info.documents} {documents}?")
                yes, no = st.columns(2)
                yes.button(
                    "Remove", key=f"{key}_kb_confirm", on_click=_remove_base, args=(key, bases, info.name)
                )
                no.button("Keep", key=f"{key}_kb_keep", on_click=_ask_removal, args=(key, None))
        with st.form(f"{key}_kb_form", clear_on_submit=True, border=False):
            name = st.text_input("Add to", key=f"{key}_kb_name", placeholder="a new name or an existing one")
            uploads = st.file_uploader(
                "Files", type=FILE_TYPES, accept_multiple_files=True, key=f"{key}_kb_files"
            )
            submitted = st.form_submit_button("Add files")
        if submitted:
            st.session_state[f"{key}_kb_used"] = True
            _add_to_base(bases, str(name or ""), list(uploads or []))


def _ask_removal(key: str, name: str | None) -> None:
    st.session_state[f"{key}_kb_removing"] = name
    st.session_state[f"{key}_kb_used"] = True


def _remove_base(key: str, bases: KnowledgeBases, name: str) -> None:
    """Remove the knowledge base (a callback: before the picker is drawn, so it can leave it first)."""
    st.session_state[f"{key}_kb_removing"] = None
    if st.session_state.get(f"{key}_knowledge_base") == name:
        st.session_state[f"{key}_knowledge_base"] = ATTACHED
    try:
        bases.remove(name)
    except WorkbenchError as exc:
        st.session_state[f"{key}_kb_problem"] = str(exc)


def _add_to_base(bases: KnowledgeBases, name: str, uploads: list[Any]) -> None:
    """Add each upload to the knowledge base ``name`` (made if new); a refused file is named in an error
    and the others go on. Reruns when all went in, so the picker shows the base."""
    if not name.strip() or not uploads:
        st.warning("Give a knowledge base name and at least one file.")
        return
    refused = False
    for upload in uploads:
        file = str(upload.name)
        bar, progress = _progress_bar(file)

        def told(_file: str, what: str, done: int, total: int, tell: Any = progress) -> None:
            tell(what, done, total)

        try:
            bases.add(name, [(file, upload.getvalue())], progress=told)
        except WorkbenchError as exc:  # a bad file, a bad name, the store failing: said, the page goes on
            bar.empty()
            show_error(exc)
            refused = True
            continue
        bar.empty()
    if not refused:
        st.toast(f"Added {len(uploads)} {'file' if len(uploads) == 1 else 'files'} to {name.strip()}")
        st.rerun()


def show_sources(message: Message) -> None:
    """Under an answer: each source it was given, ``[1] file, page 3``, its passage in an expander."""
    for source in sources_of(message.metadata):
        with st.expander(f"[{source.number}] {source.label}"):
            st.text(source.text)  # plain text: a passage is the file's words, never Markdown to render
