"""Messages, tool calls and transcripts.

A conversation is a list of :class:`Message`. The roles follow ChatGLM3: ``system``, ``user``,
``assistant`` and ``observation`` (a tool's or the interpreter's result fed back to the model).
A transcript converts to and from JSON (``{"messages": [...]}``).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from workbench.errors import TranscriptError


class Role(str, Enum):
    """Who wrote a message."""

    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    OBSERVATION = "observation"


@dataclass
class ToolCall:
    """One function call made by the model.

    Attributes:
        name: The tool's name.
        arguments: The arguments, a JSON object.
    """

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form ``{"name": ..., "arguments": {...}}``."""
        return {"name": self.name, "arguments": self.arguments}


@dataclass
class Message:
    """One message of a conversation.

    Attributes:
        role: Who wrote it.
        content: The text.
        name: For an observation, the tool (or ``interpreter``) that produced it.
        tool_calls: For an assistant message, the calls it makes.
        metadata: Free-form extras, such as ``{"interpreter": True}`` for a code turn or
            ``{"stopped": True}`` for an answer the user stopped, or generation stats.
        error: For an observation, whether the call failed.
        images: PNG bytes attached to the message (kernel plots, uploads).
    """

    role: Role
    content: str = ""
    name: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    error: bool = False
    images: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.role = Role(self.role)

    def to_dict(self, *, include_images: bool = True) -> dict[str, Any]:
        """Return the JSON form; empty optional fields are left out.

        Args:
            include_images: Embed images as base64 (``images``); otherwise only ``image_count``.
        """
        out: dict[str, Any] = {"role": self.role.value, "content": self.content}
        if self.name is not None:
            out["name"] = self.name
        if self.tool_calls:
            out["tool_calls"] = [call.to_dict() for call in self.tool_calls]
        if self.metadata:
            out["metadata"] = self.metadata
        if self.error:
            out["error"] = True
        if self.images:
            if include_images:
                out["images"] = [base64.b64encode(img).decode("ascii") for img in self.images]
            else:
                out["image_count"] = len(self.images)
        return out

    @classmethod
    def from_dict(cls, data: Any) -> Message:
        """Build a message from its JSON form.

        Raises:
            TranscriptError: If the data is not a valid message.
        """
        if not isinstance(data, dict):
            raise TranscriptError(f"A message must be a JSON object, got {type(data).__name__}.")
        try:
            role = Role(data.get("role"))
        except ValueError:
            valid = ", ".join(r.value for r in Role)
            raise TranscriptError(f"Unknown role {data.get('role')!r}; use one of: {valid}.") from None
        content = data.get("content", "")
        if not isinstance(content, str):
            raise TranscriptError("A message's 'content' must be a string.")
        name = data.get("name")
        if name is not None and not isinstance(name, str):
            raise TranscriptError("A message's 'name' must be a string.")
        metadata = data.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise TranscriptError("A message's 'metadata' must be an object.")
        raw_calls = data.get("tool_calls") or []
        raw_images = data.get("images") or []
        if not isinstance(raw_calls, list) or not isinstance(raw_images, list):
            raise TranscriptError("A message's 'tool_calls' and 'images' must be lists.")
        calls = []
        for raw in raw_calls:
            if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
                raise TranscriptError("Each tool call needs a string 'name'.")
            args = raw.get("arguments") or {}
            if not isinstance(args, dict):
                raise TranscriptError(f"Arguments of tool call {raw['name']!r} must be an object.")
            calls.append(ToolCall(raw["name"], args))
        try:
            images = [base64.b64decode(img, validate=True) for img in raw_images]
        except (ValueError, TypeError) as exc:
            raise TranscriptError(f"An image is not valid base64: {exc}.") from None
        return cls(
            role=role,
            content=content,
            name=name,
            tool_calls=calls,
            metadata=dict(metadata),
            error=bool(data.get("error", False)),
            images=images,
        )


def transcript_to_json(
    messages: list[Message], *, include_images: bool = True, indent: int | None = 2
) -> str:
    """Serialise a conversation as ``{"messages": [...]}``."""
    payload = {"messages": [m.to_dict(include_images=include_images) for m in messages]}
    return json.dumps(payload, indent=indent, ensure_ascii=False)


def transcript_from_json(text: str) -> list[Message]:
    """Parse a transcript written by :func:`transcript_to_json`.

    Raises:
        TranscriptError: If the text is not valid JSON or not a transcript.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TranscriptError(f"The transcript is not valid JSON ({exc}); check the file.") from None
    if isinstance(data, dict):
        data = data.get("messages")
    if not isinstance(data, list):
        raise TranscriptError('A transcript must be {"messages": [...]} or a list of messages.')
    return [Message.from_dict(item) for item in data]
