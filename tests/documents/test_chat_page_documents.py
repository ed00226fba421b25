"""Attaching documents on the Chat page (AppTest, the real embedded model; its text is never asserted)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.documents import files

pytestmark = pytest.mark.model

MAIN = str(Path(__file__).resolve().parents[2] / "main.py")


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> AppTest:
    for name in ("WORKBENCH_MODEL", "MODEL_PATH", "WORKBENCH_DEVICE", "WORKBENCH_DTYPE"):
        monkeypatch.delenv(name, raising=False)
    at = AppTest.from_file(MAIN, default_timeout=300)
    at.run()
    at.sidebar.slider(key="chat_temperature").set_value(0.0)
    at.sidebar.number_input(key="chat_max_new").set_value(8)
    return at.run()


def test_a_question_with_a_pdf_gets_its_sources_under_the_answer(app: AppTest) -> None:
    box = app.chat_input(key="chat_input")
    box.upload("turbine.pdf", files.pdf(["The Zephyr turbine spins at 3000 rpm.", "Oil cools it."]))
    box.set_value("How fast does the turbine spin?")
    app.run()
    assert not app.exception and not app.error
    labels = [expander.label for expander in app.main.expander]
    assert labels == ["[1] turbine.pdf, page 1", "[2] turbine.pdf, page 2"]
    assert "3000 rpm" in app.main.expander[0].text[0].value
    app.run()  # drawn again from the history: the sources stay under the saved answer
    assert [expander.label for expander in app.main.expander] == labels
    assert any("turbine.pdf" in caption.value for caption in app.sidebar.caption)  # listed as attached


def test_a_bad_file_is_refused_by_name_and_the_page_goes_on(app: AppTest) -> None:
    box = app.chat_input(key="chat_input")
    box.upload("scan.pdf", files.scanned_pdf())
    app.run()
    assert not app.exception
    assert [error.value for error in app.error] == [
        "scan.pdf has no text layer; OCR is not supported. It is probably scanned: attach the original "
        "document, or a PDF made searchable by an OCR program (e.g. ocrmypdf)."
    ]
    assert not app.chat_message  # nothing was sent
    app.chat_input(key="chat_input").set_value("Hello").run()
    assert [m.name for m in app.chat_message] == ["user", "assistant"]
    assert not app.main.expander  # no documents: no sources


def test_a_knowledge_base_picked_in_the_sidebar_answers_with_its_sources(app: AppTest) -> None:
    from workbench.knowledge import KnowledgeBases
    from workbench.store import default_url

    with KnowledgeBases.open(default_url()) as bases:  # the test session's data folder (tests/conftest.py)
        if any(info.name == "plant" for info in bases.list()):
            bases.remove("plant")
        bases.add("plant", [("manual.pdf", files.pdf(["Intro.", "The Zephyr turbine spins at 3000 rpm."]))])
    try:
        app.run()
        app.sidebar.selectbox(key="chat_knowledge_base").set_value("plant").run()
        app.chat_input(key="chat_input").set_value("How fast does the Zephyr turbine spin?").run()
        assert not app.exception and not app.error
        labels = [expander.label for expander in app.main.expander]
        assert "[1] manual.pdf, page 2" in labels
    finally:  # the data folder is the test session's: leave no knowledge base for the other pages' tests
        with KnowledgeBases.open(default_url()) as bases:
            bases.remove("plant")
