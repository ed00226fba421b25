"""The Chat page in Chromium on each engine: a server started with WORKBENCH_BACKEND answers and says which."""

from __future__ import annotations

import time

import pytest

from tests.e2e.page_actions import send, set_sampling, wait_idle
from tests.e2e.streamlit_server import launch_streamlit, open_app
from tests.engines import ENGINES

pytestmark = pytest.mark.browser

ASSISTANT = "[data-testid='stChatMessageContent'][aria-label='Chat message from assistant']"


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
