"""The app's server killed with SIGKILL in the middle of a streamed answer, then started again, in Chromium.

The model is a slow scripted server (one word every 50 ms, 20 s in all), so the answer is long and its
text known. What the page showed about a second before the kill is in the store, and the reopened
conversation shows the cut answer marked interrupted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.page_actions import send
from tests.e2e.streamlit_server import ROOT, SERVER_START_S, _healthy, free_port, launch_streamlit, open_app
from tests.server.fake_openai import SlowStory
from workbench.store import ConversationStore

pytestmark = pytest.mark.browser

ASSISTANT = "[data-testid='stChatMessageContent'][aria-label='Chat message from assistant']"
WORDS = [f"word{i:03d} " for i in range(400)]


def test_a_killed_app_keeps_the_streamed_answer_marked_interrupted(
    tmp_path: Path, new_page: Callable[[], Any]
) -> None:
    story = SlowStory(WORDS)
    env = {
        **os.environ,
        "WORKBENCH_MODEL": f"openai:{story.url}#m",
        "MODEL_PATH": "",
        "WORKBENCH_DATA_DIR": str(tmp_path / "data"),
    }
    env.pop("WORKBENCH_DB_URL", None)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable, "-m", "streamlit", "run", "main.py", "--server.headless", "true",
        "--server.port", str(port), "--server.address", "127.0.0.1", "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    with (tmp_path / "first.log").open("w") as log:
        app = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + SERVER_START_S
        while not _healthy(url):
            assert app.poll() is None and time.monotonic() < deadline, (tmp_path / "first.log").read_text()
            time.sleep(0.25)
        page = open_app(new_page(), url)
        send(page, "Tell a story")
        reply = page.locator(ASSISTANT).first
        reply.wait_for(timeout=120_000)
        deadline = time.monotonic() + 120
        while "word060" not in reply.inner_text():  # 3 s into the answer
            assert time.monotonic() < deadline, reply.inner_text()
            time.sleep(0.1)
        shown_before = reply.inner_text().split()  # at least 2 s (a generous bound) before the kill
        time.sleep(2.0)
        app.send_signal(signal.SIGKILL)
        app.wait(timeout=30)
        assert app.returncode == -signal.SIGKILL
    finally:
        if app.poll() is None:
            app.kill()
            app.wait()
    with ConversationStore.open(f"sqlite:///{tmp_path / 'data' / 'conversations.sqlite3'}") as store:
        (info,) = store.list()
        _info, messages = store.get(info.id)
    question, answer = messages
    assert question.content == "Tell a story"
    assert answer.metadata.get("interrupted") and answer.failure and answer.failure.startswith("Interrupted")
    saved = answer.content.split()
    assert saved == [word.strip() for word in WORDS[: len(saved)]]  # the story as streamed, cut
    assert len(saved) >= len([w for w in shown_before if w.startswith("word")])

    try:
        with launch_streamlit(tmp_path / "second.log", env) as url:  # the server started again
            page = open_app(new_page(), url)
            sidebar = page.locator("[data-testid='stSidebar']")
            sidebar.get_by_role("button", name="Tell a story").click()
            page.get_by_text("Interrupted: the program stopped").wait_for(timeout=60_000)
            assert "word000" in page.locator(ASSISTANT).first.inner_text()
    finally:
        story.close()
