"""An image in Chat in real Chromium, on the tiny random-weight vision model (tests/vision_fixture.py):
attach it, ask, see the answer stream and the image in the user's bubble (never the model's words)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.page_actions import send, set_sampling, wait_idle
from tests.e2e.streamlit_server import launch_streamlit, open_app
from tests.vision_fixture import sample_image

pytestmark = pytest.mark.browser

USER = "[data-testid='stChatMessageContent'][aria-label='Chat message from user']"
ASSISTANT = "[data-testid='stChatMessageContent'][aria-label='Chat message from assistant']"


def _reply(page: Any) -> str:
    text = page.locator(f"{ASSISTANT} [data-testid='stMarkdownContainer']")
    return text.first.inner_text() if text.count() else ""


def test_an_image_in_chat_reaches_the_vision_model(new_page: Any, tiny_vlm: Path, tmp_path: Path) -> None:
    photo = tmp_path / "red.png"
    photo.write_bytes(sample_image((120, 80), "red"))
    env = {"WORKBENCH_MODEL": str(tiny_vlm), "MODEL_PATH": "", "WORKBENCH_DEVICE": "cpu"}
    with launch_streamlit(tmp_path / "server.log", env) as url:
        page = new_page()
        open_app(page, url)
        page.locator("[data-testid='stSidebar']").get_by_text(
            "idefics3-tiny-1 · transformers · cpu"
        ).wait_for()
        # Sampled, not greedy: greedy decoding of random weights may repeat one blank token all along.
        set_sampling(page, max_new_tokens=200)
        page.locator("[data-testid='stChatInput'] input[type='file']").set_input_files(str(photo))
        page.locator("[data-testid='stChatInput']").get_by_text("red.png").wait_for()  # staged
        send(page, "What colour is this picture?")
        lengths: set[int] = set()
        deadline = time.monotonic() + 240
        while not page.locator(f"{ASSISTANT} [data-testid='stCaptionContainer']").count():  # the stats line
            assert time.monotonic() < deadline, "no answer within 240 s"
            lengths.add(len(_reply(page)))
            time.sleep(0.03)
        wait_idle(page)
        assert len(lengths - {0}) >= 3, f"the answer did not grow while it was written: {sorted(lengths)}"
        image = page.locator(f"{USER} img").first
        image.wait_for()
        assert page.evaluate("(img) => img.complete && img.naturalWidth", image.element_handle()) == 120
        assert page.locator(USER).get_by_text("What colour is this picture?").count() == 1
        assert not page.locator("[data-testid='stException']").count()
        page.reload()  # the image comes back from the saved conversation (?c=)
        page.locator(f"{USER} img").first.wait_for(timeout=120_000)
