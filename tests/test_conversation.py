"""Messages, tool calls and transcripts: the JSON round trip and what a hostile file gets back."""

from __future__ import annotations

import json

import pytest

from workbench.conversation import (
    Message,
    Role,
    ToolCall,
    transcript_from_json,
    transcript_to_json,
)
from workbench.errors import TranscriptError, WorkbenchError

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR fake image bytes"


def full_conversation() -> list[Message]:
    return [
        Message(Role.SYSTEM, "You are terse."),
        Message(Role.USER, "Convert 100 F to Celsius, s'il vous plaît ☃"),
        Message(
            Role.ASSISTANT,
            "",
            tool_calls=[ToolCall("convert_temperature", {"value": 100, "to": "celsius"})],
        ),
        Message(Role.OBSERVATION, "37.77", name="convert_temperature"),
        Message(Role.OBSERVATION, "ZeroDivisionError", name="interpreter", error=True, images=[PNG]),
        Message(Role.ASSISTANT, "About 37.8 °C.", metadata={"stats": {"new_tokens": 7}, "stopped": True}),
    ]


def test_roles_are_the_chatglm3_four():
    assert [r.value for r in Role] == ["system", "user", "assistant", "observation"]


def test_message_accepts_a_role_name_and_defaults_are_empty():
    message = Message("user", "hi")
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
    observation = json.loads(text)["messages"][4]
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
        ('[{"role": "observation", "images": "aGk="}]', "'tool_calls' and 'images' must be lists."),
        ('[{"role": "assistant", "tool_calls": 5}]', "'tool_calls' and 'images' must be lists."),
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
