"""A knowledge base in real Chromium: made from the sidebar with one PDF, picked in a new conversation,
asked, and its source cited under the answer (issue 26). The model's text is never asserted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.documents import files
from tests.e2e.page_actions import send, set_sampling, wait_idle
from tests.e2e.streamlit_server import open_app
from workbench.knowledge import KnowledgeBases
from workbench.store import default_url

pytestmark = pytest.mark.browser

BASE = "plant-browser"


def _drop() -> None:
    with KnowledgeBases.open(default_url()) as bases:  # the server's database: the test session's data folder
        if BASE in bases.names():
            bases.remove(BASE)


def test_add_a_knowledge_base_pick_it_in_a_new_conversation_and_see_it_cited(
    streamlit_server: str, page: Any, tmp_path: Path
) -> None:
    pdf = tmp_path / "manual.pdf"
    pdf.write_bytes(files.pdf(["The Zephyr turbine spins at 3000 rpm."]))
    _drop()
    try:
        open_app(page, streamlit_server)
        sidebar = page.locator("[data-testid='stSidebar']")
        sidebar.get_by_text("Knowledge bases", exact=True).click()
        sidebar.get_by_label("Add to").fill(BASE)
        sidebar.locator("[data-testid='stFileUploader'] input[type='file']").set_input_files(str(pdf))
        sidebar.locator("[data-testid='stFileUploader']").get_by_text("manual.pdf").wait_for()
        sidebar.locator("[data-testid='stBaseButton-secondaryFormSubmit']").filter(
            has_text="Add files"
        ).click()
        sidebar.get_by_text(f"{BASE} · 1 document").wait_for(timeout=120_000)
        wait_idle(page)
        assert page.locator("[data-testid='stException']").count() == 0

        sidebar.get_by_role(
            "button", name="New conversation", exact=True
        ).first.click()  # the panel's top button
        wait_idle(page)
        set_sampling(page, temperature=0, max_new_tokens=8)
        picker = (
            sidebar.locator("[data-testid='stSelectbox']").filter(has_text="Answer from").locator("input")
        )
        picker.click()
        picker.fill(BASE)
        page.get_by_role("option", name=BASE).click()
        wait_idle(page)

        send(page, "How fast does the Zephyr turbine spin?")
        wait_idle(page)
        source = page.locator("[data-testid='stExpander']").filter(has_text="[1] manual.pdf, page 1")
        source.wait_for(timeout=240_000)
        source.locator("summary").click()
        source.get_by_text("The Zephyr turbine spins at 3000 rpm.").wait_for()
        assert page.locator("[data-testid='stException']").count() == 0
    finally:  # the data folder is the test session's: leave no knowledge base for the other tests
        _drop()
