"""Saved conversations in real Chromium: a reload keeps the conversation; a restarted server lists it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.streamlit_server import CHAT_INPUT, launch_streamlit, open_app

pytestmark = pytest.mark.browser

MESSAGES = "[data-testid='stChatMessageContent']"
STOP_BUTTON = "[data-testid='stChatInputStopButton']"


def wait_for_reply(page: Any, count: int, timeout_s: float = 240) -> list[str]:
    """Wait until ``count`` chat messages are shown and the run has ended; return their texts."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        texts = page.locator(MESSAGES).all_inner_texts()
        running = page.locator(STOP_BUTTON).count() or page.get_by_text("Running...").count()
        if len(texts) >= count and not running and all(t.strip() for t in texts):
            return texts
        time.sleep(0.2)
    raise AssertionError(f"no reply after {timeout_s} s: {page.locator(MESSAGES).all_inner_texts()}")


def first_lines(texts: list[str]) -> list[str]:
    """The first two messages' first lines: their text without the controls drawn under them (Edit, Branch)."""
    return [text.splitlines()[0] for text in texts[:2]]


def test_a_conversation_survives_a_reload_and_a_server_restart(tmp_path: Path, new_page: Any) -> None:
    env = {"WORKBENCH_DATA_DIR": str(tmp_path / "data"), "WORKBENCH_MODEL": "", "MODEL_PATH": ""}
    with launch_streamlit(tmp_path / "first.log", env) as url:
        page = open_app(new_page(), url)
        sidebar = page.locator("[data-testid='stSidebar']")
        sidebar.get_by_text("Sampling", exact=True).click()
        sidebar.get_by_label("Max new tokens").fill("8")
        sidebar.get_by_label("Max new tokens").press("Enter")
        time.sleep(1)
        page.fill(CHAT_INPUT, "Name a colour.")
        page.press(CHAT_INPUT, "Enter")
        before = first_lines(wait_for_reply(page, 2))
        assert before[0] == "Name a colour."
        assert "?c=" in page.url
        bookmark = page.url

        page.reload()  # a refresh: a new Streamlit session, the same URL
        page.wait_for_selector(CHAT_INPUT, state="visible", timeout=120_000)
        after = first_lines(wait_for_reply(page, 2))
        assert after == before

        second_tab = open_app(new_page(), bookmark.split("/?")[0], "?" + bookmark.split("?", 1)[1])
        assert first_lines(wait_for_reply(second_tab, 2)) == before

    with launch_streamlit(tmp_path / "second.log", env) as url:  # the server restarted
        page = open_app(new_page(), url)
        sidebar = page.locator("[data-testid='stSidebar']")
        entry = sidebar.get_by_role("button", name="Name a colour.")
        entry.wait_for(timeout=60_000)
        assert page.locator(MESSAGES).count() == 0
        entry.click()
        assert first_lines(wait_for_reply(page, 2)) == before
        assert "?c=" in page.url
        # Search finds it by a word of its text.
        search = sidebar.get_by_label("Search conversations")
        search.fill("colour")
        search.press("Enter")
        sidebar.get_by_role("button", name="Name a colour.").wait_for(timeout=30_000)
