"""Reading and checking the JSON body of a completion request; every mistake is a 400 naming the field.

Messages are read by :func:`workbench.openai_messages.from_openai`, sampling values are checked by
:class:`~workbench.models.generation.SamplingSettings`, tool parameter schemas and response schemas by
jsonschema: one check for each thing, shared with the rest of the workbench.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from workbench.errors import SettingsError, TranscriptError
from workbench.messages import Message
from workbench.models.generation import SamplingSettings
from workbench.openai_messages import from_openai
from workbench.server.errors import bad_request

#: ``tool_choice`` values besides a named function.
TOOL_CHOICES = ("none", "auto", "required")
#: OpenAI's limits: stop sequences, tools, and the pattern of a function's name.
MAX_STOP_STRINGS = 4
MAX_STOP_CHARS = 256
MAX_TOOLS = 128
TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
#: Messages per request (more cannot fit the contexts served here; prompt building grows with them).
MAX_MESSAGES = 2048


@dataclass
class CompletionParams:
    """What a request asks, checked.

    Attributes:
        model: The model the client named.
        stream: Answer as server-sent events.
        include_usage: Streamed answers end with a usage chunk.
        settings: Sampling settings (the model's defaults with the request's values).
        stop: Strings that end the answer (not included in it).
        messages: The conversation (chat completions).
        prompt: The raw prompt (text completions).
        tools: OpenAI tool schemas, or None.
        tool_choice: ``none``, ``auto``, ``required`` or the name of one function.
        json_schema: The schema the answer must follow (``response_format``), or None.
    """

    model: str
    stream: bool = False
    include_usage: bool = False
    settings: SamplingSettings = field(default_factory=SamplingSettings)
    stop: tuple[str, ...] = ()
    messages: list[Message] = field(default_factory=list)
    prompt: str = ""
    tools: list[dict[str, Any]] | None = None
    tool_choice: str = "auto"
    json_schema: dict[str, Any] | None = None

    @property
    def forced_tool(self) -> str | None:
        """The function the answer must call, if ``tool_choice`` names one."""
        return None if self.tool_choice in TOOL_CHOICES else self.tool_choice


def read_chat_request(body: Any, defaults: SamplingSettings) -> CompletionParams:
    """Check a ``/v1/chat/completions`` body.

    Raises:
        ApiError: 400, naming the field at fault.
    """
    params = _read_common(body, defaults)
    if "messages" not in body:
        raise bad_request("'messages' is required: a list of chat messages.", "messages")
    if isinstance(body["messages"], list) and len(body["messages"]) > MAX_MESSAGES:
        raise bad_request(
            f"'messages' holds {len(body['messages'])} messages, over the limit of {MAX_MESSAGES}; "
            "send a shorter conversation.",
            "messages",
        )
    try:
        params.messages = from_openai(body["messages"])
    except TranscriptError as exc:
        raise bad_request(str(exc), "messages") from exc
    if not params.messages:
        raise bad_request("'messages' is empty; send at least one message.", "messages")
    params.tools = _read_tools(body.get("tools"))
    params.tool_choice = _read_tool_choice(body.get("tool_choice"), params.tools)
    if params.tool_choice == "none":
        params.tools = None
    params.json_schema = _read_response_format(body.get("response_format"))
    return params


def read_text_request(body: Any, defaults: SamplingSettings) -> CompletionParams:
    """Check a ``/v1/completions`` body (one raw prompt).

    Raises:
        ApiError: 400, naming the field at fault.
    """
    params = _read_common(body, defaults)
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1:
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise bad_request("'prompt' must be a string (one prompt per request).", "prompt")
    if not prompt:
        raise bad_request("'prompt' is empty; send the text to continue.", "prompt")
    unsupported = {
        "echo": body.get("echo") in (None, False),
        "suffix": body.get("suffix") in (None, ""),
        "logprobs": body.get("logprobs") is None,
        "best_of": body.get("best_of") is None or _is_int(body.get("best_of"), 1),
    }
    for name, fine in unsupported.items():
        if not fine:
            raise bad_request(f"'{name}' is not supported by this server; leave it out.", name)
    params.prompt = prompt
    return params


def _read_common(body: Any, defaults: SamplingSettings) -> CompletionParams:
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("'model' is required: the id of a model from GET /v1/models.", "model")
    n = body.get("n")
    if n is not None and not _is_int(n, 1):
        raise bad_request("Only n = 1 is supported: send one request per answer.", "n")
    for name in ("logprobs", "top_logprobs", "logit_bias"):
        if body.get(name) not in (None, False, 0, {}):
            raise bad_request(f"'{name}' is not supported by this server; leave it out.", name)
    for name in ("frequency_penalty", "presence_penalty"):
        value = body.get(name)
        # Accepted and ignored (documented): the engines here only know a repetition penalty.
        if value is not None and (not _is_number(value) or not -2 <= value <= 2):
            raise bad_request(f"'{name}' must be a number between -2 and 2.", name)
    stream = body.get("stream", False)
    if not isinstance(stream, bool) and stream is not None:
        raise bad_request("'stream' must be true or false.", "stream")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise bad_request(
            "'stream_options' must be an object such as {\"include_usage\": true}.", "stream_options"
        )
    include_usage = (options or {}).get("include_usage")
    if include_usage is not None and not isinstance(include_usage, bool):
        raise bad_request("'stream_options.include_usage' must be true or false.", "stream_options")
    return CompletionParams(
        model=model,
        stream=bool(stream),
        include_usage=bool(stream) and bool(include_usage),
        settings=_read_settings(body, defaults),
        stop=_read_stop(body.get("stop")),
    )


def _read_settings(body: dict[str, Any], defaults: SamplingSettings) -> SamplingSettings:
    max_tokens = body.get("max_completion_tokens")
    if max_tokens is None:
        max_tokens = body.get("max_tokens")
    values = {
        "temperature": body.get("temperature"),
        "top_p": body.get("top_p"),
        "max_new_tokens": max_tokens,
        "seed": body.get("seed"),
        "repetition_penalty": body.get("repetition_penalty"),  # an extension vLLM also accepts
    }
    seed = body.get("seed")
    if type(seed) is int:
        if not -(2**63) <= seed < 2**63:
            raise bad_request("'seed' must be a whole number that fits in 64 bits.", "seed")
        values["seed"] = seed % 2**32  # what every engine takes (llama.cpp's seed is 32 bits)
    penalty: Any = body.get("repetition_penalty")
    if _is_number(penalty) and not 0.1 <= penalty <= 2:  # a tiny one overflows the logits to inf
        raise bad_request(
            "'repetition_penalty' must be between 0.1 and 2 (1 means none).", "repetition_penalty"
        )
    try:
        return defaults.with_(**values)
    except SettingsError as exc:
        name = str(exc).split(" ", 1)[0]
        param = {"max_new_tokens": "max_tokens"}.get(name, name)
        message = str(exc).replace("max_new_tokens", "max_tokens")
        raise bad_request(message, param) from exc


def _read_stop(stop: Any) -> tuple[str, ...]:
    if stop is None:
        return ()
    if isinstance(stop, str):
        stop = [stop]
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        raise bad_request("'stop' must be a string or a list of strings.", "stop")
    if len(stop) > MAX_STOP_STRINGS:
        raise bad_request(f"'stop' may hold at most {MAX_STOP_STRINGS} strings.", "stop")
    if any(len(s) > MAX_STOP_CHARS for s in stop):
        raise bad_request(f"Each 'stop' string may be at most {MAX_STOP_CHARS} characters long.", "stop")
    return tuple(s for s in stop if s)


def _read_tools(tools: Any) -> list[dict[str, Any]] | None:
    if tools is None:
        return None
    if not isinstance(tools, list):
        raise bad_request('\'tools\' must be a list of {"type": "function", "function": {...}}.', "tools")
    if len(tools) > MAX_TOOLS:
        raise bad_request(f"'tools' holds {len(tools)} tools, over the limit of {MAX_TOOLS}.", "tools")
    seen: set[str] = set()
    out = []
    for number, tool in enumerate(tools):
        where = f"tools[{number}]"
        if not isinstance(tool, dict) or tool.get("type", "function") != "function":
            raise bad_request(f'{where} must be {{"type": "function", "function": {{...}}}}.', "tools")
        function = tool.get("function")
        if (
            not isinstance(function, dict)
            or not isinstance(function.get("name"), str)
            or not function["name"]
        ):
            raise bad_request(f"{where}.function needs a 'name'.", "tools")
        if not TOOL_NAME.fullmatch(function["name"]):
            raise bad_request(
                f"{where}.function.name {function['name'][:80]!r} is not a valid name: use 1 to 64 letters, "
                "digits, '_' or '-'.",
                "tools",
            )
        if function["name"] in seen:
            raise bad_request(f"Two tools are named {function['name']!r}; names must be unique.", "tools")
        seen.add(function["name"])
        parameters = function.get("parameters", {"type": "object", "properties": {}})
        if not isinstance(parameters, dict):
            raise bad_request(f"{where}.function.parameters must be a JSON schema object.", "tools")
        _check_schema(parameters, f"{where}.function.parameters", "tools")
        out.append({"type": "function", "function": {**function, "parameters": parameters}})
    return out or None


def _read_tool_choice(choice: Any, tools: list[dict[str, Any]] | None) -> str:
    names = [tool["function"]["name"] for tool in tools or []]
    if choice is None:
        return "auto"
    if isinstance(choice, str):
        if choice not in TOOL_CHOICES:
            raise bad_request(
                f"'tool_choice' must be one of {', '.join(TOOL_CHOICES)} or a function.", "tool_choice"
            )
        if choice == "required" and not names:
            raise bad_request("'tool_choice' is 'required' but no 'tools' were sent.", "tool_choice")
        return choice
    function = choice.get("function") if isinstance(choice, dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(name, str):
        raise bad_request(
            '\'tool_choice\' must be none, auto, required or {"type": "function", "function": {"name": ...}}.',
            "tool_choice",
        )
    if name not in names:
        raise bad_request(f"'tool_choice' names {name!r}, which is not in 'tools'.", "tool_choice")
    return name


def _read_response_format(response_format: Any) -> dict[str, Any] | None:
    if response_format is None:
        return None
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "object"}
    if kind != "json_schema":
        raise bad_request(
            "'response_format.type' must be text, json_object or json_schema.", "response_format"
        )
    spec = response_format.get("json_schema")
    schema = spec.get("schema") if isinstance(spec, dict) else None
    if not isinstance(schema, dict):
        raise bad_request(
            "'response_format.json_schema.schema' must be a JSON schema object.", "response_format"
        )
    _check_schema(schema, "response_format.json_schema.schema", "response_format")
    return schema


def _check_schema(schema: dict[str, Any], where: str, param: str) -> None:
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        at = "/".join(str(p) for p in exc.path) or "the top"
        raise bad_request(f"{where} is not a valid JSON schema (at {at}): {exc.message}", param) from exc


def _is_int(value: Any, expected: int) -> bool:
    """Whether ``value`` is the whole number ``expected`` (not ``true``, not ``1.0``)."""
    return type(value) is int and value == expected


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
