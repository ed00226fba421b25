"""The remote backend against a real OpenAI-compatible server: the workbench's own ``serve`` in another
process, on the embedded model. Chat, Tool (required) and Code modes run unchanged on it; every failure
is a clear ModelError.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import jsonschema
import pytest

from kernel import KernelSession
from tests.cli_helpers import run_main
from tests.e2e.streamlit_server import free_port
from tests.engines import embedded_spec
from tests.server.conftest import API_KEY
from tests.server.helpers import MODEL_ID, MisbehavingServer, http_json, serve_process, server_thread
from tools import ToolRegistry
from workbench.chat_model import ChatModel
from workbench.errors import GenerationError, ModelError, ModelNotFoundError
from workbench.models.generation import SamplingSettings
from workbench.models.remote_backend import RemoteBackend, parse_remote_source
from workbench.models.spec import ModelSpec
from workbench.modes.chat import ChatSession
from workbench.modes.code import CodeSession, CodeSettings
from workbench.modes.tool import ToolChoice, ToolOptions, ToolSession, default_tool_choice
from workbench.server.app import create_app
from workbench.shared import SharedModel, shared_model

pytestmark = pytest.mark.model

GREEDY = SamplingSettings(temperature=0.0, top_p=0.9, max_new_tokens=8, repetition_penalty=1.1)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m workbench.server`` on the embedded model, in its own process; its base URL."""
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with serve_process(log, "--device", "cpu") as (url, _process):
        yield url


@pytest.fixture(scope="module")
def remote(served: str) -> ChatModel:
    """The workbench pointed at its own server."""
    return ChatModel.load(ModelSpec.from_env(f"openai:{served}#{MODEL_ID}", env={}))


def test_source_syntax() -> None:
    assert parse_remote_source("openai:http://gpu:8000/v1#Qwen2.5-7B") == parse_remote_source(
        "http://gpu:8000/v1/#Qwen2.5-7B"
    )
    assert parse_remote_source("openai:https://h/v1").model is None
    with pytest.raises(ModelError, match="not a server URL"):
        parse_remote_source("openai:gpu-box:8000")
    spec = ModelSpec.from_env("openai:http://h/v1#m", env={"OPENAI_API_KEY": "sk-secret"})
    assert spec.api_key == "sk-secret" and "sk-secret" not in repr(spec) and "sk-secret" not in spec.label


def test_load_describes_the_remote_model(remote: ChatModel, served: str) -> None:
    assert isinstance(remote.backend, RemoteBackend)
    info = remote.info
    assert (info.backend, info.device, info.loaded_from, info.label) == ("remote", "remote", served, MODEL_ID)
    assert info.context_length == 8192  # what the server reports
    assert remote.capabilities.prompt_prefix is False and remote.capabilities.constrained_json
    assert default_tool_choice(remote) is ToolChoice.AUTO


def test_without_a_model_name_the_servers_first_is_used(served: str) -> None:
    model = ChatModel.load(ModelSpec.from_env(f"openai:{served}", env={}))
    assert model.info.label == MODEL_ID


def test_chat_answers_as_the_model_does_in_process(remote: ChatModel) -> None:
    # serve picked its engine with backend auto; so does the model in process.
    chat_model = shared_model(embedded_spec()).get()
    remote_turn = ChatSession(remote, settings=GREEDY).send("Name three colors.")
    remote_text = "".join(remote_turn.text())
    local_turn = ChatSession(chat_model, settings=GREEDY).send("Name three colors.")
    assert remote_text.strip() and remote_text.strip() == "".join(local_turn.text()).strip()
    message = remote_turn.message
    assert message is not None and message.stats is not None and message.stats["new_tokens"] > 0
    assert remote_turn.stats.prompt_tokens > 5  # the server's count, from the usage chunk


def multiply(a: Literal[12], b: Literal[7]) -> int:
    """Multiply two whole numbers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a * b


def add(a: Literal[9], b: Literal[4]) -> int:
    """Add two whole numbers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a + b


def only_tool(function: Callable[..., int]) -> ToolRegistry:
    """A registry of one tool whose schema allows one call: its arguments are exact on purpose (the
    calculator's expression would be the model's own pick, which changes with the CPU)."""
    registry = ToolRegistry()
    registry.add(function)
    return registry


def test_tool_mode_required_calls_through_tool_choice(remote: ChatModel) -> None:
    session = ToolSession(
        remote,
        only_tool(multiply),
        settings=GREEDY.with_(max_new_tokens=24),
        options=ToolOptions(tool_choice=ToolChoice.REQUIRED, max_rounds=2),
    )
    list(session.send("What is 12 times 7?"))
    messages = session.messages
    call_message, observation = messages[1], messages[2]
    (call,) = call_message.tool_calls
    assert (call.name, call.arguments) == ("multiply", {"a": 12, "b": 7})
    assert observation.tool_call_id == call.id and not observation.error and observation.content == "84"
    assert messages[3].role.value == "assistant"  # the answer after the result
    assert isinstance(remote.backend, RemoteBackend) and remote.backend.profile.seen.get("tools") is True


def test_forced_call_falls_back_to_the_prompt_and_a_response_format(remote: ChatModel) -> None:
    """A server that ignores tool_choice (Ollama): the tools go in the prompt, the call's schema as response_format."""
    backend = remote.backend
    assert isinstance(backend, RemoteBackend)
    backend.profile.seen["tools"] = False
    try:
        session = ToolSession(
            remote,
            only_tool(add),
            settings=GREEDY.with_(max_new_tokens=24),
            options=ToolOptions(tool_choice=ToolChoice.REQUIRED, max_rounds=1),
        )
        list(session.send("What is 9 plus 4?"))
    finally:
        backend.profile.seen.clear()
    (call,) = session.messages[1].tool_calls
    assert (call.name, call.arguments) == ("add", {"a": 9, "b": 4}) and session.messages[2].content == "13"


