"""Knowledge bases made, filled and removed from the sidebar (AppTest, the real embedder; issue 26)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.documents import files
from workbench.knowledge import KnowledgeBases
from workbench.store import default_url

pytestmark = pytest.mark.model

MAIN = str(Path(__file__).resolve().parents[2] / "main.py")
MANUAL = files.pdf(["The Zephyr turbine spins at 3000 rpm."])


def _drop(*names: str) -> None:
    with KnowledgeBases.open(default_url()) as bases:  # the test session's data folder (tests/conftest.py)
        for name in set(names) & set(bases.names()):
            bases.remove(name)


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> Iterator[AppTest]:
    for name in ("WORKBENCH_MODEL", "MODEL_PATH", "WORKBENCH_DEVICE", "WORKBENCH_DTYPE"):
        monkeypatch.delenv(name, raising=False)
    _drop("plant", "scans")
    at = AppTest.from_file(MAIN, default_timeout=300)
    yield at.run()
    _drop("plant", "scans")  # leave no knowledge base for the other pages' tests


def _add(at: AppTest, name: str, *uploads: tuple[str, bytes]) -> AppTest:
    at.sidebar.text_input(key="chat_kb_name").input(name)
    at.file_uploader(key="chat_kb_files").set_value(
        [(file, data, "application/octet-stream") for file, data in uploads]
    )
    at.sidebar.button(key="FormSubmitter:chat_kb_form-Add files").click()
    return at.run()


def _listed(at: AppTest) -> list[str]:
    return [c.value for c in at.sidebar.caption if c.value.endswith((" document", " documents"))]


def test_a_base_made_in_the_sidebar_is_listed_and_picked(app: AppTest) -> None:
    app.chat_input(key="chat_input").upload(
        "notes.txt", b"Oil cools the turbine."
    ).run()  # a conversation's files
    assert not app.exception and not app.error
    _add(app, "plant", ("manual.pdf", MANUAL))
    assert not app.exception and not app.error
    assert _listed(app) == ["plant · 1 document"]  # the conversation's hidden collection is not listed
    picker = app.sidebar.selectbox(key="chat_knowledge_base")
    assert picker.options == ["Files attached here", "plant"]
    picker.set_value("plant").run()
    with KnowledgeBases.open(default_url()) as bases:
        assert bases.documents("plant") == [("manual.pdf", "pdf", 1)]

    app.sidebar.button(key="chat_kb_remove_0").click().run()  # asked first
    assert "plant" in app.sidebar.selectbox(key="chat_knowledge_base").options
    app.sidebar.button(key="chat_kb_confirm").click().run()
    assert not app.exception and not app.error
    assert _listed(app) == []
    assert not [box for box in app.sidebar.selectbox if box.key == "chat_knowledge_base"]


def test_a_bad_file_is_refused_by_name_and_nothing_is_half_added(app: AppTest) -> None:
    _add(app, "scans", ("scan.pdf", files.scanned_pdf()))
    assert not app.exception
    assert len(app.error) == 1 and app.error[0].value.startswith("scan.pdf has no text layer")
    assert _listed(app) == []  # no empty base left
    with KnowledgeBases.open(default_url()) as bases:
        assert "scans" not in bases.names()

    _add(app, "scans", ("good.txt", b"Good."), ("scan.pdf", files.scanned_pdf()))  # the good one goes in
    assert [error.value[:8] for error in app.error] == ["scan.pdf"]
    app.run()
    assert _listed(app) == ["scans · 1 document"]
    app.chat_input(key="chat_input").set_value("Hello").run()  # the page goes on
    assert not app.exception
