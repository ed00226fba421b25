"""Tool calls inside model output: JSON calls in tags, calls that could not be read, and where they live.

A dialect turns the model's text into an assistant :class:`~workbench.messages.Message` whose
``tool_calls`` hold the calls it could read. A call it could not read (bad JSON, no name, arguments
that are not an object) is kept as an :class:`InvalidCall` in the message's ``invalid_calls``, so the tool loop
can answer it with an error observation the model sees, instead of dropping it or crashing.
"""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any

from workbench.messages import InvalidCall, Message, Role, ToolCall

CALL_OPEN_TAG = "<tool_call>"
CALL_CLOSE_TAG = "</tool_call>"
_NAME_IN_TEXT = re.compile(r'"name"\s*:\s*"([^"\\]{1,64})"')
_CALL_SHAPE = '{"name": <tool name>, "arguments": {<parameter>: <value>, ...}}'


def invalid_calls(message: Message) -> list[InvalidCall]:
    """Return the unreadable calls recorded on an assistant message."""
    return list(message.invalid_calls)


def assistant_message(content: str, calls: list[ToolCall], invalid: list[InvalidCall]) -> Message:
    """Build an assistant message, recording unreadable calls in :attr:`Message.invalid_calls`."""
    return Message(Role.ASSISTANT, content.strip(), tool_calls=list(calls), invalid_calls=list(invalid))


__all__ = [
    "CALL_CLOSE_TAG",
    "CALL_OPEN_TAG",
    "InvalidCall",
    "assistant_message",
    "call_from_data",
    "call_from_json",
    "invalid_calls",
    "split_tagged_calls",
]


def call_from_json(text: str) -> ToolCall | InvalidCall:
    """Read one call written as JSON: ``{"name": ..., "arguments": {...}}``.

    ``"parameters"`` is accepted for ``"arguments"`` (Llama style), an OpenAI-style
    ``{"function": {...}}`` wrapper is unwrapped, and arguments given as a JSON string are decoded.
    """
    raw = text.strip()
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        found = _NAME_IN_TEXT.search(raw)
        return InvalidCall(
            raw,
            f"The tool call is not valid JSON ({exc.msg} at character {exc.pos}); it may have been cut off. "
            f"Write exactly one JSON object: {_CALL_SHAPE}.",
            found.group(1) if found else None,
        )
    return call_from_data(data, raw)


def call_from_data(data: Any, raw: str) -> ToolCall | InvalidCall:
    """Check decoded call data (see :func:`call_from_json`); ``raw`` is what the model wrote."""
    if isinstance(data, dict) and isinstance(data.get("function"), dict):
        data = data["function"]
    if not isinstance(data, dict):
        return InvalidCall(raw, f"The tool call must be a JSON object {_CALL_SHAPE}, not {_json_type(data)}.")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        return InvalidCall(raw, f'The tool call has no "name"; write {_CALL_SHAPE} naming one of the tools.')
    arguments = data.get("arguments", data.get("parameters", {}))
    if isinstance(arguments, str):
        with contextlib.suppress(json.JSONDecodeError):  # if not JSON, reported below as a string
            arguments = json.loads(arguments) if arguments.strip() else {}
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        return InvalidCall(
            raw,
            f'The "arguments" of the call to {name!r} must be a JSON object such as {{"parameter": value}}, '
            f"not {_json_type(arguments)}.",
            name,
        )
    return ToolCall(name.strip(), arguments)


def split_tagged_calls(
    text: str, open_tag: str = CALL_OPEN_TAG, close_tag: str = CALL_CLOSE_TAG
) -> tuple[str, list[ToolCall], list[InvalidCall]]:
    """Split text into its prose and the JSON calls written between ``open_tag`` and ``close_tag``.

    A last call whose closing tag is missing (the model stopped right after the JSON) still counts.

    Returns:
        The text outside the calls (stripped), the readable calls, the unreadable ones.
    """
    pattern = re.compile(re.escape(open_tag) + r"(.*?)(?:" + re.escape(close_tag) + r"|\Z)", re.DOTALL)
    calls: list[ToolCall] = []
    invalid: list[InvalidCall] = []
    pieces: list[str] = []
    last = 0
    for match in pattern.finditer(text):
        pieces.append(text[last : match.start()])
        last = match.end()
        parsed = call_from_json(match.group(1))
        (calls if isinstance(parsed, ToolCall) else invalid).append(parsed)  # type: ignore[arg-type]
    pieces.append(text[last:])
    return "".join(pieces).strip(), calls, invalid


def _json_type(value: Any) -> str:
    names = {str: "a string", bool: "a boolean", int: "a number", float: "a number", list: "an array"}
    return "null" if value is None else names.get(type(value), type(value).__name__)
