"""ChatGLM3's own format: role tokens, tool calls as ``tool_call(...)`` in a fenced block.

Each turn is ``<|role|>{metadata}``, a newline, then the content; the prompt ends with ``<|assistant|>`` and the model
writes the metadata line itself (see PROMPT_en.md in THUDM/ChatGLM3)::

    <|system|>
    Answer the following questions as best as you can. You have access to the following tools:
    [ ...the tools' JSON, indented by 4... ]<|user|>
    What's the weather in Beijing today?<|assistant|>get_current_weather
    ```python
    tool_call(location="beijing", unit="celsius")
    ```<|observation|>
    {"temperature": 22}<|assistant|>
    According to the query results, ...

A call's arguments are read with :mod:`ast` as literals only; nothing the model writes is evaluated.
The tool's name stays on the assistant message (``tool_calls`` and ``metadata["tool"]``), so every
call in the history renders again with its name. A code-interpreter turn is an assistant message with
``interpreter`` set; its observation is wrapped in a ```` ```result ```` block.
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any

from workbench.dialects.base import Dialect, strip_stop_strings
from workbench.dialects.calls import InvalidCall, assistant_message, invalid_calls
from workbench.messages import INTERPRETER, Message, Role, ToolCall

TOOL_PROMPT = "Answer the following questions as best as you can. You have access to the following tools:"
ASSISTANT_TOKEN = "<|assistant|>"
_FENCE = re.compile(r"```[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_CALL_SHAPE = 'tool_call(name="value", count=3)'
_TOOL_NAME = re.compile(r"^[\w./-]{1,64}$")


def format_value(value: Any) -> str:
    """Write a JSON value as a Python literal the way ChatGLM3 writes it (strings in double quotes)."""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{format_value(str(k))}: {format_value(v)}" for k, v in value.items()) + "}"
    return repr(value)


def format_call(call: ToolCall) -> str:
    """Return the fenced ``tool_call(...)`` block of a call."""
    arguments = ", ".join(f"{key}={format_value(value)}" for key, value in call.arguments.items())
    return f"```python\ntool_call({arguments})\n```"


def parse_call(name: str, body: str) -> ToolCall | InvalidCall:
    """Read ``tool_call(key=literal, ...)`` from a call's body (fenced or not) with ``ast``, never ``eval``."""
    fenced = _FENCE.search(body)
    code = (fenced.group(1) if fenced else body).strip()
    shape = f"Write the call as {name}\\n```python\\n{_CALL_SHAPE}\\n```."
    try:
        tree = ast.parse(code, mode="eval")
    except SyntaxError as exc:
        return InvalidCall(
            body.strip(), f"The call to {name!r} is not valid Python ({exc.msg}). {shape}", name
        )
    call = tree.body
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "tool_call"):
        return InvalidCall(
            body.strip(), f"The call to {name!r} must be a single tool_call(...). {shape}", name
        )
    if call.args or any(keyword.arg is None for keyword in call.keywords):
        return InvalidCall(
            body.strip(), f"The call to {name!r} must pass every argument by name. {shape}", name
        )
    arguments: dict[str, Any] = {}
    for keyword in call.keywords:
        try:
            arguments[str(keyword.arg)] = ast.literal_eval(keyword.value)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return InvalidCall(
                body.strip(),
                f"The argument {keyword.arg!r} of the call to {name!r} is not a literal value (a string, "
                "number, boolean, None, list or dict); write the value itself.",
                name,
            )
    return ToolCall(name, arguments)


def _looks_like_call(body: str) -> bool:
    return "tool_call" in body or body.lstrip().startswith("```")


