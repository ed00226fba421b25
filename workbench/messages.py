"""Messages, tool calls and transcripts.

A conversation is a list of :class:`Message`. The roles follow ChatGLM3: ``system``, ``user``,
``assistant`` and ``observation`` (a tool's or the interpreter's result fed back to the model).
A transcript converts to and from JSON (``{"messages": [...]}``); transcripts written before the
typed fields existed (``metadata["stats"]``, ``["stopped"]``, ``["error"]``, ``["interpreter"]``,
``["code"]``, ``["invalid_tool_calls"]``, calls without ids) still load.

Structural facts are typed fields of :class:`Message`; ``metadata`` holds free extras only (a tool
result's ``arguments``, ``duration_s``, ``error_type``, ``full_length``, ``note``, ...).
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

from workbench.errors import TranscriptError
from workbench.execution_record import ExecutionRecord

INTERPRETER = "interpreter"
"""The name of the code interpreter's observations (and ChatGLM3's code-turn marker)."""

# Keys that older transcripts kept in ``metadata`` and that are typed fields now.
_LEGACY_KEYS = ("stats", "stopped", "error", "interpreter", "code", "invalid_tool_calls", "run")


def new_call_id() -> str:
    """A fresh tool-call id in OpenAI's shape: ``call_`` and 24 hex digits."""
    return "call_" + uuid.uuid4().hex[:24]


MAX_ID_CHARS = 64
"""A message id is 1 to this many characters (imported ids are kept when they fit)."""


def new_message_id() -> str:
    """A fresh message id: 32 hex digits."""
    return uuid.uuid4().hex


