"""Images on the Chat page (AppTest): the tiny vision model gets them, a text-only model refuses them.

The tiny random-weight model's text is never asserted, only that the image went with the message,
was drawn in the user's bubble, and was saved.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.vision_fixture import sample_image
from workbench.images import prepare_image

MAIN = str(Path(__file__).resolve().parent.parent / "main.py")
PHOTO = sample_image((48, 32), "red", "JPEG")


def _app(monkeypatch: pytest.MonkeyPatch, model: str | None) -> AppTest:
    for name in ("WORKBENCH_MODEL", "MODEL_PATH", "WORKBENCH_DEVICE", "WORKBENCH_DTYPE", "WORKBENCH_BACKEND"):
        monkeypatch.delenv(name, raising=False)
    if model is not None:
        monkeypatch.setenv("WORKBENCH_MODEL", model)
        monkeypatch.setenv("WORKBENCH_DEVICE", "cpu")
    at = AppTest.from_file(MAIN, default_timeout=300)
    at.run()
    assert not at.exception
    at.sidebar.slider(key="chat_temperature").set_value(0.0)
    at.sidebar.number_input(key="chat_max_new").set_value(4)
    return at.run()


def _images_in(block: object) -> int:
    """How many images (st.image) a chat bubble holds."""
    return sum(1 for node in _walk(block) if getattr(node, "type", "") == "image")


def _walk(node: object) -> list[object]:
    children = getattr(node, "children", {}) or {}
    found = [node]
    for child in children.values():
        found += _walk(child)
    return found


def test_an_image_goes_with_the_message_to_a_vision_model(
    monkeypatch: pytest.MonkeyPatch, tiny_vlm: Path
) -> None:
    at = _app(monkeypatch, str(tiny_vlm))
    box = at.chat_input(key="chat_input")
    box.upload("photo.jpg", PHOTO, "image/jpeg")
    box.set_value("What is in the photo?")
    at.run()
    assert not at.exception and not at.error
    assert [m.name for m in at.chat_message] == ["user", "assistant"]
    assert _images_in(at.chat_message[0]) == 1
    messages = at.session_state["chat_session"].messages
    assert messages[0].images == [prepare_image(PHOTO)] and messages[1].stats["new_tokens"] > 0
    at.run()  # drawn again from the history: the image stays in the bubble
    assert _images_in(at.chat_message[0]) == 1 and not at.session_state["chat_pending_images"]


def test_an_image_sent_alone_waits_for_the_next_message(
    monkeypatch: pytest.MonkeyPatch, tiny_vlm: Path
) -> None:
    at = _app(monkeypatch, str(tiny_vlm))
    at.chat_input(key="chat_input").upload("a.png", sample_image()).run()
    assert not at.exception and not at.chat_message
    assert "1 image waiting to go with your next message" in [c.value for c in at.main.caption]
    at.chat_input(key="chat_input").set_value("And now?").run()
    assert [m.name for m in at.chat_message] == ["user", "assistant"]
    assert len(at.session_state["chat_session"].messages[0].images) == 1


@pytest.mark.model
def test_a_text_only_model_refuses_the_image_and_nothing_is_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    at = _app(monkeypatch, None)  # the embedded SmolLM2
    box = at.chat_input(key="chat_input")
    box.upload("photo.jpg", PHOTO, "image/jpeg")
    box.set_value("What is in the photo?")
    at.run()
    assert not at.exception
    assert "reads text only, and this conversation holds images" in at.main.error[0].value
    assert [c.value for c in at.main.code] == ["What is in the photo?"]  # the text stays
    assert not at.chat_message and not at.session_state["chat_session"].messages  # nothing recorded
    assert "1 image waiting to go with your next message" in [c.value for c in at.main.caption]
    at.button(key="chat_send_unsent").click().run()  # still a text-only model: refused again, still kept
    assert "reads text only" in at.main.error[0].value and not at.session_state["chat_session"].messages
    at.button(key="chat_drop_images").click().run()
    at.button(key="chat_send_unsent").click().run()  # without its images the text goes
    assert not at.exception and [m.name for m in at.chat_message] == ["user", "assistant"]
    assert at.session_state["chat_session"].messages[0].content == "What is in the photo?"
    assert not at.main.code  # sent: no longer kept


@pytest.mark.model
@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("notes.png", b"a text file with an image's name", "notes.png cannot be used: not a readable image"),
        ("cut.png", sample_image((300, 200))[:-300], "cut.png cannot be used: not a readable image"),
    ],
)
def test_a_bad_image_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, name: str, content: bytes, expected: str
) -> None:
    at = _app(monkeypatch, None)
    box = at.chat_input(key="chat_input")
    box.upload(name, content, "image/png")
    at.run()
    assert not at.exception
    assert expected in at.main.error[0].value
    assert not at.chat_message and not at.session_state["chat_pending_images"]


@pytest.mark.model
def test_a_text_only_model_loaded_after_images_were_sent_keeps_the_next_message(
    monkeypatch: pytest.MonkeyPatch, tiny_vlm: Path
) -> None:
    at = _app(monkeypatch, str(tiny_vlm))
    box = at.chat_input(key="chat_input")
    box.upload("photo.jpg", PHOTO, "image/jpeg")
    box.set_value("What is in the photo?")
    at.run()
    at.sidebar.text_input[0].set_value("embedded")
    next(b for b in at.sidebar.button if b.label == "Load").click()
    at.run()
    assert not at.exception and not at.sidebar.error
    at.chat_input(key="chat_input").set_value("And what colour is it?").run()
    assert not at.exception
    assert "reads text only, and this conversation holds images" in at.main.error[0].value
    assert [c.value for c in at.main.code] == ["And what colour is it?"]  # the text stays
    assert len(at.session_state["chat_session"].messages) == 2  # the first turn, and nothing more
