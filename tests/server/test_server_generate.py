"""How a completion is generated (tool choices, stops), with the scripted backend: the loop logic only.

The real model's answers through the API are in test_server_api.py.
"""

from __future__ import annotations

import json
from typing import Any

from tests.scripted import ScriptedBackend, call, hermes
from workbench.chat_model import ChatModel
from workbench.messages import Message, Role
from workbench.models.backend import Capabilities
from workbench.models.generation import SamplingSettings
from workbench.server.generate import CompletionRun, Finished, TextPiece
from workbench.server.requests import CompletionParams

WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
TIME: Any = {
    "type": "function",
    "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
}


def run(backend: ScriptedBackend, **params: Any) -> tuple[str, Finished]:
    model = ChatModel(backend, hermes())
    request = CompletionParams(
        model="m", messages=[Message(Role.USER, "Weather in Paris?")], settings=SamplingSettings(), **params
    )
    completion = CompletionRun(model, request)
    completion.start()
    events = list(completion.events())
    text = "".join(e.text for e in events if isinstance(e, TextPiece))
    finished = events[-1]
    assert isinstance(finished, Finished)
    return text, finished


def test_auto_call_opened_by_the_model_is_written_under_the_schema() -> None:
    backend = ScriptedBackend("Let me check. <tool_call>", call("get_weather", city="Paris"))
    text, finished = run(backend, tools=[WEATHER, TIME], tool_choice="auto")
    assert text == "Let me check. " and finished.content == "Let me check."
    assert finished.finish_reason == "tool_calls"
    (item,) = finished.tool_calls
    assert item["function"]["name"] == "get_weather" and json.loads(item["function"]["arguments"]) == {
        "city": "Paris"
    }
    second = backend.requests[1]
    assert second.prefix == "Let me check. <tool_call>\n" and second.json_schema is not None


def test_named_function_is_forced_with_only_its_schema() -> None:
    backend = ScriptedBackend(call("get_time"))
    text, finished = run(backend, tools=[WEATHER, TIME], tool_choice="get_time")
    assert text == "" and [c["function"]["name"] for c in finished.tool_calls] == ["get_time"]
    (request,) = backend.requests
    assert request.prefix == "<tool_call>\n"
    assert request.json_schema is not None and request.json_schema["properties"]["name"] == {
        "const": "get_time"
    }


def test_a_backend_without_prefixes_writes_calls_in_full() -> None:
    """A chat-server backend answers once; its call is read from the text, not generated again."""
    reply = "Sure.\n<tool_call>\n" + call("get_weather", city="Oslo") + "\n</tool_call>"
    backend = ScriptedBackend(reply, capabilities=Capabilities(prompt_prefix=False))
    text, finished = run(backend, tools=[WEATHER], tool_choice="auto")
    assert len(backend.requests) == 1 and text == "Sure.\n"
    assert [c["function"]["name"] for c in finished.tool_calls] == ["get_weather"]


def test_stop_strings_cut_the_answer_and_tools_off_means_text() -> None:
    backend = ScriptedBackend("one two <tool_call> three END four")
    text, finished = run(backend, stop=("END",))
    assert finished.content == text == "one two <tool_call> three " and finished.tool_calls == []
    assert finished.finish_reason == "stop"
