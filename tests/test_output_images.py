"""Images of outputs (Code mode's plots, a tool's images) reach a vision model; a text-only model gets the text.

The loop tests use the scripted backend with ``vision`` and a fake kernel; the real sandboxed kernel makes a
plot and a hostile output; the tiny random-weight vision model (tests/vision_fixture.py) reads a real plot.
Asserted: the plumbing (which images the request holds, the markers and notes in the prompt), never text.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from kernel import KernelSession
from tests.scripted import PlainDialect, ScriptedBackend, call, hermes
from tests.test_code_mode import FakeKernel, drain, tiny_png
from tools import ToolRegistry
from tools.mcp_client import CallOutcome
from workbench.chat_model import ChatModel
from workbench.errors import ImageInputError
from workbench.images import prepare_image
from workbench.messages import INTERPRETER, Message, Role
from workbench.models.backend import Capabilities
from workbench.models.generation import IMAGE_MARKER, SamplingSettings
from workbench.modes.code import CodeSession, CodeSettings
from workbench.modes.code_format import observation_message
from workbench.modes.tool import ToolChoice, ToolOptions, ToolSession
from workbench.prompt_images import MAX_OUTPUT_IMAGES, prompt_images

VISION = Capabilities(vision=True)
SHORT = SamplingSettings(temperature=0, max_new_tokens=4)


def png(colour: str, size: tuple[int, int] = (8, 6)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def bomb_png() -> bytes:
    """A small PNG that says it has 20,000 x 20,000 pixels (over Pillow's limit): a decompression bomb."""
    buffer = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(buffer, format="PNG")
    return buffer.getvalue()


def code_session(kernel: Any, *replies: str, vision: bool) -> tuple[CodeSession, ScriptedBackend]:
    backend = ScriptedBackend(*replies, chunk_chars=4, capabilities=VISION if vision else None)
    model = ChatModel(backend, dialect=PlainDialect())
    return CodeSession(model, kernel, code_settings=CodeSettings(worked_example=False)), backend


@pytest.fixture
def fake_kernel(tmp_path: Path) -> FakeKernel:
    return FakeKernel(tmp_path)


# --- Code mode, scripted model --------------------------------------------------------------------
def test_a_plot_goes_to_a_vision_model_with_the_next_request(fake_kernel: FakeKernel) -> None:
    session, backend = code_session(fake_kernel, "PLOT\n```", "A red plot.", vision=True)
    drain(session.send("Plot it"))
    first, second = backend.requests
    assert first.images == [] and IMAGE_MARKER not in first.prompt
    assert second.images == [prepare_image(tiny_png())]
    assert second.prompt.count(IMAGE_MARKER) == 1
    assert f"observation: [image 1: 4x3]\n{IMAGE_MARKER}" in second.prompt  # the marker after its output
    assert session.messages[2].content == "[image 1: 4x3]"  # the conversation keeps no marker
    [sent] = [m for m in second.messages if m.role is Role.OBSERVATION]
    assert sent.images == [prepare_image(tiny_png())]  # what a chat server is sent


def test_a_text_only_model_gets_the_text_of_the_same_turn_and_no_refusal(fake_kernel: FakeKernel) -> None:
    session, backend = code_session(fake_kernel, "PLOT\n```", "A plot.", vision=False)
    drain(session.send("Plot it"))
    assert [m.role for m in session.messages] == [Role.USER, Role.ASSISTANT, Role.OBSERVATION, Role.ASSISTANT]
    assert session.messages[3].failure is None
    second = backend.requests[1]
    assert second.images == [] and IMAGE_MARKER not in second.prompt
    assert "observation: [image 1: 4x3]" in second.prompt


def test_only_the_latest_output_images_go_and_the_others_are_named() -> None:
    colours = ["red", "green", "blue", "white", "black", "yellow"]
    messages = [
        Message(Role.USER, "plot six"),
        Message(Role.OBSERVATION, "first run", name=INTERPRETER, images=[png(c) for c in colours[:3]]),
        Message(Role.OBSERVATION, "second run", name=INTERPRETER, images=[png(c) for c in colours[3:]]),
    ]
    backend = ScriptedBackend("ok", capabilities=VISION)
    "".join(ChatModel(backend, dialect=PlainDialect()).stream(messages))
    request = backend.requests[0]
    assert MAX_OUTPUT_IMAGES == 4
    assert request.images == [prepare_image(png(c)) for c in colours[2:]]
    assert request.prompt.count(IMAGE_MARKER) == 4
    for number in (1, 2):
        assert (
            f"[image {number} of this output is not shown to you: only the latest 4 output images go with "
            "each request]" in request.prompt
        )
    assert "[image 3 of this output is not shown" not in request.prompt
    assert [len(m.images) for m in request.messages] == [0, 1, 3]
    assert len(messages[1].images) == 3 and messages[1].content == "first run"  # not changed


def test_user_images_are_never_capped() -> None:
    messages = [Message(Role.USER, "look", images=[png("red")] * 6)]
    prepared = prompt_images(messages, max_output_images=1)
    assert len(prepared.images) == 6 and prepared.marked[0].content.count(IMAGE_MARKER) == 6


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "not a readable image"),
        (bomb_png(), "a decompression bomb"),
    ],
    ids=["garbage labelled png", "image bomb"],
)
def test_a_hostile_output_image_never_reaches_the_model_and_it_is_told(bad: bytes, reason: str) -> None:
    good = png("red")
    messages = [
        Message(Role.USER, "plot"),
        Message(Role.OBSERVATION, "[image 1: ?]\n[image 2: 8x6]", name=INTERPRETER, images=[bad, good]),
    ]
    backend = ScriptedBackend("ok", capabilities=VISION)
    "".join(ChatModel(backend, dialect=PlainDialect()).stream(messages))
    request = backend.requests[0]
    assert request.images == [prepare_image(good)]
    assert request.prompt.count(IMAGE_MARKER) == 1
    note = request.prompt.split("[image 1 of this output is not shown to you: it was refused: ", 1)[1]
    assert reason in note.split("]\n", 1)[0]
    assert request.messages[1].images == [prepare_image(good)]  # a chat server would not get it either


