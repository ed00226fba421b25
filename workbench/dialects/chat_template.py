"""The generic dialect: the tokenizer's own chat template (``apply_chat_template``)."""

from __future__ import annotations

from typing import Any

from jinja2 import TemplateError

from workbench.conversation import Message, Role
from workbench.dialects.base import Dialect
from workbench.errors import ChatTemplateError, PromptError


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

    @property
    def supports_tools(self) -> bool:
        """Whether the template renders a ``tools`` list itself."""
        return "tools" in self.template

    def to_template_messages(self, messages: list[Message]) -> list[dict[str, Any]]:
        """Convert messages into the dicts chat templates expect."""
        out: list[dict[str, Any]] = []
        for message in messages:
            item: dict[str, Any] = {"role": message.role.value, "content": message.content}
            if message.role is Role.OBSERVATION:
                item["role"] = "tool"
                if message.name:
                    item["name"] = message.name
            if message.tool_calls:
                item["tool_calls"] = [
                    {"type": "function", "function": call.to_dict()} for call in message.tool_calls
                ]
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
