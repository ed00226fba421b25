"""Forcing a call on a remote server, whichever way it takes (see :mod:`remote_profile`).

A forced call is what the tool loop asks for under ``tool_choice: required`` (the prefix ends in the
call opener) and what the code loop asks for under ``--force-code`` (the prefix opens a python fence:
a call of the ``interpreter`` tool). :class:`ForcedCall` tries the server's ways in order:

1. ``tools`` + ``tool_choice`` (the one named function, else ``required``);
2. ``response_format: json_schema`` with the call's schema, the tools in the system prompt;
3. ``response_format: json_object`` with the schema in the system prompt (and in ``schema``, which
   llama.cpp's servers read);
4. plain text in the dialect's call format (``<tool_call>`` JSON, or a python block), read back.

A step the server refuses (a 4xx or 5xx naming what it sent) or answers without a usable call (no
call: ``tool_choice`` ignored; arguments that are not a JSON object) is left for the rest of the
session, and the next one is tried at once. Arguments sent as a JSON string holding an object are
decoded. Nothing that is not an object reaches a tool: at the last step, what the model wrote is
passed on as it is, and the dialect turns it into an unreadable call the model is told about. An answer
cut by max new tokens is passed on the same way at once (the server is not at fault, and the next step
would be cut too), and the loop notes the cut.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Protocol

import jsonschema
import openai

from workbench.dialects.calls import CALL_CLOSE_TAG, CALL_OPEN_TAG
from workbench.dialects.hermes import compact_json
from workbench.messages import INTERPRETER
from workbench.models.remote_profile import ServerProfile, step_refused

#: The prefix the code loop forces a code reply with (``workbench.modes.code_format.CODE_FENCE``).
CODE_OPENER = "```python\n"

INTERPRETER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": INTERPRETER,
        "description": "Run Python code in a Jupyter kernel and see its output.",
        "parameters": {
            "type": "object",
            "properties": {"code": {"type": "string", "description": "The Python code to run."}},
            "required": ["code"],
        },
    },
}

_CALL_BREAK = f"\n{CALL_CLOSE_TAG}\n{CALL_OPEN_TAG}\n"
_TAGGED = re.compile(re.escape(CALL_OPEN_TAG) + r"\s*(.*?)\s*(?:" + re.escape(CALL_CLOSE_TAG) + r"|\Z)", re.S)
_FENCED = re.compile(r"```[ \t]*(?:python3?|py)?[ \t]*\n(.*?)(?:```|\Z)", re.S | re.I)

Call = tuple[str, Any]


class ForcedHost(Protocol):
    """What the chain uses of an exchange (see :class:`~workbench.models.remote_calls.RemoteExchange`)."""

    profile: ServerProfile

    @property
    def cancelled(self) -> bool:
        """Whether the consumer stopped the generation."""
        ...

    def send(self, messages: list[dict[str, Any]], **kwargs: Any) -> Any:
        """Stream one chat completion without passing its text on; return the answer (text, calls)."""
        ...

    def openai_messages(self) -> list[dict[str, Any]]:
        """The conversation as OpenAI chat messages."""
        ...

    def text_messages(self, tools: list[dict[str, Any]], note: str = "") -> list[dict[str, Any]]:
        """The conversation with the tools (and ``note``) in the system prompt, calls and results as text."""
        ...

    def emit(self, text: str) -> None:
        """Pass text on to the stream."""
        ...


@dataclass(frozen=True)
class ForcedCall:
    """One forced call to get from the server.

    Attributes:
        tools: The tools offered (OpenAI function schemas).
        schema: The JSON schema of one call (``{"name": ..., "arguments": ...}``).
        code: The call is the code loop's forced code reply (one ``interpreter`` call).
        json_only: Not a call: an answer in JSON valid against ``schema`` (``response_format`` steps only).
    """

    tools: list[dict[str, Any]]
    schema: dict[str, Any]
    code: bool = False
    json_only: bool = False

    @classmethod
    def for_code(cls) -> ForcedCall:
        """The forced code reply: one call of the ``interpreter`` tool."""
        schema = {
            "type": "object",
            "properties": {
                "name": {"const": INTERPRETER},
                "arguments": INTERPRETER_TOOL["function"]["parameters"],
            },
            "required": ["name", "arguments"],
        }
        return cls([INTERPRETER_TOOL], schema, code=True)

    @classmethod
    def for_json(cls, schema: dict[str, Any]) -> ForcedCall:
        """An answer constrained to a JSON schema (no tools)."""
        return cls([], schema, json_only=True)

    @property
    def names(self) -> list[str]:
        """The names of the tools that may be called."""
        return [str(tool.get("function", tool).get("name")) for tool in self.tools]

    def run(self, host: ForcedHost) -> None:
        """Get the call down the chain and write it to the stream (the text the prefix expects)."""
        profile = host.profile
        for step in profile.steps(calls=not self.json_only):
            last = step == "text"
            try:
                answer = self._ask(host, step)
            except openai.APIStatusError as exc:
                if host.cancelled or last or not step_refused(exc, step):
                    raise
                profile.failed(step)
                continue
            if host.cancelled:
                return
            calls = self._read(step, answer)
            if calls is not None:
                profile.worked(step)
                host.emit(self._written(calls))
                return
            if last or answer.finish_reason == "length":
                # Nothing better left, or the answer was cut by max new tokens (no fault of the server's):
                # what the model wrote, for the dialect to report.
                host.emit(self._raw(_written_text(answer)))
                return
            profile.failed(step)

    # --- one step ------------------------------------------------------------------------------
    def _ask(self, host: ForcedHost, step: str) -> Any:
        if step == "tools":
            only = self.names[0] if len(self.names) == 1 else None
            choice: Any = {"type": "function", "function": {"name": only}} if only else "required"
            return host.send(host.openai_messages(), tools=self.tools, tool_choice=choice)
        note = "Reply with one JSON object and nothing else, following this JSON schema:\n" + json.dumps(
            self.schema, ensure_ascii=False
        )
        if step == "json_schema":
            response_format: dict[str, Any] = {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": self.schema, "strict": True},
            }
            return host.send(host.text_messages(self.tools), response_format=response_format)
        if step == "json_object":
            response_format = {"type": "json_object", "schema": self.schema}
            return host.send(host.text_messages(self.tools, note), response_format=response_format)
        return host.send(host.text_messages(self.tools, note if self.json_only else ""))

    def _read(self, step: str, answer: Any) -> list[Call] | None:
        """The calls of an answer if every one is usable (a known name, arguments an object), else None."""
        if step == "tools":
            raw = [(name, arguments) for name, arguments in (answer.calls[i] for i in sorted(answer.calls))]
            calls = [_call(name, arguments) for name, arguments in raw]
            return self._checked(calls) if calls else None
        text = answer.text
        if self.json_only:
            return _valid_json(text, self.schema)
        if step == "text":
            if self.code:
                fenced = _FENCED.search(text)
                if fenced is not None and CALL_OPEN_TAG not in text:
                    return [(INTERPRETER, {"code": fenced.group(1).rstrip()})]
            tagged = _TAGGED.search(text)
            text = tagged.group(1) if tagged is not None else text
        return self._checked([_call_from_json(text)])

    def _checked(self, calls: list[Call | None]) -> list[Call] | None:
        good = [call for call in calls if call is not None and call[0] in self.names]
        if len(good) != len(calls):
            return None
        if self.code and not all(
            isinstance(args.get("code"), str) and args["code"].strip() for _, args in good
        ):
            return None
        return good

    # --- what goes to the stream ---------------------------------------------------------------
    def _written(self, calls: list[Call]) -> str:
        if self.json_only:
            return compact_json(calls[0][1])
        if self.code:
            return str(calls[0][1]["code"])
        return call_text(calls)

    def _raw(self, text: str) -> str:
        tagged = _TAGGED.search(text)
        if tagged is not None:
            return tagged.group(1)
        if self.code:
            fenced = _FENCED.search(text)
            return fenced.group(1).rstrip() if fenced is not None else text
        return text.strip()


def _written_text(answer: Any) -> str:
    """What the model wrote: its text, or its first call as JSON text (arguments as they came)."""
    if answer.text.strip() or not answer.calls:
        return str(answer.text)
    name, arguments = answer.calls[min(answer.calls)]
    return f'{{"name": {json.dumps(name)}, "arguments": {arguments or "{}"}'


def decode_arguments(raw: Any) -> dict[str, Any] | None:
    """A call's arguments as an object: an object as is, a JSON string holding one decoded; else None."""
    value = raw
    for _ in range(3):  # an object, or a string holding one (twice encoded at most)
        if isinstance(value, dict):
            return value
        if not isinstance(value, str):
            return None
        if not value.strip():
            return {}
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return None
    return None


def _valid_json(text: str, schema: dict[str, Any]) -> list[Call] | None:
    """JSON text valid against ``schema`` (as a one-item list, the shape of calls), else None."""
    try:
        data = json.loads(text.strip())
        jsonschema.validate(data, schema)
    except (json.JSONDecodeError, jsonschema.ValidationError, jsonschema.SchemaError):
        return None
    return [("", data)]


def _call(name: str, arguments: Any) -> Call | None:
    decoded = decode_arguments(arguments)
    return (name.strip(), decoded) if decoded is not None and name.strip() else None


def _call_from_json(text: str) -> Call | None:
    try:
        data = json.loads(text.strip())
    except json.JSONDecodeError:
        return None
    if isinstance(data, dict) and isinstance(data.get("function"), dict):
        data = data["function"]
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        return None
    return _call(data["name"], data.get("arguments", data.get("parameters", {})))


def call_text(calls: list[tuple[str, Any]]) -> str:
    """Calls written as the JSON that follows a forced call opener (several separated by close/open tags)."""
    return _CALL_BREAK.join(compact_json({"name": name, "arguments": arguments}) for name, arguments in calls)