def valid_message_id(value: Any) -> bool:
    """Whether ``value`` can be a message id: a string of 1-64 printable characters, no spaces."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_ID_CHARS
        and value.isprintable()
        and not any(ch.isspace() for ch in value)
    )


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
    id: str = field(default_factory=new_call_id, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """Return the form the model writes and reads: ``{"name": ..., "arguments": {...}}`` (no id)."""
        return {"name": self.name, "arguments": self.arguments}


@dataclass
class InvalidCall:
    """A call the model wrote that could not be read.

    Attributes:
        text: What the model wrote for the call.
        error: What is wrong, addressed to the model (it has to fix its next call).
        name: The tool's name where it could still be made out, else None.
        id: Pairs the error observation that answers it (like :attr:`ToolCall.id`).
    """

    text: str
    error: str
    name: str | None = None
    id: str = field(default_factory=new_call_id, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> InvalidCall:
        """Rebuild from :meth:`to_dict` output (an id is made for old transcripts).

        Raises:
            TranscriptError: If the data is not an object.
        """
        if not isinstance(data, dict):
            raise TranscriptError("Each unreadable tool call must be an object with 'text' and 'error'.")
        name = data.get("name")
        call_id = data.get("id")
        return cls(
            str(data.get("text", "")),
            str(data.get("error", "")),
            name if isinstance(name, str) else None,
            call_id if isinstance(call_id, str) and call_id else new_call_id(),
        )


@dataclass
class Message:
    """One message of a conversation.

    Attributes:
        role: Who wrote it.
        content: The text.
        name: For an observation, the tool (or ``interpreter``) that produced it.
        tool_calls: For an assistant message, the calls it makes.
        metadata: Free-form extras (a tool result's ``arguments``, ``duration_s``, ``error_type``...).
        error: For an observation, whether the call failed.
        images: PNG bytes attached to the message (kernel plots, uploads).
        tool_call_id: For an observation, the id of the call it answers (None: paired by position).
        stopped: For an assistant message, the user stopped it before its end.
        failure: For an assistant message, why generating it failed (the error's text), else None.
        stats: Generation statistics (``GenerationStats.to_dict()``), or None.
        interpreter: For an assistant message, it is a code turn (code to run).
        code: For a code turn whose code is kept apart from the prose (ChatGLM3), the code.
        invalid_calls: For an assistant message, the calls it wrote that could not be read.
        execution: For an interpreter observation, everything the run showed.
        id: Its id within its conversation (uuid4 hex; imported ones keep theirs). Not compared, and
            not part of :meth:`to_dict` (a conversation writes it beside the parent's: see
            :meth:`workbench.conversation.Conversation.to_dict`).
    """

    role: Role
    content: str = ""
    name: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    error: bool = False
    images: list[bytes] = field(default_factory=list)
    tool_call_id: str | None = None
    stopped: bool = False
    failure: str | None = None
    stats: dict[str, Any] | None = None
    interpreter: bool = False
    code: str | None = None
    invalid_calls: list[InvalidCall] = field(default_factory=list)
    execution: ExecutionRecord | None = None
    id: str = field(default_factory=new_message_id, compare=False)

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
            out["tool_calls"] = [{"id": call.id, **call.to_dict()} for call in self.tool_calls]
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        if self.stopped:
            out["stopped"] = True
        if self.failure is not None:
            out["failure"] = self.failure
        if self.stats is not None:
            out["stats"] = self.stats
        if self.interpreter:
            out["interpreter"] = True
        if self.code is not None:
            out["code"] = self.code
        if self.invalid_calls:
            out["invalid_calls"] = [call.to_dict() for call in self.invalid_calls]
        if self.execution is not None:
            out["execution"] = self.execution.to_dict(include_images=include_images)
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
        metadata = dict(metadata)
        legacy = {key: metadata.pop(key) for key in _LEGACY_KEYS if key in metadata}
        raw_calls = data.get("tool_calls") or []
        raw_images = data.get("images") or []
        raw_invalid = data.get("invalid_calls", legacy.get("invalid_tool_calls")) or []
        if not all(isinstance(raw, list) for raw in (raw_calls, raw_images, raw_invalid)):
            raise TranscriptError("A message's 'tool_calls', 'invalid_calls' and 'images' must be lists.")
        try:
            images = [base64.b64decode(img, validate=True) for img in raw_images]
        except (binascii.Error, ValueError, TypeError) as exc:
            raise TranscriptError(f"An image is not valid base64: {exc}.") from None
        stats = data.get("stats", legacy.get("stats"))
        code = data.get("code", legacy.get("code"))
        failure = data.get("failure", legacy.get("error"))
        tool_call_id = data.get("tool_call_id")
        if stats is not None and not isinstance(stats, dict):
            raise TranscriptError("A message's 'stats' must be an object.")
        for key, value in (("code", code), ("failure", failure), ("tool_call_id", tool_call_id)):
            if value is not None and not isinstance(value, str):
                raise TranscriptError(f"A message's {key!r} must be a string.")
        raw_execution = data.get("execution")
        raw_id = data.get("id")
        if raw_id is not None and not valid_message_id(raw_id):
            raise TranscriptError("A message's 'id' must be a string of 1-64 printable characters.")
        return cls(
            role=role,
            content=content,
            name=name,
            tool_calls=[_call_from_dict(raw) for raw in raw_calls],
            metadata=metadata,
            error=bool(data.get("error", False)),
            images=images,
            tool_call_id=tool_call_id,
            stopped=bool(data.get("stopped", legacy.get("stopped", False))),
            failure=failure,
            stats=stats,
            interpreter=bool(data.get("interpreter", legacy.get("interpreter", False))),
            code=code,
            invalid_calls=[InvalidCall.from_dict(raw) for raw in raw_invalid],
            execution=None if raw_execution is None else ExecutionRecord.from_dict(raw_execution),
            id=raw_id if raw_id is not None else new_message_id(),
        )


def _call_from_dict(raw: Any) -> ToolCall:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise TranscriptError("Each tool call needs a string 'name'.")
    args = raw.get("arguments") or {}
    if not isinstance(args, dict):
        raise TranscriptError(f"Arguments of tool call {raw['name']!r} must be an object.")
    call_id = raw.get("id")
    if call_id is not None and not isinstance(call_id, str):
        raise TranscriptError(f"The id of tool call {raw['name']!r} must be a string.")
    return ToolCall(raw["name"], args, call_id or new_call_id())


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
