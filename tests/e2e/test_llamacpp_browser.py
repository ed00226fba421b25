"""The Chat page in Chromium on each engine: a server started with WORKBENCH_BACKEND answers and says which."""

from __future__ import annotations

import time

import pytest

from tests.e2e.page_actions import STOP_BUTTON, send, set_sampling, wait_idle
from tests.e2e.streamlit_server import CHAT_INPUT, launch_streamlit, open_app
from tests.engines import ENGINES

pytestmark = pytest.mark.browser

ASSISTANT = "[data-testid='stChatMessageContent'][aria-label='Chat message from assistant']"
STORY = "Write a very long story about a dragon who learns to bake bread, with many chapters."


def reply_and_done(page) -> tuple[str, bool]:
    """The first assistant message's text so far, and whether its stats line (the end) is shown."""
    answer = page.locator(ASSISTANT)
    if not answer.count():
        return "", False
    text = answer.first.locator("[data-testid='stMarkdownContainer']")
    done = answer.first.locator("[data-testid='stCaptionContainer']")
    shown = text.first.inner_text() if text.count() else ""
    return shown, bool(done.count()) and " tokens · " in done.first.inner_text()


@pytest.mark.parametrize("engine", ENGINES)
def test_the_chat_page_answers_on_each_engine(engine, new_page, tmp_path):
    env = {"WORKBENCH_MODEL": "", "MODEL_PATH": "", "WORKBENCH_BACKEND": engine}
    started = time.monotonic()
    with launch_streamlit(tmp_path / "server.log", env) as url:
        page = new_page()
        open_app(page, url)
        ready_s = time.monotonic() - started
        sidebar = page.locator("[data-testid='stSidebar']")
        sidebar.get_by_text(f"SmolLM2-135M-Instruct (embedded) · {engine} · cpu", exact=False).wait_for()
        set_sampling(page, temperature=0, max_new_tokens=24)
        send(page, "Which city is the capital of France?")
        answer = page.locator(ASSISTANT)
        answer.locator("[data-testid='stCaptionContainer']").first.wait_for(timeout=240_000)  # the stats line
        wait_idle(page)
        reply = answer.first.locator("[data-testid='stMarkdownContainer']").first.inner_text()
        assert reply.strip()  # which words is the model's greedy pick, which changes with the CPU
    if engine == "llama.cpp":
        # No conversion and no torch: the server is up with the model loaded within seconds (a busy
        # two-core machine needs more than the ~3 s of a quiet one).
        assert ready_s < 30, f"the app took {ready_s:.1f} s to be ready on llama.cpp"


@pytest.mark.skipif("llama.cpp" not in ENGINES, reason="llama-cpp-python is not installed")
def test_two_tabs_answer_at_the_same_time(new_page, tmp_path):
    """Two browser sessions' answers share llama.cpp's decode steps: both are generated at the same time.

    What a page shows can lag the model by seconds on a busy machine, so text on both pages is not proof
    enough: once both show text, Stop in both tabs must find both answers still being generated (both end
    "stopped"). One at a time (``--parallel 1``), the second answer's text comes only after the first was
    generated whole, so the first ends "hit max new tokens" instead.
    """
    env = {
        "WORKBENCH_MODEL": "",
        "MODEL_PATH": "",
        "WORKBENCH_BACKEND": "llama.cpp",
        "WORKBENCH_PARALLEL": "4",
    }
    with launch_streamlit(tmp_path / "server.log", env) as url:
        pages = [open_app(new_page(), url) for _ in range(2)]
        for page in pages:
            set_sampling(page, temperature=0, max_new_tokens=600)
            page.fill(CHAT_INPUT, STORY)
        for page in pages:
            page.press(CHAT_INPUT, "Enter")
        deadline = time.monotonic() + 300
        states = [reply_and_done(page) for page in pages]
        while not all(text for text, _ in states) and time.monotonic() < deadline:
            time.sleep(0.05)
            states = [reply_and_done(page) for page in pages]
        assert not any(done for _, done in states), f"one answer ended before the other began: {states}"
        for page in pages:
            page.locator(STOP_BUTTON).click()
        endings = []
        for page in pages:
            wait_idle(page)
            set_sampling(page, max_new_tokens=64)  # a rerun draws the history, with the stats line
            caption = page.locator(ASSISTANT).first.locator("[data-testid='stCaptionContainer']").first
            caption.wait_for(timeout=120_000)
            endings.append(caption.inner_text())
        assert all(ending.endswith("· stopped") for ending in endings), endings
