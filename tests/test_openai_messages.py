"""Conversion to and from OpenAI-style chat messages, and what hostile input gets back."""

from __future__ import annotations

import json
from typing import Any

import pytest

from workbench.errors import TranscriptError
from workbench.messages import InvalidCall, Message, Role, ToolCall
from workbench.openai_messages import from_openai, to_openai


def tool_conversation() -> list[Message]:
    return [
        Message(Role.SYSTEM, "Be brief."),
        Message(Role.USER, "Weather ☃?"),
        Message(
            Role.ASSISTANT,
            "",
            tool_calls=[ToolCall("weather", {"city": "Paris"}, "call_a")],
            invalid_calls=[InvalidCall("{bad", "not JSON", "weather", "call_b")],
        ),
        Message(Role.OBSERVATION, "22 °C", name="weather", tool_call_id="call_a"),
        Message(Role.OBSERVATION, "not JSON", name="weather", error=True, tool_call_id="call_b"),
        Message(Role.ASSISTANT, "22 °C in Paris."),
    ]


def test_to_openai_writes_the_chat_completions_format():
    out = to_openai(tool_conversation())
    assert out[:2] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather ☃?"}]
    assert out[2] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_a",
                "type": "function",
                "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
            },
            {"id": "call_b", "type": "function", "function": {"name": "weather", "arguments": "{bad"}},
        ],
    }
    assert out[3] == {"role": "tool", "tool_call_id": "call_a", "content": "22 °C"}
    assert out[4] == {"role": "tool", "tool_call_id": "call_b", "content": "not JSON"}
    assert out[5] == {"role": "assistant", "content": "22 °C in Paris."}
    json.dumps(out)  # plain JSON


def test_a_round_trip_keeps_calls_ids_and_pairings():
    back = from_openai(to_openai(tool_conversation()))
    assert [m.role for m in back] == [m.role for m in tool_conversation()]
    assert (
        back[2].tool_calls == [ToolCall("weather", {"city": "Paris"})]
        and back[2].tool_calls[0].id == "call_a"
    )
    assert back[2].invalid_calls[0].text == "{bad" and back[2].invalid_calls[0].id == "call_b"
    assert [(m.tool_call_id, m.name, m.content) for m in back[3:5]] == [
        ("call_a", "weather", "22 °C"),
        ("call_b", "weather", "not JSON"),
    ]


def test_old_observations_without_ids_take_the_ids_of_their_calls_in_order():
    old = [
        Message(Role.ASSISTANT, "", tool_calls=[ToolCall("f", {}, "call_1"), ToolCall("g", {}, "call_2")]),
        Message(Role.OBSERVATION, "1", name="f"),
        Message(Role.OBSERVATION, "2", name="g"),
    ]
    assert [m.get("tool_call_id") for m in to_openai(old)] == [None, "call_1", "call_2"]


@pytest.mark.parametrize("chatglm", [True, False])
def test_code_turns_become_interpreter_calls_and_come_back_as_code_turns(chatglm):
    if chatglm:
        turn = Message(Role.ASSISTANT, "Let me compute.", interpreter=True, code="print(2**10)")
    else:
        turn = Message(Role.ASSISTANT, "Let me compute.\n```python\nprint(2**10)\n```", interpreter=True)
    messages = [Message(Role.USER, "2**10?"), turn, Message(Role.OBSERVATION, "1024", name="interpreter")]
    out = to_openai(messages)
    call = out[1]["tool_calls"][0]
    assert out[1]["content"] == "Let me compute."
    assert call["function"] == {"name": "interpreter", "arguments": '{"code": "print(2**10)"}'}
    assert out[2] == {"role": "tool", "tool_call_id": call["id"], "content": "1024"}
    back = from_openai(out)
    assert back[1].interpreter and back[1].content == "Let me compute.\n\n```python\nprint(2**10)\n```"
    assert back[2].name == "interpreter" and back[2].tool_call_id == call["id"]


def test_content_parts_null_content_and_object_arguments_are_read():
    back = from_openai(
        [
            {
                "role": "developer",
                "content": [{"type": "text", "text": "Be "}, {"type": "text", "text": "brief."}],
            },
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": {"x": 1}}}],
            },
            {"role": "tool", "content": "ok"},
            {"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "g", "arguments": ""}}]},
        ]
    )
    assert back[0] == Message(Role.SYSTEM, "Be brief.")
    assert back[2].tool_calls == [ToolCall("f", {"x": 1})] and back[2].tool_calls[0].id.startswith("call_")
    assert back[3].tool_call_id is None and back[4].tool_calls == [ToolCall("g", {})]


def test_arguments_that_are_not_json_become_an_unreadable_call_the_model_sees():
    back = from_openai(
        [{"role": "assistant", "tool_calls": [{"id": "c1", "function": {"name": "f", "arguments": "{x"}}]}]
    )
    (bad,) = back[0].invalid_calls
    assert (bad.id, bad.name, bad.text) == ("c1", "f", "{x") and "not valid JSON" in bad.error


HOSTILE: list[tuple[Any, str]] = [
    ({"role": "user"}, "must be a JSON array, got an object"),
    ("[]", "must be a JSON array, got a string"),
    (None, "must be a JSON array, got null"),
    ([1], "Message 1 must be a JSON object, got a number"),
    ([{"role": "wizard", "content": "x"}], "Message 1 has an unknown role 'wizard'; use one of: system"),
    ([{"content": "x"}], "unknown role None"),
    ([{"role": ["user"]}], "unknown role ['user']"),
    (
        [{"role": "user", "content": 5}],
        "'content' must be a string, null or a list of text parts, got a number",
    ),
    ([{"role": "user", "content": {"text": "x"}}], "got an object"),
    ([{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}], "other parts (audio"),
    ([{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}], "needs a string 'url'"),
    ([{"role": "assistant", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}], "only user messages"),
    ([{"role": "user", "content": [{"type": "text", "text": 3}]}], "content parts must be"),
    ([{"role": "user", "content": ["plain"]}], "content parts must be"),
    ([{"role": "tool", "tool_call_id": 3, "content": "x"}], "'tool_call_id' must be a string"),
    ([{"role": "user", "content": "x", "tool_calls": [{}]}], "only assistant messages can have 'tool_calls'"),
    ([{"role": "assistant", "tool_calls": {"id": "x"}}], "'tool_calls' must be an array"),
    ([{"role": "assistant", "tool_calls": ["f"]}], 'with a "function" object'),
    ([{"role": "assistant", "tool_calls": [{"id": "c", "function": "f"}]}], 'with a "function" object'),
    (
        [{"role": "assistant", "tool_calls": [{"id": 5, "function": {"name": "f"}}]}],
        "a string 'id' and a function 'name'",
    ),
    ([{"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": " "}}]}], "a function 'name'"),
    (
        [{"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "[1]"}}]}],
        "must be a JSON object, got an array",
    ),
    (
        [{"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": 7}}]}],
        "got a number",
    ),
    (
        [{"role": "user", "content": "ok"}, {"role": "system", "content": None}, "x"],
        "Message 3 must be a JSON object",
    ),
]


@pytest.mark.parametrize(("data", "error"), HOSTILE)
def test_hostile_input_gets_a_clear_transcript_error(data, error):
    with pytest.raises(TranscriptError) as info:
        from_openai(data)
    assert error in str(info.value)
