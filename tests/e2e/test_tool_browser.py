"""The Tool page in real Chromium against ``streamlit run main.py``: a call shows as a completed status block."""

from __future__ import annotations

import pytest

from tests.e2e.page_actions import send, set_sampling, wait_idle
from tests.e2e.streamlit_server import NAV_LINKS, open_app

pytestmark = pytest.mark.browser


def test_a_required_call_appears_as_a_completed_status_block_with_its_result(page, streamlit_server):
    # Through the sidebar link, as a user does (test_deep_links.py opens /tool directly).
    open_app(page, streamlit_server)
    page.locator(NAV_LINKS).get_by_text("Tool", exact=True).click()
    page.get_by_role("heading", name="Tool").wait_for()
    wait_idle(page)
    set_sampling(page, temperature=0, max_new_tokens=40)
    sidebar = page.locator("[data-testid='stSidebar']")
    sidebar.locator("[data-testid='stSelectbox']").filter(has_text="Tool choice").click()
    page.get_by_role("option", name="required").click()
    wait_idle(page)

    send(page, "What is 1234 plus 4321?")
    wait_idle(page)

    block = page.locator("[data-testid='stExpander']").filter(has_text="Called calculator")
    block.wait_for()
    assert block.count() == 1
    block.get_by_text("Called calculator").click()  # open it: the arguments and the result
    assert "1234 + 4321" in block.locator("[data-testid='stJson']").inner_text()
    assert block.locator("[data-testid='stCode']").inner_text().strip() == "5555"
    assert not page.locator("[data-testid='stException']").count()