# --- Tool mode ----------------------------------------------------------------------------------------
def screenshot() -> str:
    """Take a screenshot (an MCP tool's shape: text and images)."""
    return "unused: run_call answers"


def _screenshot_call(arguments: dict[str, Any], timeout: float, control: Any) -> CallOutcome:
    return CallOutcome(text="[image 1: image/png]", images=[png("blue")])


screenshot.run_call = _screenshot_call  # type: ignore[attr-defined]  # as an MCP tool's function has


def test_a_tool_returning_an_image_shows_it_to_a_vision_model() -> None:
    registry = ToolRegistry(default_timeout=5.0)
    registry.add(screenshot)
    backend = ScriptedBackend(call("screenshot"), "A blue screen.", capabilities=VISION)
    session = ToolSession(
        ChatModel(backend, dialect=hermes()), registry, options=ToolOptions(tool_choice=ToolChoice.REQUIRED)
    )
    list(session.send("What is on the screen?"))
    observation = session.messages[2]
    assert observation.role is Role.OBSERVATION and observation.images == [png("blue")]
    second = backend.requests[1]
    assert second.images == [prepare_image(png("blue"))]
    assert f"<tool_response>\n[image 1: image/png]\n{IMAGE_MARKER}\n</tool_response>" in second.prompt


# --- the real sandboxed kernel ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def real_kernel() -> Iterator[KernelSession]:
    with KernelSession(sandbox=True, interrupt_grace=1.0) as session:
        yield session


PLOT = "import matplotlib.pyplot as plt\nplt.plot([1, 4, 9])\nplt.show()\n```"


@pytest.mark.kernel
def test_a_real_kernel_plot_reaches_the_next_request(real_kernel: KernelSession) -> None:
    session, backend = code_session(real_kernel, PLOT, "A line.", vision=True)
    drain(session.send("Plot 1, 4, 9"))
    observation = session.messages[2]
    assert len(observation.images) == 1
    second = backend.requests[1]
    assert second.images == [prepare_image(observation.images[0])]
    assert second.prompt.count(IMAGE_MARKER) == 1