def test_constrained_json_goes_out_as_response_format(remote: ChatModel) -> None:
    from workbench.messages import Message, Role

    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    stream = remote.stream(
        [Message(Role.USER, "Is water wet?")], GREEDY.with_(max_new_tokens=12), json_schema=schema
    )
    jsonschema.validate(json.loads(stream.result(timeout=300)), schema)


@pytest.mark.kernel
def test_code_mode_end_to_end(remote: ChatModel) -> None:
    with KernelSession(sandbox=True) as kernel:
        settings = GREEDY.with_(max_new_tokens=40)
        session = CodeSession(remote, kernel, settings=settings, code_settings=CodeSettings(max_rounds=1))
        list(session.send("What is 2**20? Use Python."))
    roles = [m.role.value for m in session.messages]
    assert roles[:3] == ["user", "assistant", "observation"], session.messages
    # The code is the model's own pick, which changes with the CPU: assert that it ran and came back.
    code_turn, observation = session.messages[1], session.messages[2]
    assert code_turn.interpreter and observation.name == "interpreter" and observation.content.strip()


def test_stop_closes_the_http_stream_and_ends_the_generation(api_url: str, model_slot: SharedModel) -> None:
    """Against the in-thread server of this process, so its model's generations can be watched."""
    model = ChatModel.load(ModelSpec.from_env(f"openai:{api_url}#{MODEL_ID}", env={}))
    backend: Any = model_slot.get().backend  # a SerialBackend or the batched llama.cpp engine
    turn = ChatSession(model, settings=GREEDY.with_(max_new_tokens=2000)).send("Write a long story.")
    chunks = turn.text()
    next(chunks), next(chunks)
    assert backend.generating
    turn.close()
    deadline = time.monotonic() + 30
    while backend.generating and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not backend.generating, "the server kept generating after Stop"
    assert turn.message is not None and turn.message.stopped and turn.message.content


# --- failures -----------------------------------------------------------------------------------
def test_unreachable_server() -> None:
    with pytest.raises(ModelError, match=r"Cannot reach the server at http://127\.0\.0\.1"):
        ChatModel.load(ModelSpec.from_env(f"openai:http://127.0.0.1:{free_port()}/v1#m", env={}))


def test_wrong_key_and_right_key(keyed_api_url: str) -> None:
    source = f"openai:{keyed_api_url}#{MODEL_ID}"
    with pytest.raises(ModelError, match="refused the API key") as caught:
        ChatModel.load(ModelSpec.from_env(source, env={"WORKBENCH_API_KEY": "wrong"}))
    assert "wrong" not in str(caught.value)
    model = ChatModel.load(ModelSpec.from_env(source, env={"WORKBENCH_API_KEY": API_KEY}))
    assert model.info.label == MODEL_ID


def test_unknown_model_lists_the_served_ones(api_url: str) -> None:
    with pytest.raises(ModelNotFoundError, match=f"has no model 'nope'; it serves: {MODEL_ID}"):
        ChatModel.load(ModelSpec.from_env(f"openai:{api_url}#nope", env={}))


def test_a_web_page_instead_of_an_api() -> None:
    fake = MisbehavingServer("html")
    try:
        with pytest.raises(ModelError, match="not OpenAI-style JSON"):
            ChatModel.load(ModelSpec.from_env(f"openai:{fake.url}#m", env={}))
    finally:
        fake.close()


def test_server_dying_mid_answer_keeps_and_marks_the_partial_answer() -> None:
    fake = MisbehavingServer("dies")
    try:
        model = ChatModel.load(ModelSpec.from_env(f"openai:{fake.url}#m", env={}))
        session = ChatSession(model)
        turn = session.send("Hi")
        received: list[str] = []
        with pytest.raises(GenerationError, match="stopped answering in the middle of the answer"):
            received.extend(turn.text())
    finally:
        fake.close()
    assert "".join(received) == "Hello there"
    reply = session.messages[-1]
    assert reply.content == "Hello there" and reply.failure and "partial answer is kept" in reply.failure


def test_a_server_that_does_not_answer_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_REMOTE_TIMEOUT", "1")
    fake = MisbehavingServer("hangs")
    try:
        model = ChatModel.load(ModelSpec.from_env(f"openai:{fake.url}#m", env={}))
        with pytest.raises(GenerationError, match="did not answer in time"):
            model.stream([], GREEDY).result(timeout=60)
    finally:
        fake.close()


def test_cli_exits_1_with_the_message(tmp_path: Path) -> None:
    status, _out, err = run_main("ask", "--model", f"openai:http://127.0.0.1:{free_port()}/v1#m", "hi")
    assert status == 1 and "Cannot reach the server" in err
    fake = MisbehavingServer("dies")
    try:
        status, out, err = run_main("ask", "--model", f"openai:{fake.url}#m", "hi")
    finally:
        fake.close()
    assert status == 1 and "Hello there" in out and "stopped answering in the middle" in err


def test_serving_a_remote_model_refuses_raw_completions(served: str) -> None:
    slot = SharedModel(ModelSpec.from_env(f"openai:{served}#{MODEL_ID}", env={}))
    slot.get()
    with server_thread(create_app(slot, model_id="proxy")) as url:
        status, body = http_json(
            "POST", url + "/completions", {"model": "proxy", "prompt": "Hi", "max_tokens": 1}
        )
    assert status == 400 and "/v1/chat/completions" in body["error"]["message"]
