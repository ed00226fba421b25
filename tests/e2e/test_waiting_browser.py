"""The Tool and Code pages say "Waiting for a free slot (n ahead)" while another session holds the model."""

from __future__ import annotations

import contextlib
import time

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.e2e.page_actions import (
    STOP_BUTTON,
    open_code_page,
    send,
    set_sampling,
    wait_idle,
    wait_script_done,
)
from tests.e2e.streamlit_server import CHAT_INPUT, NAV_LINKS, launch_streamlit, open_app
from tests.engines import ENGINES

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif("llama.cpp" not in ENGINES, reason="llama-cpp-python is not installed"),
]

ASSISTANT = "[data-testid='stChatMessageContent'][aria-label='Chat message from assistant']"
STORY = "Write a very long story about a dragon who learns to bake bread, with many chapters."
NOTICE = "Waiting for a free slot"


def test_tool_and_code_pages_show_that_they_wait_for_a_free_slot(new_page, tmp_path):
    """One slot (``--parallel 1``): a Chat tab writes a long story, the Tool and Code tabs' turns wait."""
    env = {
        "WORKBENCH_MODEL": "",
        "MODEL_PATH": "",
        "WORKBENCH_BACKEND": "llama.cpp",
        "WORKBENCH_PARALLEL": "1",
    }
    with launch_streamlit(tmp_path / "server.log", env) as url:
        chat = open_app(new_page(), url)
        tool = open_app(new_page(), url)
        tool.locator(NAV_LINKS).get_by_text("Tool", exact=True).click()
        tool.get_by_role("heading", name="Tool").wait_for()
        code = new_page()
        open_code_page(code, url)
        wait_idle(tool)
        for page in (tool, code):
            set_sampling(page, temperature=0, max_new_tokens=8)
        wait_script_done(code)
        set_sampling(chat, temperature=0, max_new_tokens=4000)

        send(chat, STORY)
        story = chat.locator(ASSISTANT).first.locator("[data-testid='stMarkdownContainer']")
        deadline = time.monotonic() + 240
        while not (story.count() and story.first.inner_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.05)

        tool.fill(CHAT_INPUT, "What is 2 + 2?")
        tool.press(CHAT_INPUT, "Enter")
        code.fill(CHAT_INPUT, "Print 2 + 2.")
        code.press(CHAT_INPUT, "Enter")
        for page in (tool, code):
            page.get_by_text(NOTICE, exact=False).first.wait_for(timeout=120_000)

        # The slot is free: the waiting turns go on (the story may have ended already on a slow machine).
        with contextlib.suppress(PlaywrightTimeout):
            chat.locator(STOP_BUTTON).click(timeout=5_000)
        for page in (tool, code):
            page.get_by_text(NOTICE, exact=False).first.wait_for(state="detached", timeout=240_000)
        assert not any(p.locator("[data-testid='stException']").count() for p in (chat, tool, code))
