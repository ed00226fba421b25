"""The generic dialect: the tokenizer's own chat template (``apply_chat_template``).

Templates that know tools (Qwen2.5, Hermes, SmolLM3, ...) render the tool list themselves; their calls
come back as ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` blocks, or in whatever form
the tokenizer's ``response_template`` describes, read with transformers' ``parse_response``.
"""

from __future__ import annotations

import json
from typing import Any

from jinja2 import TemplateError

from workbench.dialects.base import Dialect, strip_stop_strings
from workbench.dialects.calls import (
    CALL_CLOSE_TAG,
    CALL_OPEN_TAG,
    InvalidCall,
    assistant_message,
    call_from_data,
    invalid_calls,
    split_tagged_calls,
)
from workbench.errors import ChatTemplateError, PromptError
from workbench.messages import Message, Role, ToolCall


class ChatTemplateDialect(Dialect):
    """Renders with the chat template that ships with the tokenizer.

    Observations are passed as the ``tool`` role, which tool-aware templates understand.
    """

    name = "chat-template"

    def __init__(self, tokenizer: Any) -> None:
        if not getattr(tokenizer, "chat_template", None):
            raise ChatTemplateError(
                "This model's tokenizer has no chat template, so Workbench cannot tell how to format a "
                "conversation. Use an instruction-tuned (chat) model, or add a chat_template to its "
                "tokenizer_config.json / chat_template.jinja."
            )
        self.tokenizer = tokenizer
        self.template: str = tokenizer.chat_template if isinstance(tokenizer.chat_template, str) else ""
        if CALL_OPEN_TAG in self.template:
            # Hermes-style templates: a call is one JSON object between the tags, so it can be constrained.
            self.tool_call_open = CALL_OPEN_TAG + "\n"
            self.tool_call_close = "\n" + CALL_CLOSE_TAG

    @property
    def supports_tools(self) -> bool:
        """Whether the template renders a ``tools`` list itself."""
        return "tools" in self.template

    @property
    def response_template(self) -> dict[str, Any] | None:
        """The tokenizer's response template for ``parse_response``, if it has one."""
        template = getattr(self.tokenizer, "response_template", None)
        return template if isinstance(template, dict) else None

    def to_template_messages(self, messages: list[Message]) -> list[dict[str, Any]]:
        """Convert messages into the dicts chat templates expect."""
        out: list[dict[str, Any]] = []
        for message in messages:
            item: dict[str, Any] = {"role": message.role.value, "content": message.content}
            if message.role is Role.OBSERVATION:
                item["role"] = "tool"
                if message.name:
                    item["name"] = message.name
                if message.tool_call_id:
                    item["tool_call_id"] = message.tool_call_id
            if message.tool_calls:
                item["tool_calls"] = [
                    {"id": call.id, "type": "function", "function": call.to_dict()}
                    for call in message.tool_calls
                ]
            unreadable = invalid_calls(message)
            if unreadable:
                # The model should see what it wrote, next to the error observations that answer it.
                raw = "\n".join(f"{CALL_OPEN_TAG}\n{call.text}\n{CALL_CLOSE_TAG}" for call in unreadable)
                item["content"] = f"{message.content}\n{raw}".strip()
            out.append(item)
        return out

    def render(
        self,
        messages: list[Message],
        *,
        tools: list[dict[str, Any]] | None = None,
        add_generation_prompt: bool = True,
    ) -> str:
        """Render with ``tokenizer.apply_chat_template``.

        Raises:
            PromptError: If the template rejects the conversation (for example two user turns in a row).
        """
        try:
            text = self.tokenizer.apply_chat_template(
                self.to_template_messages(messages),
                tools=tools or None,
                tokenize=False,
                add_generation_prompt=add_generation_prompt,
            )
        except TemplateError as exc:
            raise PromptError(
                f"The model's chat template rejected this conversation: {exc}. Clear the chat and try again."
            ) from exc
        return str(text)

    def parse(self, text: str) -> Message:
        """Read the reply: its text and its tool calls.

        With a ``response_template`` on the tokenizer, transformers' ``parse_response`` reads it;
        otherwise ``<tool_call>`` blocks are read as JSON calls.
        """
        text = strip_stop_strings(text, self.stop_strings)
        if self.response_template is not None:
            return self._parse_with_response_template(text)
        if CALL_OPEN_TAG not in text:
            return Message(Role.ASSISTANT, text.strip())
        return assistant_message(*split_tagged_calls(text))

    def _parse_with_response_template(self, text: str) -> Message:
        try:
            parsed = self.tokenizer.parse_response(text, prefix="")
        except Exception as exc:  # a template or JSON error in the reply: report it to the model
            if CALL_OPEN_TAG in text:
                return assistant_message(*split_tagged_calls(text))
            error = f"Your reply could not be read as this model's format ({exc}); write the call again."
            return assistant_message("", [], [InvalidCall(text.strip(), error)])
        content = parsed.get("content") or ""
        calls: list[ToolCall] = []
        invalid: list[InvalidCall] = []
        for item in parsed.get("tool_calls") or []:
            result = call_from_data(item, json.dumps(item, ensure_ascii=False, default=str))
            if isinstance(result, ToolCall):
                calls.append(result)
            else:
                invalid.append(result)
        return assistant_message(content if isinstance(content, str) else str(content), calls, invalid)
