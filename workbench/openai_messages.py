"""Conversion between Workbench messages and OpenAI-style chat messages, in one place.

``to_openai`` writes the Chat Completions format:

- ``system``, ``user`` and ``assistant`` keep their roles; an assistant's calls become
  ``tool_calls: [{"id", "type": "function", "function": {"name", "arguments": <JSON string>}}]``.
  A call the model wrote unreadably keeps its id, its name (or ``unknown``) and what the model
  wrote as the ``arguments`` string (OpenAI allows arguments that are not valid JSON).
- A tool's observation becomes ``{"role": "tool", "tool_call_id", "content"}``. An observation of an
  older transcript, with no id, takes the id of the call it answers by position.
- A code-interpreter turn is written as a call too, so the pairing survives: the assistant message
  keeps its prose and gets one call ``{"name": "interpreter"}`` whose arguments are ``{"code": ...}``; the
  interpreter's observation is a ``tool`` message answering it.
- A ``tool`` message cannot hold image parts (OpenAI takes text only there), so with
  ``output_images=True`` (what a remote vision model is sent) an observation's images follow the run of
  ``tool`` messages as one ``user`` message each: a text part naming the tool and call whose output they
  are, then the ``image_url`` parts. vLLM, llama.cpp's server, Ollama and OpenAI all accept that order
  (the tool messages still follow their calls directly). Exports leave them out (``image_count`` is kept
  by the JSON export, not here).

A user message with images gets its content as parts: ``[{"type": "text"}, {"type": "image_url",
"image_url": {"url": "data:image/png;base64,..."}}, ...]``.

``from_openai`` reads that format back, validating it: content as a string, null or a list of text
parts and (user messages only) ``image_url`` parts holding base64 data URLs, checked as images and never
fetched (:func:`workbench.images.image_from_url`); ``tool`` and ``function`` roles as observations;
arguments as a JSON string (one that is not JSON becomes an unreadable call, kept so the model sees its
mistake) or an object. Anything else raises :class:`~workbench.errors.TranscriptError` saying what is wrong.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from workbench.errors import ImageInputError, TranscriptError
from workbench.messages import INTERPRETER, InvalidCall, Message, Role, ToolCall, new_call_id

_ROLES = {"system": Role.SYSTEM, "developer": Role.SYSTEM, "user": Role.USER, "assistant": Role.ASSISTANT}
_OBSERVATION_ROLES = ("tool", "function")
_FENCE = "```"


def _function(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def _code_of(message: Message) -> tuple[str, str | None]:
    """The prose and code of a code turn (the same reading as ``code_format.split_code``)."""
    if message.code is not None:
        return message.content, message.code
    start = message.content.find(_FENCE)
    if start == -1:
        return message.content, None
    body_start = message.content.find("\n", start)
    if body_start == -1:
        return message.content, None
    end = message.content.find(_FENCE, body_start)
    body = message.content[body_start + 1 : end if end != -1 else len(message.content)]
    return message.content[:start].strip(), body.rstrip()


OUTPUT_IMAGES_NOTE = "[The images of {name}'s output (call {call_id}), shown as its result:]"
"""The text before an observation's images in the ``user`` message that carries them."""


def to_openai(messages: list[Message], *, output_images: bool = False) -> list[dict[str, Any]]:
    """Write messages as OpenAI chat messages (see the module's notes).

    Args:
        messages: The conversation.
        output_images: Send observations' images too, each observation's in a ``user`` message after
            the ``tool`` messages (for a vision model; the images are checked already, see
            :mod:`workbench.prompt_images`).
    """
    out: list[dict[str, Any]] = []
    waiting: list[str] = []  # ids of calls not answered yet, in order
    pictures: list[dict[str, Any]] = []  # user messages with the images of the tool messages just written
    for message in messages:
        if message.role is Role.OBSERVATION:
            call_id = message.tool_call_id
            if call_id in waiting:
                waiting.remove(call_id)
            elif call_id is None:
                call_id = waiting.pop(0) if waiting else new_call_id()
            out.append({"role": "tool", "tool_call_id": call_id, "content": message.content})
            if output_images and message.images:
                note = OUTPUT_IMAGES_NOTE.format(name=message.name or "the tool", call_id=call_id)
                parts = [{"type": "text", "text": note}, *map(_image_part, message.images)]
                pictures.append({"role": "user", "content": parts})
            continue
        out += pictures
        pictures = []
        item: dict[str, Any] = {"role": message.role.value, "content": message.content}
        if message.role is Role.USER and message.images:
            item["content"] = [{"type": "text", "text": message.content}, *map(_image_part, message.images)]
        if message.role is Role.ASSISTANT:
            calls = [
                _function(call.id, call.name, json.dumps(call.arguments, ensure_ascii=False))
                for call in message.tool_calls
            ]
            calls += [_function(bad.id, bad.name or "unknown", bad.text) for bad in message.invalid_calls]
            if message.interpreter:
                prose, code = _code_of(message)
                if code is not None:
                    item["content"] = prose
                    arguments = json.dumps({"code": code}, ensure_ascii=False)
                    calls.append(_function(new_call_id(), INTERPRETER, arguments))
            if calls:
                item["tool_calls"] = calls
                item["content"] = item["content"] or None
                waiting = [call["id"] for call in calls]
        out.append(item)
    return out + pictures


