"""Attached documents on the Chat, Tool and Code pages, saved with the conversation (AppTest, the real
embedded model, whose text is never asserted; the real sandboxed kernel on the Code page)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.documents import files
from workbench.documents import attach
from workbench.knowledge import ConversationDocuments
from workbench.store import ConversationStore, default_url

pytestmark = pytest.mark.model

MAIN = str(Path(__file__).resolve().parents[2] / "main.py")
TURBINE = files.pdf(["The Zephyr turbine spins at 3000 rpm.", "Oil cools it."])


def _app(monkeypatch: pytest.MonkeyPatch, page: str = "chat", conversation_id: str | None = None) -> AppTest:
    for name in ("WORKBENCH_MODEL", "MODEL_PATH", "WORKBENCH_DEVICE", "WORKBENCH_DTYPE"):
        monkeypatch.delenv(name, raising=False)
    at = AppTest.from_file(MAIN, default_timeout=300)
    if conversation_id is not None:
        at.query_params["c"] = conversation_id
    at.run()
    if page != "chat":
        at.switch_page(f"pages/{page}.py").run()
    at.sidebar.slider(key=f"{page}_temperature").set_value(0.0)
    at.sidebar.number_input(key=f"{page}_max_new").set_value(8)
    return at.run()


def _url_id(at: AppTest) -> str:
    value = at.query_params["c"]
    return str(value[0] if isinstance(value, list) else value)


def _listed(at: AppTest) -> list[str]:
    return [caption.value for caption in at.sidebar.caption if "parts" in caption.value]


def test_a_reload_gives_the_chat_its_documents_back(monkeypatch: pytest.MonkeyPatch) -> None:
    at = _app(monkeypatch)
    at.chat_input(key="chat_input").upload("turbine.pdf", TURBINE).run()  # attached before any message
    assert not at.exception and not at.error
    at.run()  # the sidebar, drawn above the input, lists it from the next run on
    assert _listed(at) == ["turbine.pdf · 2 pdf parts"]
    conversation_id = _url_id(at)

    reloaded = _app(monkeypatch, conversation_id=conversation_id)  # a reload, or a second tab
    assert _listed(reloaded) == ["turbine.pdf · 2 pdf parts"]
    reloaded.chat_input(key="chat_input").set_value("How fast does the turbine spin?").run()
    assert not reloaded.exception and not reloaded.error
    assert [e.label for e in reloaded.main.expander] == ["[1] turbine.pdf, page 1", "[2] turbine.pdf, page 2"]

    reloaded.sidebar.button(key="chat_history_new").click().run()  # a new conversation starts with none
    assert _listed(reloaded) == []


def test_the_tool_page_attaches_and_answers_with_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    at = _app(monkeypatch, "tool")
    at.sidebar.selectbox(key="tool_choice").set_value("none").run()
    box = at.chat_input(key="tool_input")
    box.upload("turbine.pdf", TURBINE)
    box.set_value("How fast does the turbine spin?")
    at.run()
    assert not at.exception and not at.error
    assert _listed(at) == ["turbine.pdf · 2 pdf parts"]
    assert [e.label for e in at.main.expander if e.label.startswith("[")] == [
        "[1] turbine.pdf, page 1",
        "[2] turbine.pdf, page 2",
    ]


def test_tampered_document_rows_do_not_crash_a_reopened_conversation(monkeypatch: pytest.MonkeyPatch) -> None:
    with ConversationStore.open(default_url()) as store:  # the test session's data folder
        conversation_id = store.create("chat", "tampered").id
        documents = ConversationDocuments(store.engine, conversation_id)
        attach(documents, "turbine.pdf", TURBINE)
        attach(documents, "notes.txt", b"Oil cools the turbine.")
        with store.engine.begin() as connection:
            kb_id = connection.exec_driver_sql(
                "SELECT id FROM knowledge_bases WHERE conversation_id = ?", (conversation_id,)
            ).scalar_one()
            connection.exec_driver_sql("UPDATE kb_documents SET sections = 'many' WHERE name = 'notes.txt'")
            connection.exec_driver_sql("UPDATE kb_sections SET text = X'FF00'")  # bytes where text was
            connection.exec_driver_sql(f"DROP TABLE kb_vectors_{kb_id}")
    at = _app(monkeypatch, conversation_id=conversation_id)
    assert not at.exception
    assert _listed(at) == ["turbine.pdf · 2 pdf parts"]  # the unreadable row is left out
    at.chat_input(key="chat_input").set_value("How fast does the turbine spin?").run()
    assert not at.exception
    assert [e.value for e in at.error] and "kb_vectors_" in at.error[0].value  # said, not raised
    at.chat_input(key="chat_input").set_value("Hello").run()  # the page goes on
    assert not at.exception


@pytest.fixture
def code_app(monkeypatch: pytest.MonkeyPatch) -> Iterator[AppTest]:
    monkeypatch.setenv("WORKBENCH_MAX_KERNELS", "2")
    at = _app(monkeypatch, "code")
    yield at
    at.session_state["code_session"].close()


@pytest.mark.kernel
def test_the_code_page_puts_an_attached_file_in_the_kernel_folder(code_app: AppTest) -> None:
    code_app.chat_input(key="code_input").upload("turbine.pdf", TURBINE).run()
    assert not code_app.exception and not code_app.error
    code_app.run()
    session = code_app.session_state["code_session"]
    assert session.read_file("turbine.pdf") == TURBINE
    assert any(
        "turbine.pdf" in getattr(button, "label", "") for button in code_app.sidebar.get("download_button")
    )
    assert "they are in the current folder: turbine.pdf." in session.conversation()[0].content
