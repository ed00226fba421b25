"""Hermes-style tool calling for chat templates that know no tools (the embedded SmolLM2).

The template is still used for the turns themselves; this dialect writes the tool list and the call
format into the system prompt, the way Hermes 2 Pro and Qwen2.5 do::

    <|im_start|>system
    You are a helpful assistant.

    # Tools
    ...
    <tools>
    {"type": "function", "function": {"name": "calculator", ...}}
    </tools>
    ...<|im_end|>
    <|im_start|>user
    What is 1234 plus 4321?<|im_end|>
    <|im_start|>assistant
    <tool_call>
    {"name":"calculator","arguments":{"expression":"1234 + 4321"}}
    </tool_call><|im_end|>
    <|im_start|>user
    <tool_response>
    5555
    </tool_response><|im_end|>
    <|im_start|>assistant

Results go back as a user turn wrapped in ``<tool_response>`` tags (several results of one turn in
one message), since a template without tools has no role for them.
"""

from __future__ import annotations

import json
from typing import Any

from workbench.dialects.calls import CALL_CLOSE_TAG, CALL_OPEN_TAG, invalid_calls
from workbench.dialects.chat_template import ChatTemplateDialect
from workbench.messages import Message, Role

DEFAULT_SYSTEM = "You are a helpful assistant."
RESPONSE_OPEN_TAG = "<tool_response>"
RESPONSE_CLOSE_TAG = "</tool_response>"

TOOLS_SECTION = """# Tools

You can call the tools described in JSON inside <tools></tools>:
<tools>
{tools}
</tools>

To call a tool, reply with its name and arguments as one JSON object inside <tool_call></tool_call>:
<tool_call>
{{"name": "<tool name>", "arguments": {{"<parameter>": <value>}}}}
</tool_call>
Each result comes back inside <tool_response></tool_response>. Then answer the user with it."""


def tools_section(tools: list[dict[str, Any]]) -> str:
    """Return the system-prompt section that lists the tools and the call format."""
    return TOOLS_SECTION.format(tools="\n".join(json.dumps(tool, ensure_ascii=False) for tool in tools))


def compact_json(value: Any) -> str:
    """JSON without spaces, as constrained decoding writes a call (see :mod:`workbench.models.constrained`)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def render_call_text(message: Message) -> str:
    """Return an assistant message as the model wrote it: its text, then each call in tags."""
    blocks = [
        f"{CALL_OPEN_TAG}\n{compact_json(call.to_dict())}\n{CALL_CLOSE_TAG}" for call in message.tool_calls
    ]
    blocks += [f"{CALL_OPEN_TAG}\n{call.text}\n{CALL_CLOSE_TAG}" for call in invalid_calls(message)]
    return "\n".join(part for part in (message.content, *blocks) if part)


class HermesDialect(ChatTemplateDialect):
    """The tokenizer's chat template, with tools and calls written into the text (Hermes style)."""

    name = "hermes"
    stop_strings = (RESPONSE_OPEN_TAG,)  # the model must not write the tool's answer itself
    tool_call_open = CALL_OPEN_TAG + "\n"
    tool_call_close = "\n" + CALL_CLOSE_TAG

    def to_template_messages(self, messages: list[Message]) -> list[dict[str, Any]]:
        """Convert messages into plain role/content dicts: calls as text, results as user turns."""
        out: list[dict[str, Any]] = []
        for message in messages:
            if message.role is Role.OBSERVATION:
                block = f"{RESPONSE_OPEN_TAG}\n{message.content}\n{RESPONSE_CLOSE_TAG}"
                if out and out[-1].get("observations"):
                    out[-1]["content"] += "\n" + block
                else:
                    out.append({"role": "user", "content": block, "observations": True})
            elif message.role is Role.ASSISTANT:
                out.append({"role": "assistant", "content": render_call_text(message)})
            else:
                out.append({"role": message.role.value, "content": message.content})
        for item in out:
            item.pop("observations", None)
        return out

    def render(
        self,
        messages: list[Message],
        *,
        tools: list[dict[str, Any]] | None = None,
        add_generation_prompt: bool = True,
    ) -> str:
        """Render with the chat template, the tool list appended to the system prompt.

        Raises:
            PromptError: If the template rejects the conversation.
        """
        if tools:
            messages = list(messages)
            if messages and messages[0].role is Role.SYSTEM:
                head = messages.pop(0).content.strip() or DEFAULT_SYSTEM
            else:
                head = DEFAULT_SYSTEM
            messages.insert(0, Message(Role.SYSTEM, f"{head}\n\n{tools_section(tools)}"))
        return super().render(messages, tools=None, add_generation_prompt=add_generation_prompt)
