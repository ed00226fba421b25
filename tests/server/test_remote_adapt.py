"""The remote backend adapts to each server's deviations, learns them once, and says what it learned.

The servers here are scripted (:mod:`tests.server.fake_openai`), each playing one deviation seen in a
real server: tool_choice ignored (Ollama), json_schema refused with a 500 (llama-cpp-python), tools
refused (vLLM without a tool parser), null content refused (llama-cpp-python), arguments sent twice
encoded or as a number. The real servers are in ``test_remote_servers.py``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.server.fake_openai import FakeOpenAI, Reply
from tools import ToolRegistry
from tools.builtins import calculator
from workbench.chat_model import ChatModel
from workbench.errors import GenerationError
from workbench.messages import Message, Role
from workbench.models.generation import SamplingSettings
from workbench.models.remote_backend import RemoteBackend
from workbench.models.remote_profile import ServerProfile
from workbench.models.spec import ModelSpec
from workbench.modes.chat import ChatSession
from workbench.modes.tool import ToolChoice, ToolOptions, ToolSession

SETTINGS = SamplingSettings(temperature=0.0, max_new_tokens=32)
CALL = {"expression": "12 * 7"}


def _kind(body: dict[str, Any]) -> str:
    """Which step a request is: tools, json_schema, json_object, or text."""
    if body.get("tool_choice") not in (None, "auto"):
        return "tools"
    response_format = body.get("response_format") or {}
    return str(response_format.get("type") or "text")


def _system(body: dict[str, Any]) -> str:
    first = body["messages"][0]
    return str(first["content"]) if first["role"] == "system" else ""


class Server:
    """A scripted server: ``behaviour`` maps a step to its reply; the final answer is text."""

    def __init__(self, **behaviour: Reply) -> None:
        self.behaviour = behaviour
        self.fake = FakeOpenAI(self.answer)

    def answer(self, body: dict[str, Any]) -> Reply:
        if any(
            m["role"] == "tool" or str(m.get("content")).startswith("<tool_response>")
            for m in body["messages"]
        ):
            return Reply(text=["It is ", "84."])  # the answer after the result
        return self.behaviour.get(_kind(body), Reply(text=["no call"]))

    @property
    def kinds(self) -> list[str]:
        return [_kind(body) for body in self.fake.requests]


@pytest.fixture
def registry() -> ToolRegistry:
    tools = ToolRegistry()
    tools.add(calculator)
    return tools


def _model(server: Server) -> ChatModel:
    return ChatModel.load(ModelSpec.from_env(f"openai:{server.fake.url}#m", env={}))


def _profile(model: ChatModel) -> ServerProfile:
    assert isinstance(model.backend, RemoteBackend)
    return model.backend.profile


def _required_turn(model: ChatModel, registry: ToolRegistry) -> list[Message]:
    session = ToolSession(
        model, registry, settings=SETTINGS, options=ToolOptions(tool_choice=ToolChoice.REQUIRED, max_rounds=2)
    )
    list(session.send("What is 12 times 7?"))
    return session.messages


def _assert_called(messages: list[Message]) -> None:
    call_message, observation = messages[1], messages[2]
    (call,) = call_message.tool_calls
    assert (call.name, call.arguments) == ("calculator", CALL)
    assert observation.tool_call_id == call.id and not observation.error and observation.content == "84"


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    made: list[Server] = []
    yield made
    for server in made:
        server.fake.close()


def _serve(servers: list[Server], **behaviour: Reply) -> Server:
    server = Server(**behaviour)
    servers.append(server)
    return server


def test_a_server_that_honours_tool_choice_is_asked_once(
    servers: list[Server], registry: ToolRegistry
) -> None:
    server = _serve(
        servers, tools=Reply(calls=[("calculator", json.dumps(CALL))], finish_reason="tool_calls")
    )
    model = _model(server)
    _assert_called(_required_turn(model, registry))
    assert server.kinds[0] == "tools"
    assert server.fake.requests[0]["tool_choice"] == {"type": "function", "function": {"name": "calculator"}}
    assert _profile(model).summary() == "this server: tools ✓"


def test_ignored_tool_choice_then_refused_json_schema_lands_on_json_object(
    servers: list[Server], registry: ToolRegistry
) -> None:
    refused = "1 validation error: response_format.type Input should be 'text' or 'json_object'"
    server = _serve(
        servers,
        tools=Reply(text=["I think it is 84"]),  # tool_choice ignored: no call
        json_schema=Reply(status=500, error=refused),
        json_object=Reply(text=[json.dumps({"name": "calculator", "arguments": CALL})]),
    )
    model = _model(server)
    messages = _required_turn(model, registry)
    _assert_called(messages)
    assert server.kinds[:3] == ["tools", "json_schema", "json_object"]
    json_object = server.fake.requests[2]
    assert '"expression"' in _system(json_object) and "JSON schema" in _system(json_object)
    assert json_object["response_format"]["schema"]["properties"]["name"] == {"const": "calculator"}
    assert _profile(model).summary() == "this server: tools ✗, json_schema ✗, json_object ✓"
    # Learned once: the next turn goes straight to json_object.
    before = len(server.fake.requests)
    _assert_called(_required_turn(model, registry))
    assert server.kinds[before] == "json_object"


def test_the_sidebar_line_names_the_fallback_in_use() -> None:
    profile = ServerProfile()
    profile.worked("tools")
    profile.failed("json_schema")
    assert profile.summary() == "this server: tools ✓, json_schema ✗ → json_object"
    assert profile.steps(calls=False) == ["json_object", "text"]
    assert profile.steps() == ["tools", "json_object", "text"]
    assert ServerProfile().summary() == ""


@pytest.mark.parametrize(
    "arguments",
    [json.dumps(json.dumps(CALL)), CALL],
    ids=["a JSON string holding an object", "an object instead of a string"],
)
def test_arguments_holding_an_object_are_decoded(
    servers: list[Server], registry: ToolRegistry, arguments: Any
) -> None:
    server = _serve(servers, tools=Reply(calls=[("calculator", arguments)], finish_reason="tool_calls"))
    _assert_called(_required_turn(_model(server), registry))
    assert server.kinds[0] == "tools" and len(server.kinds) == 2  # the call, then the answer


@pytest.mark.parametrize("arguments", ["5", 5, json.dumps("12 * 7"), "[1, 2]"])
def test_arguments_that_are_no_object_never_reach_the_tool(
    servers: list[Server], registry: ToolRegistry, arguments: Any
) -> None:
    server = _serve(
        servers,
        tools=Reply(calls=[("calculator", arguments)], finish_reason="tool_calls"),
        json_schema=Reply(text=[json.dumps({"name": "calculator", "arguments": CALL})]),
    )
    model = _model(server)
    _assert_called(_required_turn(model, registry))
    assert server.kinds[:2] == ["tools", "json_schema"]
    assert _profile(model).seen == {"tools": False, "json_schema": True}


def test_the_last_step_reads_the_call_written_as_text(servers: list[Server], registry: ToolRegistry) -> None:
    server = _serve(
        servers,
        tools=Reply(status=400, error="tools are not supported by this model (no tool parser)"),
        json_schema=Reply(status=400, error="Unknown response_format type json_schema"),
        json_object=Reply(status=422, error="response_format is not supported"),
        text=Reply(
            text=["<tool_call>\n", json.dumps({"name": "calculator", "arguments": CALL}), "\n</tool_call>"]
        ),
    )
    model = _model(server)
    _assert_called(_required_turn(model, registry))
    assert server.kinds[:4] == ["tools", "json_schema", "json_object", "text"]
    assert "<tools>" in _system(server.fake.requests[3])  # the tools in the prompt, Hermes style
    assert _profile(model).summary() == "this server: tools ✗, json_schema ✗, json_object ✗, text ✓"


def test_an_unreadable_call_at_the_last_step_is_reported_to_the_model(
    servers: list[Server], registry: ToolRegistry
) -> None:
    server = _serve(
        servers,
        tools=Reply(text=["no"]),
        json_schema=Reply(status=500, error="response_format: json_schema unsupported"),
        json_object=Reply(status=500, error="response_format: json_object unsupported"),
        text=Reply(text=['{"name": "calculator", "arguments": 5}']),
    )
    messages = _required_turn(_model(server), registry)
    assert not messages[1].tool_calls and messages[1].invalid_calls
    assert messages[2].error and "must be a JSON object" in messages[2].content


def test_an_error_that_names_nothing_sent_is_not_a_step_down(
    servers: list[Server], registry: ToolRegistry
) -> None:
    server = _serve(servers, tools=Reply(status=500, error="CUDA error: out of memory"))
    model = _model(server)
    with pytest.raises(GenerationError, match="answered 500: CUDA error: out of memory") as caught:
        _required_turn(model, registry)
    assert ".." not in str(caught.value) and server.kinds == ["tools"] and _profile(model).seen == {}


def test_null_content_refused_is_sent_as_empty_text_from_then_on(
    servers: list[Server], registry: ToolRegistry
) -> None:
    def rule(body: dict[str, Any]) -> Reply:
        if any(m.get("content", "") is None for m in body["messages"]):
            return Reply(
                status=500, error="7 validation errors: messages.1.content Input should be a valid string"
            )
        if body.get("tool_choice") not in (None, "auto"):
            return Reply(calls=[("calculator", json.dumps(CALL))], finish_reason="tool_calls")
        return Reply(text=["84."])

    fake = FakeOpenAI(rule)
    try:
        model = _model_at(fake.url)
        _assert_called(_required_turn(model, registry))
        nulls = [b for b in fake.requests if any(m.get("content", "") is None for m in b["messages"])]
        assert len(nulls) == 1  # refused once, then "" every time
        assert _profile(model).null_content is False
        assert 'null content ✗ → ""' in _profile(model).summary()
        after = fake.requests[-1]["messages"]
        assert [m["content"] for m in after if m.get("tool_calls")] == [""]
    finally:
        fake.close()


def _model_at(url: str) -> ChatModel:
    return ChatModel.load(ModelSpec.from_env(f"openai:{url}#m", env={}))


def test_constrained_json_falls_back_to_json_object(servers: list[Server]) -> None:
    schema = {"type": "object", "properties": {"ok": {"enum": [True]}}, "required": ["ok"]}
    server = _serve(
        servers,
        json_schema=Reply(status=500, error="response_format: Input should be 'text' or 'json_object'"),
        json_object=Reply(text=['{"ok"', ": true}"]),
    )
    model = _model(server)
    text = model.stream([Message(Role.USER, "ok?")], SETTINGS, json_schema=schema).result(timeout=30)
    assert json.loads(text) == {"ok": True}
    assert server.kinds == ["json_schema", "json_object"]
    assert _profile(model).summary() == "this server: json_schema ✗, json_object ✓"


def test_forced_code_is_a_named_interpreter_call(servers: list[Server]) -> None:
    server = _serve(
        servers,
        tools=Reply(
            calls=[("interpreter", json.dumps({"code": "print(2**20)"}))], finish_reason="tool_calls"
        ),
    )
    model = _model(server)
    stream = model.stream(
        [Message(Role.USER, "2**20?")], SETTINGS, prefix="```python\n", stop_strings=("```",)
    )
    assert stream.result(timeout=30) == "print(2**20)"
    request = server.fake.requests[0]
    assert request["tool_choice"] == {"type": "function", "function": {"name": "interpreter"}}
    assert [t["function"]["name"] for t in request["tools"]] == ["interpreter"]


def test_forced_code_read_from_a_python_block_at_the_last_step(servers: list[Server]) -> None:
    server = _serve(
        servers,
        tools=Reply(text=["Sure."]),
        json_schema=Reply(status=500, error="response_format json_schema not supported"),
        json_object=Reply(status=500, error="response_format json_object not supported"),
        text=Reply(text=["Here:\n```python\nprint(2**20)\n```\nDone."]),
    )
    stream = _model(server).stream(
        [Message(Role.USER, "2**20?")], SETTINGS, prefix="```python\n", stop_strings=("```",)
    )
    assert stream.result(timeout=30) == "print(2**20)"


def test_a_dead_server_says_so_once(servers: list[Server]) -> None:
    from tests.server.helpers import MisbehavingServer

    fake = MisbehavingServer("dies")
    try:
        session = ChatSession(_model_at(fake.url))
        with pytest.raises(GenerationError) as caught:
            list(session.send("Hi").text())
    finally:
        fake.close()
    message = str(caught.value)
    assert message == (
        f"Generation failed: The server at {fake.url} stopped answering in the middle of the answer; the "
        "partial answer is kept. Check that it is running."
    )
    assert ".." not in message and "max new tokens" not in message
    assert session.messages[-1].content == "Hello there"


def test_a_call_cut_by_max_new_tokens_is_reported_not_held_against_the_server(
    servers: list[Server], registry: ToolRegistry
) -> None:
    server = _serve(
        servers, tools=Reply(calls=[("calculator", '{"expression": "12 *')], finish_reason="length")
    )
    model = _model(server)
    messages = _required_turn(model, registry)
    assert server.kinds[0] == "tools" and "json_schema" not in server.kinds
    assert not messages[1].tool_calls and messages[1].invalid_calls
    assert messages[1].metadata.get("note") == "The call was cut off by the max new tokens limit."
    assert _profile(model).seen == {}