def from_openai(messages: Any) -> list[Message]:
    """Read OpenAI chat messages into Workbench messages.

    Raises:
        TranscriptError: If the input is not a list of valid chat messages.
    """
    if not isinstance(messages, list):
        raise TranscriptError(f"The messages must be a JSON array, got {_kind(messages)}.")
    out: list[Message] = []
    names: dict[str, str] = {}  # call id -> tool name, for the observations
    for number, raw in enumerate(messages, 1):
        where = f"Message {number}"
        if not isinstance(raw, dict):
            raise TranscriptError(f"{where} must be a JSON object, got {_kind(raw)}.")
        role = raw.get("role")
        content, urls = _content(raw.get("content"), where)
        if urls and role != "user":
            raise TranscriptError(f"{where}: only user messages can hold images (image_url parts).")
        images = _images(urls, where)
        if role in _OBSERVATION_ROLES:
            call_id = raw.get("tool_call_id")
            if call_id is not None and not isinstance(call_id, str):
                raise TranscriptError(f"{where}: 'tool_call_id' must be a string.")
            name = raw.get("name") if isinstance(raw.get("name"), str) else names.get(call_id or "")
            out.append(Message(Role.OBSERVATION, content, name=name, tool_call_id=call_id))
            continue
        if not isinstance(role, str) or role not in _ROLES:
            valid = ", ".join([*_ROLES, *_OBSERVATION_ROLES])
            raise TranscriptError(f"{where} has an unknown role {role!r}; use one of: {valid}.")
        message = Message(_ROLES[role], content, images=images)
        if message.role is Role.ASSISTANT:
            _read_calls(message, raw.get("tool_calls"), where, names)
        elif raw.get("tool_calls"):
            raise TranscriptError(f"{where}: only assistant messages can have 'tool_calls'.")
        out.append(message)
    return out


def _read_calls(message: Message, raw_calls: Any, where: str, names: dict[str, str]) -> None:
    if raw_calls is None:
        return
    if not isinstance(raw_calls, list):
        raise TranscriptError(f"{where}: 'tool_calls' must be an array.")
    for raw in raw_calls:
        if not isinstance(raw, dict) or not isinstance(raw.get("function"), dict):
            raise TranscriptError(f'{where}: each tool call must be an object with a "function" object.')
        call_id = raw.get("id") or new_call_id()
        function = raw["function"]
        name = function.get("name")
        if not isinstance(call_id, str) or not isinstance(name, str) or not name.strip():
            raise TranscriptError(f"{where}: each tool call needs a string 'id' and a function 'name'.")
        names[call_id] = name
        arguments = function.get("arguments", "{}")
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments) if arguments.strip() else {}
            except json.JSONDecodeError as exc:
                error = f"The arguments are not valid JSON ({exc.msg}); write a JSON object."
                message.invalid_calls.append(InvalidCall(function["arguments"], error, name, call_id))
                continue
        if not isinstance(arguments, dict):
            raise TranscriptError(
                f"{where}: the arguments of the call to {name!r} must be a JSON object, got {_kind(arguments)}."
            )
        if name == INTERPRETER and set(arguments) == {"code"} and isinstance(arguments["code"], str):
            fenced = f"{_FENCE}python\n{arguments['code']}\n{_FENCE}"
            message.content = f"{message.content}\n\n{fenced}".strip()
            message.interpreter = True
            continue
        message.tool_calls.append(ToolCall(name, arguments, call_id))


def _image_part(image: bytes) -> dict[str, Any]:
    """An ``image_url`` content part holding the image as a base64 data URL (nothing to fetch)."""
    # The store keeps PNG; the Python API may pass JPEG bytes as they are.
    kind = "jpeg" if image.startswith(b"\xff\xd8\xff") else "png"
    url = f"data:image/{kind};base64," + base64.b64encode(image).decode("ascii")
    return {"type": "image_url", "image_url": {"url": url}}


def _images(urls: list[str], where: str) -> list[bytes]:
    """The images of a message's ``image_url`` parts, checked (data URLs only, nothing fetched).

    Raises:
        TranscriptError: For a URL that is not a base64 data URL or an image that is unusable.
    """
    from workbench.images import image_from_url

    try:
        return [image_from_url(url, f"{where}, image {n}") for n, url in enumerate(urls, 1)]
    except ImageInputError as exc:
        raise TranscriptError(str(exc)) from exc


def _content(content: Any, where: str) -> tuple[str, list[str]]:
    """The text of a message's content, and the URLs of its ``image_url`` parts.

    Raises:
        TranscriptError: For any other shape or part.
    """
    if content is None:
        return "", []
    if isinstance(content, str):
        return content, []
    if isinstance(content, list):
        texts: list[str] = []
        urls: list[str] = []
        for part in content:
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text" and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif kind == "image_url" and isinstance(part.get("image_url"), dict | str):
                url = part["image_url"].get("url") if isinstance(part["image_url"], dict) else part["image_url"]
                if not isinstance(url, str):
                    raise TranscriptError(f"{where}: an image_url part needs a string 'url'.")
                urls.append(url)
            else:
                raise TranscriptError(
                    f'{where}: content parts must be {{"type": "text", "text": "..."}} or {{"type": '
                    '"image_url", "image_url": {"url": "data:image/png;base64,..."}}; other parts (audio, '
                    "files) are not supported."
                )
        return "".join(texts), urls
    raise TranscriptError(
        f"{where}: 'content' must be a string, null or a list of text parts, got {_kind(content)}."
    )


def _kind(value: Any) -> str:
    names = {str: "a string", bool: "a boolean", int: "a number", float: "a number", list: "an array"}
    return (
        "null"
        if value is None
        else names.get(type(value), "an object" if isinstance(value, dict) else type(value).__name__)
    )