class ChatGLM3Dialect(Dialect):
    """ChatGLM3-6B's conversation format, tool calls and code-interpreter turns."""

    name = "chatglm3"
    stop_strings = ("<|user|>", "<|observation|>")
    code_turn_header = f"{INTERPRETER}\n"

    def __init__(self, tokenizer: Any = None) -> None:
        self.tokenizer = tokenizer
        # The model's own input starts with [gMASK]sop; tests of the format leave it out.
        self.start = "[gMASK]sop" if tokenizer is not None else ""
        if tokenizer is not None and hasattr(tokenizer, "encode_special_tokens"):
            # ChatGLM3's tokenizer reads role tokens written as text only with this switch on.
            tokenizer.encode_special_tokens = True

    def render(
        self,
        messages: list[Message],
        *,
        tools: list[dict[str, Any]] | None = None,
        add_generation_prompt: bool = True,
    ) -> str:
        """Return the prompt: every turn as ``<|role|>{metadata}``, a newline and its content."""
        parts = [self.start]
        rest = list(messages)
        system = rest.pop(0).content if rest and rest[0].role is Role.SYSTEM else ""
        if tools:
            functions = [tool.get("function", tool) for tool in tools]
            system = "\n".join(p for p in (system, TOOL_PROMPT) if p)
            system += "\n" + json.dumps(functions, indent=4, ensure_ascii=False)
        if system:
            parts.append(f"<|system|>\n{system}")
        for message in rest:
            parts.extend(self._render_message(message))
        if add_generation_prompt:
            parts.append(ASSISTANT_TOKEN)
        return "".join(parts)

    def _render_message(self, message: Message) -> list[str]:
        if message.role is Role.OBSERVATION:
            content = message.content
            if message.name == INTERPRETER and not content.startswith("```"):
                content = f"```result\n{content}\n```"
            return [f"<|observation|>\n{content}"]
        if message.role is not Role.ASSISTANT:
            return [f"<|{message.role.value}|>\n{message.content}"]
        parts = [f"{ASSISTANT_TOKEN}\n{message.content}"] if message.content else []
        if message.interpreter:
            code = message.code
            block = f"```python\n{code}\n```" if isinstance(code, str) else message.content
            if not isinstance(code, str):
                parts = []
            return [*parts, f"{ASSISTANT_TOKEN}{INTERPRETER}\n{block}"]
        if not parts and not message.tool_calls and not invalid_calls(message):
            parts = [f"{ASSISTANT_TOKEN}\n"]
        parts += [f"{ASSISTANT_TOKEN}{call.name}\n{format_call(call)}" for call in message.tool_calls]
        parts += [f"{ASSISTANT_TOKEN}{call.name or ''}\n{call.text}" for call in invalid_calls(message)]
        return parts

    def parse(self, text: str) -> Message:
        """Read the reply: plain text, tool calls (``<|assistant|>NAME`` segments) or interpreter code.

        A code-interpreter reply becomes a message whose text is the prose before the code, with
        ``interpreter`` set and the code in ``code``.
        """
        text = strip_stop_strings(text, self.stop_strings)
        content: list[str] = []
        calls: list[ToolCall] = []
        invalid: list[InvalidCall] = []
        code: list[str] = []
        for segment in text.split(ASSISTANT_TOKEN):
            metadata, _, body = segment.partition("\n")
            metadata = metadata.strip()
            if metadata == INTERPRETER:
                fenced = _FENCE.search(body)
                code.append((fenced.group(1) if fenced else body).strip("\n"))
            elif metadata and _TOOL_NAME.match(metadata) and _looks_like_call(body):
                parsed = parse_call(metadata, body)
                (calls if isinstance(parsed, ToolCall) else invalid).append(parsed)  # type: ignore[arg-type]
            else:  # a plain turn; a first line that is no tool name is part of the text
                content.append((body if not metadata else segment).strip())
        message = assistant_message("\n\n".join(part for part in content if part), calls, invalid)
        if code:
            message.interpreter, message.code = True, "\n".join(code)
        names = [call.name for call in calls] + [call.name for call in invalid if call.name]
        if names:
            message.metadata["tool"] = names[0]
        return message
