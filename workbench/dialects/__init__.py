"""Dialects: one module per model family, from conversation to prompt and from output to messages."""

from __future__ import annotations

from typing import Any

from workbench.dialects.base import Dialect
from workbench.dialects.chat_template import ChatTemplateDialect


def dialect_for(tokenizer: Any) -> Dialect:
    """Pick the dialect for a tokenizer.

    Raises:
        ChatTemplateError: If the tokenizer has no chat template and no known format.
    """
    return ChatTemplateDialect(tokenizer)


__all__ = ["ChatTemplateDialect", "Dialect", "dialect_for"]
