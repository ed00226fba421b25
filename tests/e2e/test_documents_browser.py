"""Documents on the Chat page in real Chromium: attach a PDF, ask, see the citation, expand it; Stop
while a large PDF is being indexed keeps nothing of it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.documents import files
from tests.e2e.page_actions import STOP_BUTTON, attach, send, set_sampling, wait_idle
from tests.e2e.streamlit_server import open_app

pytestmark = pytest.mark.browser


def test_attach_a_pdf_ask_and_expand_its_source(streamlit_server: str, page: Any, tmp_path: Path) -> None:
    pdf = tmp_path / "turbine.pdf"
    pdf.write_bytes(files.pdf(["The Zephyr turbine spins at 3000 rpm.", "Mineral oil cools it."]))
    open_app(page, streamlit_server)
    set_sampling(page, temperature=0, max_new_tokens=8)
    attach(page, pdf)
    send(page, "How fast does the Zephyr turbine spin?")
    wait_idle(page)
    source = page.locator("[data-testid='stExpander']").filter(has_text="[1] turbine.pdf, page 1")
    source.wait_for(timeout=240_000)
    # drawn one after the other (the finished turn is drawn again): wait for the second as for the first
    page.locator("[data-testid='stExpander']").filter(has_text="[2] turbine.pdf, page 2").wait_for(timeout=30_000)
    source.locator("summary").click()
    source.get_by_text("The Zephyr turbine spins at 3000 rpm.").wait_for()
    page.reload()  # the answer and its sources come back from the saved conversation (?c=)
    page.locator("[data-testid='stExpander']").filter(has_text="[1] turbine.pdf, page 1").wait_for(
        timeout=120_000
    )


def test_stop_while_a_large_pdf_is_indexed_keeps_nothing_of_it(
    streamlit_server: str, page: Any, tmp_path: Path
) -> None:
    pdf = tmp_path / "manual.pdf"
    pdf.write_bytes(
        files.pdf([f"Page {n}: the Zephyr turbine manual, part {n}. " * 12 for n in range(1, 121)])
    )
    open_app(page, streamlit_server)
    set_sampling(page, temperature=0, max_new_tokens=8)
    attach(page, pdf)
    page.locator("[data-testid='stChatInputSubmitButton']").click()  # the file alone: attached, not sent
    progress = page.locator("[data-testid='stProgress']").filter(has_text="manual.pdf: passage")
    progress.wait_for(timeout=120_000)  # parsed; its passages are being embedded
    page.locator(STOP_BUTTON).click()
    wait_idle(page, timeout_s=120)  # the run ended (its last drawing, the bar, stays until the next run)
    assert page.locator("[data-testid='stException']").count() == 0  # the app goes on

    send(page, "Hello")  # the next message works, without the file
    page.locator("[data-testid='stChatMessage']").filter(has_text="tokens").first.wait_for(timeout=240_000)
    wait_idle(page)
    assert page.locator("[data-testid='stProgress']").count() == 0
    assert page.locator("[data-testid='stException']").count() == 0
    assert page.locator("[data-testid='stExpander']").filter(has_text="manual.pdf").count() == 0
    assert page.locator("[data-testid='stSidebar']").get_by_text("manual.pdf").count() == 0
    from workbench.store import default_url  # the server's database: the test session's data folder

    engine = sa.create_engine(default_url())
    with engine.connect() as connection:
        kept = connection.execute(sa.text("SELECT count(*) FROM kb_documents WHERE name = 'manual.pdf'"))
        assert kept.scalar_one() == 0
    engine.dispose()
