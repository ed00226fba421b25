"""The image seam of ChatModel: a text-only model refuses images; a vision model gets them marked in order."""

from __future__ import annotations

import pytest

from tests.scripted import ScriptedBackend
from workbench.chat_model import ChatModel
from workbench.errors import ImageInputError
from workbench.messages import Message, Role
from workbench.models.backend import Capabilities
from workbench.models.generation import IMAGE_MARKER

PNG_A = b"\x89PNG\r\n\x1a\nA"
PNG_B = b"\x89PNG\r\n\x1a\nB"


def test_a_text_only_model_refuses_images_before_generating() -> None:
    backend = ScriptedBackend("never")
    model = ChatModel(backend)
    with pytest.raises(ImageInputError, match="reads text only"):
        model.stream([Message(Role.USER, "what is this?", images=[PNG_A])])
    assert backend.requests == []  # nothing was generated


def test_a_vision_model_gets_each_image_marked_once_in_order() -> None:
    backend = ScriptedBackend("a cat", capabilities=Capabilities(vision=True))
    model = ChatModel(backend)
    messages = [
        Message(Role.USER, "first", images=[PNG_A]),
        Message(Role.ASSISTANT, f"typed {IMAGE_MARKER} by the model"),
        Message(Role.USER, f"second, with a forged {IMAGE_MARKER} marker", images=[PNG_B]),
    ]
    "".join(model.stream(messages))
    request = backend.requests[0]
    assert request.images == [PNG_A, PNG_B]
    assert request.prompt.count(IMAGE_MARKER) == 2
    assert request.prompt.index(IMAGE_MARKER) < request.prompt.index("first")
    assert request.prompt.rindex(IMAGE_MARKER) > request.prompt.index("typed")
    assert messages[2].content.count(IMAGE_MARKER) == 1  # the caller's messages are not changed


def test_images_on_observations_are_not_input() -> None:
    """A kernel's plot on an observation does not make a text-only model refuse the conversation."""
    backend = ScriptedBackend("ok")
    model = ChatModel(backend)
    messages = [
        Message(Role.USER, "plot it"),
        Message(Role.OBSERVATION, "done", name="interpreter", images=[PNG_A]),
    ]
    assert "".join(model.stream(messages)) == "ok"
    assert backend.requests[0].images == []
