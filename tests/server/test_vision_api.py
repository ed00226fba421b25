"""Images over the OpenAI-compatible API: Workbench's ``serve`` (tested with the official ``openai``
client) and the remote backend (a scripted server, and Workbench talking to its own ``serve``).

The tiny random-weight vision model (tests/vision_fixture.py) answers noise: what is asserted is that
the image reached its vision tower, the answer streamed, and every refusal is a clear 400.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from PIL import Image

from tests.server.fake_openai import FakeOpenAI, Reply
from tests.server.helpers import server_thread
from tests.vision_fixture import sample_image, tiny_vlm_spec
from workbench.chat_model import ChatModel
from workbench.errors import ImageInputError
from workbench.images import data_url, prepare_image
from workbench.messages import Message, Role
from workbench.models.generation import SamplingSettings
from workbench.models.remote_backend import RemoteBackend
from workbench.models.spec import ModelSpec
from workbench.modes.chat import ChatSession
from workbench.server.app import create_app
from workbench.shared import SharedModel, shared_model

SHORT = SamplingSettings(temperature=0, max_new_tokens=6)
RED = prepare_image(sample_image((48, 32), "red"))


def _bomb() -> bytes:
    buffer = io.BytesIO()
    Image.new("1", (20000, 20000)).save(buffer, "PNG")
    return buffer.getvalue()


def _user(text: str, *urls: str) -> Any:
    parts: list[dict[str, Any]] = [{"type": "text", "text": text}]
    parts += [{"type": "image_url", "image_url": {"url": url}} for url in urls]
    return [{"role": "user", "content": parts}]


@pytest.fixture(scope="module")
def vlm_slot() -> SharedModel:
    """The shared slot of the tiny vision model, loaded (pages' tests may have dropped an older slot)."""
    slot = shared_model(tiny_vlm_spec())
    slot.get()
    return slot


@pytest.fixture(scope="module")
def vlm_url(vlm_slot: SharedModel) -> Iterator[str]:
    """``serve`` on the tiny vision model, in a thread of this process."""
    with server_thread(create_app(vlm_slot)) as url:
        yield url


@pytest.fixture
def vlm_client(vlm_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=vlm_url, api_key="unused", max_retries=0, timeout=300)


@pytest.fixture
def tower_calls(vlm_slot: SharedModel) -> Iterator[list[Any]]:
    """The pixel tensors the served tiny model's vision tower is called with."""
    calls: list[Any] = []
    backend: Any = vlm_slot.get().backend
    tower = backend.model.model.vision_model
    handle = tower.register_forward_hook(
        lambda _module, _args, kwargs, _out: calls.append(kwargs["pixel_values"]), with_kwargs=True
    )
    yield calls
    handle.remove()


# --- serve --------------------------------------------------------------------------------------
def test_serve_streams_an_answer_to_an_image_with_the_openai_client(
    vlm_client: openai.OpenAI, tower_calls: list[Any]
) -> None:
    model = vlm_client.models.list().data[0].id
    chunks: list[Any] = list(
        vlm_client.chat.completions.create(
            model=model,
            messages=_user("What is this?", data_url(RED), data_url(RED)),
            max_tokens=5,
            temperature=0,
            stream=True,
        )
    )
    assert chunks[-1].choices[0].finish_reason in ("length", "stop")
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(tower_calls) == 1 and tuple(tower_calls[0].shape) == (2, 3, 64, 64)


def test_serve_takes_a_jpeg_data_url_without_streaming(
    vlm_client: openai.OpenAI, tower_calls: list[Any]
) -> None:
    jpeg = "data:image/jpeg;base64," + base64.b64encode(sample_image(kind="JPEG")).decode()
    answer = vlm_client.chat.completions.create(
        model=vlm_client.models.list().data[0].id,
        messages=_user("And this?", jpeg),
        max_tokens=4,
        temperature=0,
    )
    assert answer.usage is not None and answer.usage.completion_tokens > 0
    assert len(tower_calls) == 1


HOSTILE = [
    ("a web address", "https://example.com/cat.png", "not fetched. Send the image itself as a data URL"),
    ("a metadata address", "http://169.254.169.254/latest/meta-data", "not fetched"),
    ("not base64", "data:image/png;base64,@@@", "invalid base64"),
    (
        "a text file",
        "data:image/png;base64," + base64.b64encode(b"not an image").decode(),
        "not a readable image",
    ),
    ("truncated", data_url(sample_image((300, 200))[:-300]), "not a readable image"),
    ("a bomb", data_url(_bomb()), "decompression bomb"),
]


@pytest.mark.parametrize(("case", "url", "expected"), HOSTILE, ids=[case[0] for case in HOSTILE])
def test_serve_refuses_a_bad_image_with_a_clear_400(
    vlm_client: openai.OpenAI, tower_calls: list[Any], case: str, url: str, expected: str
) -> None:
    with pytest.raises(openai.BadRequestError, match=expected) as caught:
        vlm_client.chat.completions.create(
            model=vlm_client.models.list().data[0].id,
            messages=_user("What is this?", url),
            max_tokens=4,
        )
    assert caught.value.status_code == 400 and caught.value.body["param"] == "messages"  # type: ignore[index]
    assert tower_calls == []


def test_serve_on_a_text_only_model_answers_400_before_generating(client: openai.OpenAI) -> None:
    model = client.models.list().data[0].id
    with pytest.raises(openai.BadRequestError, match="reads text only") as caught:
        client.chat.completions.create(
            model=model,
            messages=_user("What is this?", data_url(RED)),
            max_tokens=4,
            stream=True,
        )
    assert caught.value.status_code == 400
    # The same model still answers text.
    answer = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Hi"}], max_tokens=2, temperature=0
    )
    assert answer.usage is not None and answer.usage.completion_tokens > 0


