r"""The shapes of stored messages, as pydantic models, and the field-by-field check made with them.

Every message read from an import or from the database is checked against :class:`MessageShape`
before it becomes a :class:`~workbench.messages.Message`. A field of the wrong type is dropped,
so it is shown as missing, never as a crash on a page (``stats.new_tokens: "many"``,
``metadata.duration_s: "slow"``); what was dropped is reported as :class:`Problem` lines. Fields that
carry the conversation itself (the role, the text, tool calls, images) are *fatal* on import: the
import is refused, naming the message and the field. Reading the database tolerates everything but
an unknown role. Strings holding lone surrogates (``"\ud800"``, not text) are found by
:func:`find_surrogate`: a database cannot store them.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError


def _base64(value: str) -> str:
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"not valid base64 ({exc})") from None
    return value


Base64 = Annotated[str, AfterValidator(_base64)]
Count = Annotated[int, Field(ge=0)]
Seconds = Annotated[float, Field(ge=0)]


class _Shape(BaseModel):
    """Strict types (no ``"5"`` read as 5, no ``true`` as 1); unknown keys are kept as they are."""

    model_config = ConfigDict(strict=True, extra="allow")


class StatsShape(_Shape):
    """``GenerationStats.to_dict()``."""

    prompt_tokens: Count = 0
    new_tokens: Count = 0
    seconds: Seconds = 0.0
    first_token_s: Seconds | None = None
    waited_s: Seconds = 0.0
    finish_reason: str = "eos"
    tokens_per_s: Seconds = 0.0


class ToolCallShape(_Shape):
    """A call: its name is required (the call means nothing without it)."""

    name: str
    arguments: dict[str, Any] | None = None
    id: str | None = None


class InvalidCallShape(_Shape):
    """A call the model wrote that could not be read."""

    text: str = ""
    error: str = ""
    name: str | None = None
    id: str | None = None


class OutputShape(_Shape):
    """One output of a code run."""

    kind: str
    name: str = ""
    text: str = ""
    html: str | None = None
    png: Base64 | None = None
    png_omitted: bool = False


class ExecutionShape(_Shape):
    """What a code run showed."""

    outputs: list[OutputShape] = Field(default_factory=list)
    error_name: str | None = None
    error_value: str = ""
    timed_out: bool = False
    restarted: bool = False
    note: str = ""
    duration: Seconds = 0.0
    execution_count: int | None = None


class MetadataShape(_Shape):
    """The free extras: the keys Workbench writes and reads are typed; others are kept as they are."""

    arguments: dict[str, Any] = Field(default_factory=dict)
    duration_s: Seconds = 0.0
    error_type: str = ""
    full_length: Count = 0
    note: str = ""
    call_text: str = ""
    tool: str = ""
    not_run: bool = False
    # Older transcripts kept these here (``Message.from_dict`` moves them to their fields).
    stats: StatsShape | None = None
    stopped: bool = False
    error: str | None = None
    interpreter: bool = False
    code: str | None = None
    invalid_tool_calls: list[InvalidCallShape] = Field(default_factory=list)


class MessageShape(_Shape):
    """``Message.to_dict()``: every field but the role may be missing."""

    role: str  # which roles exist is Message.from_dict's to say (its message names them)
    content: str = ""
    name: str | None = None
    tool_calls: list[ToolCallShape] = Field(default_factory=list)
    tool_call_id: str | None = None
    stopped: bool = False
    failure: str | None = None
    stats: StatsShape | None = None
    interpreter: bool = False
    code: str | None = None
    invalid_calls: list[InvalidCallShape] = Field(default_factory=list)
    execution: ExecutionShape | None = None
    metadata: MetadataShape = Field(default_factory=MetadataShape)
    error: bool = False
    images: list[Base64] = Field(default_factory=list)
    image_count: Count = 0


IMPORT_FATAL = frozenset({"role", "content", "tool_calls", "images"})
"""On import, a problem in these fields refuses the file (the conversation would not be what it was)."""
READ_FATAL = frozenset({"role"})
"""Reading the database gives up only on a message without a known role."""
_MAX_DROPS = 200


@dataclass(frozen=True)
class Problem:
    """A field that is not what its shape says.

    Attributes:
        field: Its path, e.g. ``stats.new_tokens`` or ``tool_calls[0].name``.
        reason: What is wrong with it, for people.
        fatal: The message cannot be kept without it (``IMPORT_FATAL`` / ``READ_FATAL``).
    """

    field: str
    reason: str
    fatal: bool

    def __str__(self) -> str:
        return f"field {self.field}: {self.reason}"


def check_message(raw: dict[str, Any], fatal: frozenset[str]) -> tuple[dict[str, Any], list[Problem]]:
    """Check a message's JSON form field by field; return it without its wrong fields, and the problems.

    A wrong optional field is dropped (the message then shows it as missing). A wrong fatal field
    (see ``fatal``) is reported with ``fatal=True``; the caller refuses or gives up.
    """
    data = dict(raw)
    problems: list[Problem] = []
    for _ in range(_MAX_DROPS):
        try:
            MessageShape.model_validate(data)
            return data, problems
        except ValidationError as exc:
            error = exc.errors(include_url=False)[0]
        loc = tuple(error["loc"])
        if error["type"] == "missing" and len(loc) > 1:  # a required part: drop the whole sub-object
            already = bool(problems) and problems[-1].field == _path(loc)  # it was just dropped as wrong
            loc = loc[:-1]
            if already:
                data = _without(data, loc)
                continue
        problem = Problem(_path(loc), _reason(error), fatal=str(loc[0]) in fatal)
        problems.append(problem)
        if problem.fatal:
            return data, problems
        data = _without(data, loc)
    problems.append(Problem("(message)", "too many wrong fields", fatal=True))
    return data, problems


def find_surrogate(value: Any, path: str = "") -> str | None:
    r"""Return the path of the first string (or key) holding a lone surrogate such as ``"\ud800"``."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if _has_surrogate(item):
                return where or "(text)"
        elif isinstance(item, dict):
            for key, inner in reversed(list(item.items())):
                name = f"{where}.{key}" if where else str(key)
                if isinstance(key, str) and _has_surrogate(key):
                    return name
                stack.append((inner, name))
        elif isinstance(item, list):
            stack.extend((inner, f"{where}[{i}]") for i, inner in reversed(list(enumerate(item))))
    return None


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _path(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _reason(error: Any) -> str:
    value = error.get("input")
    shown = (
        repr(value) if isinstance(value, str | int | float | bool) or value is None else type(value).__name__
    )
    if error["type"] == "missing":
        return "a required part is missing"
    return f"{error['msg'][0].lower()}{error['msg'][1:]}, got {shown[:60]}"


def _without(data: dict[str, Any], loc: tuple[Any, ...]) -> dict[str, Any]:
    """Return a copy of ``data`` without the item at ``loc`` (copying only the containers on the way)."""
    top = dict(data)
    parent: Any = top
    for part in loc[:-1]:
        child = parent[part]
        child = dict(child) if isinstance(child, dict) else list(child)
        parent[part] = child
        parent = child
    last = loc[-1]
    if isinstance(parent, dict):
        parent.pop(last, None)
    elif isinstance(parent, list) and isinstance(last, int) and 0 <= last < len(parent):
        del parent[last]
    return top
