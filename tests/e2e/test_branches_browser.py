"""Branches in real Chromium: edit makes a second version with a pager, paging back shows the old answer,
a reload keeps the chosen branch, Branch opens a new conversation, and Code says which branch its kernel holds."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.page_actions import (
    TURN_S,
    open_code_page,
    send,
    set_sampling,
    wait_idle,
    wait_script_done,
)
from tests.e2e.streamlit_server import CHAT_INPUT, launch_streamlit, open_app

pytestmark = pytest.mark.browser

MESSAGES = "[data-testid='stChatMessageContent']"


def texts(page: Any) -> list[str]:
    return page.locator(MESSAGES).all_inner_texts()


def first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def wait_for_messages(page: Any, count: int, timeout_s: float = TURN_S) -> list[str]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        wait_idle(page, timeout_s)
        shown = texts(page)
        if len(shown) >= count and all(t.strip() for t in shown):
            return shown
        time.sleep(0.3)
    raise AssertionError(f"not {count} messages after {timeout_s} s: {texts(page)}")


def button(scope: Any, name: str) -> Any:
    return scope.get_by_role("button", name=name)


def message(page: Any, index: int) -> Any:
    return page.locator("[data-testid='stChatMessage']").nth(index)


def edit_first_message(page: Any, text: str, wait: Any) -> None:
    """Edit the first user message in place and send it, as a user does."""
    button(message(page, 0), "Edit").click()
    box = page.get_by_label("Edit your message")
    box.wait_for()
    box.fill(text)
    box.press("Control+Enter")  # commits the text area's value
    wait(page)
    page.get_by_role("button", name="Send", exact=True).click()


def test_edit_page_reload_and_branch_in_chat(tmp_path: Path, new_page: Any) -> None:
    env = {"WORKBENCH_DATA_DIR": str(tmp_path / "data"), "WORKBENCH_MODEL": "", "MODEL_PATH": ""}
    with launch_streamlit(tmp_path / "server.log", env) as url:
        page = open_app(new_page(), url)
        set_sampling(page, max_new_tokens=8)
        send(page, "Name a colour.")
        wait_for_messages(page, 2)
        # the answer as saved: read once the finished turn is drawn again with its controls (the live
        # stream may not show the decoder's last piece)
        button(message(page, 1), "Regenerate").wait_for(timeout=TURN_S * 1000)
        wait_idle(page)
        first = wait_for_messages(page, 2)
        assert first_line(first[0]) == "Name a colour."
        old_answer = first_line(first[1])

        edit_first_message(page, "Name a fruit.", wait_idle)
        time.sleep(1)
        edited = wait_for_messages(page, 2)
        assert first_line(edited[0]) == "Name a fruit." and len(edited) == 2
        assert message(page, 0).get_by_text("2/2", exact=True).is_visible()  # the pager on the edited message

        button(message(page, 0), "‹").click()  # page back to 1/2
        wait_idle(page)
        back = wait_for_messages(page, 2)
        assert first_line(back[0]) == "Name a colour." and first_line(back[1]) == old_answer  # the old answer is back
        assert message(page, 0).get_by_text("1/2", exact=True).is_visible()
        conversation_url = page.url

        page.reload()  # a new Streamlit session: the chosen branch comes from the store
        page.wait_for_selector(CHAT_INPUT, state="visible", timeout=120_000)
        reloaded = wait_for_messages(page, 2)
        assert first_line(reloaded[0]) == "Name a colour." and first_line(reloaded[1]) == old_answer
        assert message(page, 0).get_by_text("1/2", exact=True).is_visible()

        button(message(page, 1), "Branch").click()  # fork at the answer into a new conversation
        wait_idle(page)
        deadline = time.monotonic() + 60
        while page.url == conversation_url and time.monotonic() < deadline:
            time.sleep(0.2)
        assert page.url != conversation_url and "?c=" in page.url
        forked = wait_for_messages(page, 2)
        assert first_line(forked[0]) == "Name a colour." and first_line(forked[1]) == old_answer
        assert message(page, 0).get_by_text("1/2", exact=True).count() == 0  # one branch in the copy
        sidebar = page.locator("[data-testid='stSidebar']")
        assert sidebar.get_by_text("(branch)", exact=False).count() >= 1


def test_code_page_says_which_branch_the_kernel_holds(page: Any, streamlit_server: str) -> None:
    open_code_page(page, streamlit_server)
    set_sampling(page, max_new_tokens=24)
    sidebar = page.locator("[data-testid='stSidebar']")
    sidebar.get_by_text("Code settings", exact=True).click()
    runs = sidebar.get_by_label("Max code runs per message")
    runs.fill("1")
    runs.press("Enter")
    wait_script_done(page)

    send(page, "Print the number 1.")
    wait_script_done(page)
    interpreter = page.locator("[aria-label='Chat message from interpreter']")
    interpreter.first.wait_for(timeout=TURN_S * 1000)  # the model's code ran in the kernel
    assert page.get_by_text("The kernel holds the state of").count() == 0

    edit_first_message(page, "Print the number 2.", wait_script_done)
    wait_script_done(page)
    assert message(page, 0).get_by_text("2/2", exact=True).is_visible()
    interpreter.first.wait_for(timeout=TURN_S * 1000)  # the new branch's code ran: the kernel holds it

    button(message(page, 0), "‹").click()  # back to the first branch
    wait_script_done(page)
    notice = page.get_by_text("The kernel holds the state of another branch")
    notice.wait_for(timeout=30_000)
    button(page, "Re-run this branch's cells").click()
    wait_script_done(page)
    page.get_by_text("Re-ran").wait_for(timeout=TURN_S * 1000)
    assert page.get_by_text("The kernel holds the state of").count() == 0