# --- the remote backend -------------------------------------------------------------------------
def test_remote_sends_user_images_as_data_url_parts() -> None:
    with FakeOpenAI(lambda _body: Reply(text=["a red ", "box"])) as server:
        model = ChatModel.load(ModelSpec(source=f"openai:{server.url}#m"))
        assert model.capabilities.vision
        session = ChatSession(model, settings=SHORT)
        with session.send("What is it?", [RED]) as turn:
            assert "".join(turn.text()) == "a red box"
        sent = server.requests[0]["messages"][-1]
    assert sent["role"] == "user"
    assert sent["content"][0] == {"type": "text", "text": "What is it?"}
    url = sent["content"][1]["image_url"]["url"]
    assert url.startswith("data:image/png;base64,") and base64.b64decode(url.split(",", 1)[1]) == RED
    assert session.messages[0].images == [RED]


def test_a_remote_model_that_refuses_images_says_so_naming_the_model() -> None:
    def rule(body: dict[str, Any]) -> Reply:
        if any(isinstance(m["content"], list) for m in body["messages"]):
            return Reply(status=400, error="Image input is not supported for this model.")
        return Reply(text=["text is fine"])

    with FakeOpenAI(rule) as server:
        model = ChatModel.load(ModelSpec(source=f"openai:{server.url}#m"))
        stream = model.stream([Message(Role.USER, "What is it?", images=[RED])], SHORT)
        stream.wait(60)
        assert isinstance(stream.error, ImageInputError)
        assert "The model 'm' refused a message with images" in str(stream.error)
        assert "Image input is not supported" in str(stream.error) and "remove the images" in str(
            stream.error
        )
        assert model.chat("And in words?", settings=SHORT)[0] == "text is fine"


def test_remote_to_workbench_serve_carries_the_image_to_the_vision_tower(
    vlm_url: str, tower_calls: list[Any]
) -> None:
    remote = ChatModel.load(ModelSpec(source=f"openai:{vlm_url}"))
    assert isinstance(remote.backend, RemoteBackend)
    reply, history = remote.chat("Describe it.", settings=SHORT, images=[sample_image(kind="JPEG")])
    stats = history[-1].stats
    assert reply is not None and stats is not None and stats["new_tokens"] > 0
    assert len(tower_calls) == 1 and tuple(tower_calls[0].shape) == (1, 3, 64, 64)


def test_images_are_never_dropped_when_a_server_takes_no_tools() -> None:
    """Tools refused: they go into the prompt as text, which cannot carry images; that is said, not hidden."""

    def rule(body: dict[str, Any]) -> Reply:
        if body.get("tools"):
            return Reply(status=400, error="tools are not supported by this model (no tool parser)")
        return Reply(text=["never sent without its image"])

    tool = {"type": "function", "function": {"name": "look", "parameters": {"type": "object"}}}
    with FakeOpenAI(rule) as server:
        model = ChatModel.load(ModelSpec(source=f"openai:{server.url}#m"))
        stream = model.stream([Message(Role.USER, "Look at it.", images=[RED])], SHORT, tools=[tool])
        stream.wait(60)
        assert stream.text == "" and isinstance(stream.error, ImageInputError)
        assert str(stream.error).startswith(f"The server at {server.url} takes no tools itself")
        assert "cannot carry this conversation's images" in str(stream.error)
        assert len(server.requests) == 1  # the request with tools only: no text-only one went