@pytest.mark.kernel
def test_a_real_kernels_garbage_image_never_reaches_the_model(real_kernel: KernelSession) -> None:
    """Kernel code displays bytes labelled image/png that are no image: the model is told, never given them."""
    hostile = (
        "from IPython.display import display\n"
        "display({'image/png': 'iVBORw0KGgoAAAAAAAAAAAAAAAAAAAA=', 'text/plain': 'x'}, raw=True)\n```"
    )
    session, backend = code_session(real_kernel, hostile, "Nothing.", vision=True)
    drain(session.send("Show it"))
    second = backend.requests[1]
    assert second.images == [] and IMAGE_MARKER not in second.prompt
    [observation] = [m for m in second.messages if m.role is Role.OBSERVATION]
    assert observation.images == []
    assert observation.content == "[image dropped: not a readable image (UnidentifiedImageError)]"


# --- the tiny vision model on transformers -------------------------------------------------------------
@pytest.mark.kernel
def test_the_tiny_vision_model_reads_a_real_kernel_plot(
    vlm_model: ChatModel, real_kernel: KernelSession
) -> None:
    execution = real_kernel.execute(PLOT.removesuffix("```"), timeout=60)
    observation = observation_message(execution, max_chars=2000)
    assert len(observation.images) == 1
    calls: list[Any] = []
    tower = vlm_model.backend.model.model.vision_model  # type: ignore[attr-defined]
    handle = tower.register_forward_hook(
        lambda _module, args, kwargs, _out: calls.append(
            kwargs.get("pixel_values", args[0] if args else None)
        ),
        with_kwargs=True,
    )
    try:
        messages = [
            Message(Role.USER, "Plot 1, 4, 9"),
            Message(Role.ASSISTANT, f"```python\n{PLOT}", interpreter=True),
            observation,
        ]
        stream = vlm_model.stream(messages, SHORT)
        "".join(stream)
    finally:
        handle.remove()
    assert stream.error is None and stream.stats.new_tokens > 0
    assert len(calls) == 1 and tuple(calls[0].shape) == (1, 3, 64, 64)  # the plot, one tile
    assert float(calls[0].std()) > 0.05  # a drawn plot, not a blank tile


# --- a user's images in Tool and Code modes -------------------------------------------------------------
def test_tool_and_code_sessions_send_a_users_images_to_a_vision_model(fake_kernel: FakeKernel) -> None:
    picture = prepare_image(png("green"))
    code, code_backend = code_session(fake_kernel, "print(1)\n```", "One.", vision=True)
    drain(code.send("What colour is it?", [picture]))
    assert code.messages[0].images == [picture]
    assert all(request.images[:1] == [picture] for request in code_backend.requests)

    backend = ScriptedBackend("Green.", capabilities=VISION)
    tool = ToolSession(ChatModel(backend, dialect=hermes()), ToolRegistry(), options=ToolOptions())
    list(tool.send("What colour is it?", [picture]))
    assert tool.messages[0].images == [picture]
    assert backend.requests[0].images == [picture] and backend.requests[0].prompt.count(IMAGE_MARKER) == 1


def test_a_text_only_model_refuses_a_users_images_in_tool_and_code_before_recording(
    fake_kernel: FakeKernel,
) -> None:
    picture = prepare_image(png("green"))
    code, code_backend = code_session(fake_kernel, "never", vision=False)
    with pytest.raises(ImageInputError, match="reads text only"):
        code.send("What colour is it?", [picture])
    assert code.messages == [] and code_backend.requests == []

    backend = ScriptedBackend("never")
    tool = ToolSession(ChatModel(backend, dialect=hermes()), ToolRegistry(), options=ToolOptions())
    with pytest.raises(ImageInputError, match="reads text only"):
        tool.send("What colour is it?", [picture])
    assert tool.messages == [] and backend.requests == []
