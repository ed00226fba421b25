"""Dialects: one module per model family, from conversation to prompt and from output to messages."""

from __future__ import annotations

from typing import Any

from workbench.dialects.base import Dialect
from workbench.dialects.chat_template import ChatTemplateDialect
from workbench.dialects.chatglm3 import ChatGLM3Dialect
from workbench.dialects.hermes import HermesDialect


def is_chatglm3(tokenizer: Any) -> bool:
    """Whether a tokenizer is ChatGLM3's (ChatGLM2 shares the class name but has no ``<|observation|>``)."""
    if "chatglm" not in type(tokenizer).__name__.lower() or "4" in type(tokenizer).__name__:
        return False
    get_command = getattr(tokenizer, "get_command", None)
    if callable(get_command):
        try:
            return get_command("<|observation|>") is not None
        except (KeyError, ValueError, AttributeError, AssertionError):
            return False
    template = getattr(tokenizer, "chat_template", None)
    return isinstance(template, str) and "<|observation|>" in template


def dialect_for(tokenizer: Any) -> Dialect:
    """Pick the dialect for a tokenizer.

    ChatGLM3 gets its own format; a chat template that renders tools is used as it is; a template
    that knows no tools (the embedded SmolLM2) gets tools and calls written into the text, Hermes style.

    Raises:
        ChatTemplateError: If the tokenizer has no chat template and no known format.
    """
    if is_chatglm3(tokenizer):
        return ChatGLM3Dialect(tokenizer)
    dialect = ChatTemplateDialect(tokenizer)
    if dialect.supports_tools:
        return dialect
    return HermesDialect(tokenizer)


__all__ = ["ChatGLM3Dialect", "ChatTemplateDialect", "Dialect", "HermesDialect", "dialect_for", "is_chatglm3"]
