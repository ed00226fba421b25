"""The app on a remote backend: ``streamlit run main.py`` with its model served by ``workbench serve``
in another process, in real Chromium.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.page_actions import send, set_sampling, wait_idle
from tests.e2e.streamlit_server import launch_streamlit, open_app
from tests.server.helpers import MODEL_ID, serve_process

pytestmark = [pytest.mark.browser, pytest.mark.model]

ASSISTANT = "[data-testid='stChatMessageContent'][aria-label='Chat message from assistant']"


def test_chat_turn_on_a_remote_model(tmp_path: Path, new_page: Callable[[], Any]) -> None:
    with serve_process(tmp_path / "serve.log", "--device", "cpu") as (api, _process):
        env = {"WORKBENCH_MODEL": f"openai:{api}#{MODEL_ID}", "MODEL_PATH": ""}
        with launch_streamlit(tmp_path / "app.log", env) as url:
            page = open_app(new_page(), url)
            sidebar = page.locator("[data-testid='stSidebar']")
            sidebar.get_by_text(f"remote: {api}").wait_for()
            set_sampling(page, temperature=0, max_new_tokens=8)
            send(page, "Name three colors.")
            page.locator(ASSISTANT).first.wait_for()
            wait_idle(page)
            reply = page.locator(ASSISTANT).first.locator("[data-testid='stMarkdownContainer']").first
            assert reply.inner_text().strip()
            # The server's models are offered in the model form.
            sidebar.get_by_text("Change model").click()
            assert sidebar.get_by_text("Server model").count() == 1
