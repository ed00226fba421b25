"""The Code interpreter page in real Chromium against ``streamlit run main.py``: a plot cell, a code turn."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.e2e.page_actions import send, set_sampling
from tests.e2e.streamlit_server import open_app

pytestmark = pytest.mark.browser

# Kernel start plus the first matplotlib import (its font cache) on a busy two-core machine.
CELL_MS = 90_000
# The embedded model writes the code, the kernel runs it, then the model answers: slow under load.
TURN_S = 240
SCRIPT_STATE = "data-test-script-state"
CELL = 'import matplotlib.pyplot as plt\nplt.plot([1, 4, 9, 16])\nplt.title("squares")'


def wait_script_done(page: Any, timeout_s: float = TURN_S) -> None:
    """Wait until the script run has finished, by the app's own script state.

    The Code page's chat input has no Stop button and the ``minimal`` toolbar shows no "Running..."
    text, so ``wait_idle`` from the chat tests cannot see a run here.
    """
    time.sleep(0.5)  # let the rerun a click or a key asked for begin
    app = page.locator("[data-testid='stApp']")
    deadline, idle_since = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        if app.get_attribute(SCRIPT_STATE) == "notRunning":
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since > 0.5:
                return
        else:
            idle_since = None
        time.sleep(0.1)
    raise AssertionError(f"the script was still running after {timeout_s} s")


def open_code_page(page: Any, url: str) -> None:
    """Open the app and go to the Code interpreter page through the sidebar, as a user does.

    ``test_deep_links.py`` opens ``/code`` directly.
    """
    open_app(page, url)
    page.locator("[data-testid='stSidebarNav']").get_by_text("Code interpreter", exact=True).click()
    page.get_by_role("heading", name="Code interpreter").wait_for()
    page.get_by_role("tab", name="Your cells").wait_for()
    wait_script_done(page)


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
    chat_messages(page, "interpreter").filter(has_text="1048576").wait_for(timeout=TURN_S * 1000)
    wait_script_done(page)  # the model's answer after the observation

    code = chat_messages(page, "assistant").first.locator("[data-testid='stCode']").inner_text()
    assert "2" in code and "20" in code and "print" in code, code
    output = chat_messages(page, "interpreter").first.locator("[data-testid='stCode']").inner_text()
    assert output.strip() == "1048576"
    assert chat_messages(page, "user").all_inner_texts()[0].endswith("What is 2**20?")
    assert chat_messages(page, "assistant").count() >= 2, "the code, then an answer after the output"
    assert not page.locator("[data-testid='stException']").count()
    assert "Kernel: idle" in page.locator("[data-testid='stSidebar']").inner_text()
