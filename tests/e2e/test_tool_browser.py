"""The Tool page in real Chromium against ``streamlit run main.py``: a call shows as a completed status block."""

from __future__ import annotations

import re

import pytest

from tests.e2e.page_actions import send, set_sampling, wait_idle
from tests.e2e.streamlit_server import NAV_LINKS, open_app

pytestmark = pytest.mark.browser

#: A finished call's status block title: "Called <tool>" or "<tool> failed" (pages/_tool_ui.py).
CALL_DONE = re.compile(r"Called \w+|\w+ failed")


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

    # Which tool, which arguments and how many calls are the model's own pick, which changes with the CPU
    # (an AVX-512 machine called the calculator twice); test_tool_page.py pins them with a schema.
    done = page.locator("summary").filter(has_text=CALL_DONE)
    blocks = page.locator("[data-testid='stExpander']").filter(has=done)
    blocks.first.wait_for()
    assert blocks.count() >= 1
    block = blocks.first
    label = done.first.inner_text()
    done.first.click()  # open it: the arguments and the result
    assert block.locator("[data-testid='stJson']").inner_text().strip().startswith("{")
    if "Called " in label:
        assert block.locator("[data-testid='stCode']").first.inner_text().strip(), label
    else:
        assert block.locator("[data-testid='stAlert']").first.inner_text().strip(), label
    assert not page.locator("[data-testid='stException']").count()
