"""Documents on the Chat page in real Chromium: attach a PDF, ask, see the citation, expand it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.documents import files
from tests.e2e.page_actions import send, set_sampling, wait_idle
from tests.e2e.streamlit_server import open_app

pytestmark = pytest.mark.browser


def test_attach_a_pdf_ask_and_expand_its_source(streamlit_server: str, page: Any, tmp_path: Path) -> None:
    pdf = tmp_path / "turbine.pdf"
    pdf.write_bytes(files.pdf(["The Zephyr turbine spins at 3000 rpm.", "Mineral oil cools it."]))
    open_app(page, streamlit_server)
    set_sampling(page, temperature=0, max_new_tokens=8)
    page.locator("[data-testid='stChatInput'] input[type='file']").set_input_files(str(pdf))
    page.locator("[data-testid='stChatInput']").get_by_text("turbine.pdf").wait_for()  # staged
    send(page, "How fast does the Zephyr turbine spin?")
    wait_idle(page)
    source = page.locator("[data-testid='stExpander']").filter(has_text="[1] turbine.pdf, page 1")
    source.wait_for(timeout=240_000)
    assert page.locator("[data-testid='stExpander']").filter(has_text="[2] turbine.pdf, page 2").count() == 1
    source.locator("summary").click()
    source.get_by_text("The Zephyr turbine spins at 3000 rpm.").wait_for()
    page.reload()  # the answer and its sources come back from the saved conversation (?c=)
    page.locator("[data-testid='stExpander']").filter(has_text="[1] turbine.pdf, page 1").wait_for(
        timeout=120_000
    )
