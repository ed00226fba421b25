"""Images in the Tool and Code pages' message box (AppTest), as Chat has: sent with the message to a vision
model and drawn in the user's bubble; a text-only model refuses them and the message waits on the page.

The tiny random-weight model's text is never asserted: only that the image went with the message.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.test_chat_page_images import _images_in
from tests.test_tool_page import wait_for_tools
from tests.vision_fixture import sample_image
from workbench.images import prepare_image

MAIN = str(Path(__file__).resolve().parent.parent / "main.py")
PHOTO = sample_image((48, 32), "red", "JPEG")


def _page(monkeypatch: pytest.MonkeyPatch, page: str, model: str | None) -> AppTest:
    for name in ("WORKBENCH_MODEL", "MODEL_PATH", "WORKBENCH_DEVICE", "WORKBENCH_DTYPE", "WORKBENCH_BACKEND"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WORKBENCH_MAX_KERNELS", "2")
    if model is not None:
        monkeypatch.setenv("WORKBENCH_MODEL", model)
        monkeypatch.setenv("WORKBENCH_DEVICE", "cpu")
    at = AppTest.from_file(MAIN, default_timeout=300)
    at.run()
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, at.exception
    at.sidebar.slider(key=f"{page}_temperature").set_value(0.0)
    at.sidebar.number_input(key=f"{page}_max_new").set_value(4)
    if page == "tool":
        at.sidebar.selectbox(key="tool_choice").set_value("none")  # a noise model's call is not the point
        wait_for_tools(at)
    else:
        at.sidebar.checkbox(key="code_force").uncheck()  # no kernel: the answer is plain text
    return at.run()


@pytest.mark.parametrize("page", ["tool", "code"])
def test_an_image_goes_with_the_message_to_a_vision_model(
    monkeypatch: pytest.MonkeyPatch, tiny_vlm: Path, page: str
) -> None:
    at = _page(monkeypatch, page, str(tiny_vlm))
    box = at.chat_input(key=f"{page}_input")
    box.upload("photo.jpg", PHOTO, "image/jpeg")
    box.set_value("What is in the photo?")
    at.run()
    assert not at.exception and not at.error, (at.exception, at.error)
    messages = at.session_state[f"{page}_session"].messages
    assert messages[0].images == [prepare_image(PHOTO)]
    assert messages[-1].role.value == "assistant" and messages[-1].stats["new_tokens"] > 0
    at.run()  # drawn again from the history: the image is in the user's bubble
    assert _images_in(at.chat_message[0]) == 1 and not at.session_state[f"{page}_pending_images"]


@pytest.mark.model
def test_a_text_only_model_refuses_the_image_on_the_tool_page_and_nothing_is_lost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    at = _page(monkeypatch, "tool", None)  # the embedded SmolLM2
    box = at.chat_input(key="tool_input")
    box.upload("photo.jpg", PHOTO, "image/jpeg")
    box.set_value("What is in the photo?")
    at.run()
    assert not at.exception
    assert any("reads text only" in e.value for e in at.error)
    assert at.session_state["tool_session"].messages == []  # nothing recorded
    assert at.session_state["tool_pending_images"] == [prepare_image(PHOTO)]  # the image waits
    assert at.button(key="tool_send_unsent") and at.button(key="tool_discard_unsent")


@pytest.mark.model
@pytest.mark.parametrize("page", ["tool", "code"])
def test_a_message_too_long_for_the_context_waits_on_the_page_with_send_again(
    monkeypatch: pytest.MonkeyPatch, page: str
) -> None:
    """The loop takes the message back (nothing answered); the page keeps its text, as Chat does."""
    at = _page(monkeypatch, page, None)  # the embedded SmolLM2, 8192 tokens of context
    text = "word " * 9000
    at.chat_input(key=f"{page}_input").set_value(text).run()
    assert not at.exception, at.exception
    assert any("context" in e.value for e in at.error)
    assert at.session_state[f"{page}_session"].messages == []  # nothing recorded
    assert any(c.value == text for c in at.main.code)  # the text waits, to copy or send again
    assert at.button(key=f"{page}_send_unsent") and at.button(key=f"{page}_discard_unsent")
    at.button(key=f"{page}_discard_unsent").click().run()
    assert not at.exception and not any(c.value == text for c in at.main.code)
