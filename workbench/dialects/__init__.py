"""Dialects: one module per model family, from conversation to prompt and from output to messages."""

from __future__ import annotations

from typing import Any

from workbench.dialects.base import Dialect
from workbench.dialects.chat_template import ChatTemplateDialect
from workbench.dialects.chatglm3 import ChatGLM3Dialect
from workbench.dialects.hermes import HermesDialect


def is_chatglm3_template(template: object) -> bool:
    """Whether a chat template's text is ChatGLM3's.

    ChatGLM3 writes ``[gMASK]sop`` and has an ``<|observation|>`` role; GLM-4, which shares both role
    tokens, writes ``<sop>`` in angle brackets and renders tools itself, so it keeps the generic dialect.
    """
    if not isinstance(template, str) or "<sop>" in template:
        return False
    return "[gMASK]sop" in template or "<|observation|>" in template


def is_chatglm3(tokenizer: Any) -> bool:
    """Whether a tokenizer (or template source) is ChatGLM3's.

    A transformers tokenizer is recognised by its class (ChatGLM2 shares the class name but has no
    ``<|observation|>``); a template read from a GGUF file, by its text.
    """
    name = type(tokenizer).__name__.lower()
    if "chatglm" not in name:
        return is_chatglm3_template(getattr(tokenizer, "chat_template", None))
    if "4" in name:
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


__all__ = [
    "ChatGLM3Dialect",
    "ChatTemplateDialect",
    "Dialect",
    "HermesDialect",
    "dialect_for",
    "is_chatglm3",
    "is_chatglm3_template",
]
