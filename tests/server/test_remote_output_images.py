"""Images of outputs on remote servers: after the ``tool`` messages as a ``user`` message with ``image_url``
parts (OpenAI's ``tool`` role takes text only), a note where they cannot go, and not again once refused.
"""

from __future__ import annotations

import base64
import io
from typing import Any

from PIL import Image

from tests.server.fake_openai import FakeOpenAI, Reply
from tests.server.test_vision_api import tower_calls, vlm_slot, vlm_url  # noqa: F401 (fixtures)
from workbench.chat_model import ChatModel
from workbench.images import prepare_image
from workbench.messages import INTERPRETER, Message, Role, ToolCall
from workbench.models.generation import SamplingSettings
from workbench.models.remote_backend import RemoteBackend
from workbench.models.spec import ModelSpec
from workbench.openai_messages import OUTPUT_IMAGES_NOTE, to_openai

SHORT = SamplingSettings(temperature=0, max_new_tokens=6)


def png(colour: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (12, 8), colour).save(buffer, format="PNG")
    return prepare_image(buffer.getvalue())


PLOT = png("red")
SHOT = png("blue")


def two_calls() -> list[Message]:
    """A turn with two calls, the first answering with an image, then the answer."""
    first, second = ToolCall("screenshot", {}, "call_a"), ToolCall("clock", {}, "call_b")
    return [
        Message(Role.USER, "What is on screen, and when?"),
        Message(Role.ASSISTANT, "", tool_calls=[first, second]),
        Message(
            Role.OBSERVATION, "[image 1: image/png]", name="screenshot", tool_call_id="call_a", images=[SHOT]
        ),
        Message(Role.OBSERVATION, "12:00", name="clock", tool_call_id="call_b"),
    ]


def image_bytes(part: dict[str, Any]) -> bytes:
    url = part["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    return base64.b64decode(url.split(",", 1)[1])


def test_output_images_follow_the_tool_messages_as_a_user_message() -> None:
    out = to_openai(two_calls(), output_images=True)
    assert [m["role"] for m in out] == ["user", "assistant", "tool", "tool", "user"]
    assert out[2] == {"role": "tool", "tool_call_id": "call_a", "content": "[image 1: image/png]"}
    note, picture = out[4]["content"]
    assert note == {"type": "text", "text": OUTPUT_IMAGES_NOTE.format(name="screenshot", call_id="call_a")}
    assert image_bytes(picture) == SHOT
    # Exports and other callers: no image parts, no extra message.
    assert [m["role"] for m in to_openai(two_calls())] == ["user", "assistant", "tool", "tool"]


def test_a_code_turns_plot_goes_to_the_server_after_its_result() -> None:
    messages = [
        Message(Role.USER, "Plot it"),
        Message(Role.ASSISTANT, "```python\nplot()\n```", interpreter=True),
        Message(Role.OBSERVATION, "[image 1: 12x8]", name=INTERPRETER, images=[PLOT]),
    ]
    with FakeOpenAI(lambda _body: Reply(text=["a red plot"])) as server:
        model = ChatModel.load(ModelSpec(source=f"openai:{server.url}#m"))
        assert "".join(model.stream(messages, SHORT)) == "a red plot"
        sent = server.requests[0]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "user"]
    call_id = sent[1]["tool_calls"][0]["id"]
    assert sent[2] == {"role": "tool", "tool_call_id": call_id, "content": "[image 1: 12x8]"}
    assert sent[3]["content"][0]["text"] == OUTPUT_IMAGES_NOTE.format(name=INTERPRETER, call_id=call_id)
    assert image_bytes(sent[3]["content"][1]) == PLOT


def test_a_text_only_remote_model_refusing_output_images_gets_notes_instead() -> None:
    """A text-only model on the server refuses image parts: the Code turn goes on, the plot named in text."""

    def rule(body: dict[str, Any]) -> Reply:
        if any(isinstance(m["content"], list) for m in body["messages"]):
            return Reply(status=400, error="Image input is not supported for this model.")
        return Reply(text=["fine"])

    with FakeOpenAI(rule) as server:
        model = ChatModel.load(ModelSpec(source=f"openai:{server.url}#m"))
        messages = [
            Message(Role.USER, "Plot it"),
            Message(Role.ASSISTANT, "```python\nplot()\n```", interpreter=True),
            Message(Role.OBSERVATION, "[image 1: 12x8]", name=INTERPRETER, images=[PLOT]),
        ]
        stream = model.stream(messages, SHORT)
        assert "".join(stream) == "fine" and stream.error is None
        refused, retried = server.requests
        assert isinstance(refused["messages"][-1]["content"], list)
        assert [m["role"] for m in retried["messages"]] == ["user", "assistant", "tool"]
        assert retried["messages"][-1]["content"] == (
            "[image 1: 12x8]\n[1 image(s) of this output cannot be shown to you: this server's model refused images]"
        )
        backend = model.backend
        assert isinstance(backend, RemoteBackend) and backend.profile.output_images is False
        assert "output images ✗" in backend.status_line()
        # Learned: the next request goes without them at once.
        assert "".join(model.stream(messages, SHORT)) == "fine" and len(server.requests) == 3


def test_output_images_are_named_when_a_server_takes_no_tools() -> None:
    def rule(body: dict[str, Any]) -> Reply:
        if body.get("tools"):
            return Reply(status=400, error="tools are not supported by this model (no tool parser)")
        return Reply(text=["no tools here"])

    tool = {"type": "function", "function": {"name": "screenshot", "parameters": {"type": "object"}}}
    with FakeOpenAI(rule) as server:
        model = ChatModel.load(ModelSpec(source=f"openai:{server.url}#m"))
        stream = model.stream(two_calls(), SHORT, tools=[tool])
        assert "".join(stream) == "no tools here" and stream.error is None
        text = str(server.requests[-1]["messages"])
    assert "1 image(s) of this output cannot be shown to you: results go to this server as text" in text
    assert "image_url" not in text


def test_workbench_to_its_own_serve_carries_a_plot_to_the_vision_tower(
    vlm_url: str,  # noqa: F811 (the imported fixture)
    tower_calls: list[Any],  # noqa: F811
) -> None:
    remote = ChatModel.load(ModelSpec(source=f"openai:{vlm_url}"))
    messages = [
        Message(Role.USER, "Plot it"),
        Message(Role.ASSISTANT, "```python\nplot()\n```", interpreter=True),
        Message(Role.OBSERVATION, "[image 1: 12x8]", name=INTERPRETER, images=[PLOT]),
    ]
    stream = remote.stream(messages, SHORT)
    "".join(stream)
    assert stream.error is None and stream.stats.new_tokens > 0
    assert len(tower_calls) == 1 and tuple(tower_calls[0].shape) == (1, 3, 64, 64)
