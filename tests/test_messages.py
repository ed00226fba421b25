"""Messages, tool calls and transcripts: the JSON round trip and what a hostile file gets back."""

from __future__ import annotations

import json

import pytest

from workbench.errors import TranscriptError, WorkbenchError
from workbench.execution_record import ExecutionRecord, OutputRecord
from workbench.messages import (
    InvalidCall,
    Message,
    Role,
    ToolCall,
    new_call_id,
    transcript_from_json,
    transcript_to_json,
)

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR fake image bytes"


def full_conversation() -> list[Message]:
    return [
        Message(Role.SYSTEM, "You are terse."),
        Message(Role.USER, "Convert 100 F to Celsius, s'il vous plaît ☃"),
        Message(
            Role.ASSISTANT,
            "",
            tool_calls=[ToolCall("convert_temperature", {"value": 100, "to": "celsius"}, "call_1")],
            invalid_calls=[InvalidCall("{oops", "not JSON", None, "call_2")],
        ),
        Message(Role.OBSERVATION, "37.77", name="convert_temperature", tool_call_id="call_1"),
        Message(Role.OBSERVATION, "bad call", name="unknown", error=True, tool_call_id="call_2"),
        Message(Role.ASSISTANT, "```python\n1/0\n```", interpreter=True, failure="CUDA out of memory"),
        Message(
            Role.OBSERVATION,
            "ZeroDivisionError",
            name="interpreter",
            error=True,
            images=[PNG],
            execution=ExecutionRecord(
                outputs=[
                    OutputRecord("stream", "stdout", "hi\n"),
                    OutputRecord("display", png=PNG),
                    OutputRecord("result", text="df", html="<table class='dataframe'></table>"),
                    OutputRecord("error", text="Traceback...\nZeroDivisionError: division by zero"),
                ],
                error_name="ZeroDivisionError",
                error_value="division by zero",
                timed_out=True,
                restarted=True,
                note="restarted",
                duration=0.25,
                execution_count=3,
            ),
        ),
        Message(Role.ASSISTANT, "About 37.8 °C.", stats={"new_tokens": 7}, stopped=True, metadata={"x": 1}),
    ]


def test_roles_are_the_chatglm3_four():
    assert [r.value for r in Role] == ["system", "user", "assistant", "observation"]


def test_message_accepts_a_role_name_and_defaults_are_empty():
    message = Message("user", "hi")  # type: ignore[arg-type]  # a role name from JSON, on purpose
    assert message.role is Role.USER
    assert message.to_dict() == {"role": "user", "content": "hi"}
    assert message.tool_calls == [] and message.metadata == {} and message.images == []


def test_transcript_round_trip_keeps_every_field():
    messages = full_conversation()
    text = transcript_to_json(messages)
    assert json.loads(text)["messages"][0] == {"role": "system", "content": "You are terse."}
    assert transcript_from_json(text) == messages


def test_transcript_without_images_counts_them_and_keeps_unicode_readable():
    text = transcript_to_json(full_conversation(), include_images=False)
    observation = json.loads(text)["messages"][6]
    observation.pop("execution")
    assert observation == {
        "role": "observation",
        "content": "ZeroDivisionError",
        "name": "interpreter",
        "error": True,
        "image_count": 1,
    }
    assert "☃" in text  # not \u2603-escaped


def test_transcript_accepts_a_bare_list_of_messages():
    assert transcript_from_json('[{"role": "user", "content": "hi"}]') == [Message(Role.USER, "hi")]


def test_message_without_content_has_empty_text():
    assert transcript_from_json('{"messages": [{"role": "assistant"}]}') == [Message(Role.ASSISTANT, "")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{not json", "The transcript is not valid JSON"),
        ("", "The transcript is not valid JSON"),
        ('"just a string"', 'A transcript must be {"messages": [...]} or a list of messages.'),
        ('{"messages": 5}', 'A transcript must be {"messages": [...]} or a list of messages.'),
        ('{"history": []}', 'A transcript must be {"messages": [...]} or a list of messages.'),
        ("[42]", "A message must be a JSON object, got int."),
        ('[["user", "hi"]]', "A message must be a JSON object, got list."),
        ('[{"role": "robot", "content": "x"}]', "Unknown role 'robot'; use one of: system, user, assistant"),
        ('[{"content": "no role"}]', "Unknown role None; use one of:"),
        ('[{"role": "user", "content": 7}]', "A message's 'content' must be a string."),
        ('[{"role": "user", "content": null}]', "A message's 'content' must be a string."),
        (
            '[{"role": "assistant", "tool_calls": [{"arguments": {}}]}]',
            "Each tool call needs a string 'name'.",
        ),
        ('[{"role": "assistant", "tool_calls": ["calc"]}]', "Each tool call needs a string 'name'."),
        (
            '[{"role": "assistant", "tool_calls": [{"name": "calc", "arguments": "1+1"}]}]',
            "Arguments of tool call 'calc' must be an object.",
        ),
        ('[{"role": "observation", "images": ["***"]}]', "An image is not valid base64"),
        ('[{"role": "observation", "images": [7]}]', "An image is not valid base64"),
        ('[{"role": "observation", "images": "aGk="}]', "'invalid_calls' and 'images' must be lists."),
        ('[{"role": "assistant", "tool_calls": 5}]', "'invalid_calls' and 'images' must be lists."),
        ('[{"role": "user", "metadata": "abc"}]', "A message's 'metadata' must be an object."),
        ('[{"role": "user", "metadata": [1, 2]}]', "A message's 'metadata' must be an object."),
        ('[{"role": "observation", "name": 5}]', "A message's 'name' must be a string."),
    ],
)
def test_hostile_transcripts_get_a_clear_transcript_error(text, expected):
    with pytest.raises(TranscriptError) as info:
        transcript_from_json(text)
    assert expected in str(info.value)
    assert isinstance(info.value, WorkbenchError)


def test_invalid_json_message_says_to_check_the_file():
    with pytest.raises(TranscriptError, match="check the file"):
        transcript_from_json('{"messages": [')


def test_tool_call_to_dict_is_the_openai_function_shape():
    assert ToolCall("f", {"x": 1}).to_dict() == {"name": "f", "arguments": {"x": 1}}


def test_round_trip_keeps_call_ids_and_pairings():
    back = transcript_from_json(transcript_to_json(full_conversation()))
    assert back[2].tool_calls[0].id == "call_1" and back[2].invalid_calls[0].id == "call_2"
    assert [m.tool_call_id for m in back[3:5]] == ["call_1", "call_2"]
    assert back[6].execution is not None and back[6].execution.images == [PNG]


def test_without_images_the_execution_keeps_its_text_only():
    data = json.loads(transcript_to_json(full_conversation(), include_images=False))
    outputs = data["messages"][6]["execution"]["outputs"]
    assert outputs[1] == {"kind": "display", "png_omitted": True}
    assert transcript_from_json(json.dumps(data))[6].execution.images == []  # type: ignore[union-attr]


def test_call_ids_are_unique_and_shaped_like_openais():
    ids = {new_call_id() for _ in range(1000)} | {ToolCall("f").id for _ in range(1000)}
    assert len(ids) == 2000
    assert all(i.startswith("call_") and len(i) == 29 and int(i[5:], 16) >= 0 for i in ids)
    assert ToolCall("f", {}, "call_a") == ToolCall("f", {}, "call_b")  # ids do not change what a call is


def test_an_old_transcript_with_free_keys_and_no_ids_still_loads():
    old = {
        "messages": [
            {"role": "assistant", "content": "", "tool_calls": [{"name": "f", "arguments": {}}]},
            {"role": "observation", "content": "1", "name": "f"},
            {
                "role": "assistant",
                "content": "x",
                "metadata": {
                    "stats": {"new_tokens": 2},
                    "stopped": True,
                    "error": "boom",
                    "interpreter": True,
                    "code": "print(1)",
                    "invalid_tool_calls": [{"text": "{", "error": "bad", "name": None}],
                    "tool": "f",
                },
            },
            {
                "role": "observation",
                "content": "1",
                "name": "interpreter",
                "metadata": {"run": 0, "timed_out": True},
            },
        ]
    }
    call, observation, reply, run = transcript_from_json(json.dumps(old))
    assert call.tool_calls[0].id.startswith("call_") and observation.tool_call_id is None
    assert (reply.stats, reply.stopped, reply.failure) == ({"new_tokens": 2}, True, "boom")
    assert (reply.interpreter, reply.code, reply.metadata) == (True, "print(1)", {"tool": "f"})
    assert reply.invalid_calls == [InvalidCall("{", "bad")] and reply.invalid_calls[0].id.startswith("call_")
    assert run.metadata == {"timed_out": True}  # the index into a session's runs means nothing once saved


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ({"role": "user", "stats": [1]}, "A message's 'stats' must be an object."),
        ({"role": "user", "failure": 3}, "A message's 'failure' must be a string."),
        (
            {"role": "tool" and "observation", "tool_call_id": 7},
            "A message's 'tool_call_id' must be a string.",
        ),
        ({"role": "assistant", "code": ["x"]}, "A message's 'code' must be a string."),
        (
            {"role": "assistant", "tool_calls": [{"name": "f", "id": 5}]},
            "The id of tool call 'f' must be a string.",
        ),
        ({"role": "assistant", "invalid_calls": "x"}, "must be lists"),
        ({"role": "assistant", "invalid_calls": ["x"]}, "Each unreadable tool call must be an object"),
        ({"role": "observation", "execution": []}, "'execution' must be an object"),
        ({"role": "observation", "execution": {"outputs": [1]}}, "Each output of a run must be an object"),
        (
            {"role": "observation", "execution": {"outputs": [{"kind": "display", "png": "!!"}]}},
            "not valid base64",
        ),
        (
            {"role": "observation", "execution": {"outputs": [], "duration": "1"}},
            "'duration' must be a number",
        ),
        (
            {"role": "observation", "execution": {"outputs": [], "execution_count": True}},
            "must be an integer",
        ),
    ],
)
def test_hostile_typed_fields_are_refused_with_a_clear_message(message, error):
    with pytest.raises(TranscriptError) as info:
        transcript_from_json(json.dumps([message]))
    assert error in str(info.value)
