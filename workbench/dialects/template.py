"""What a dialect needs of a model's chat template, whichever engine loaded it.

A transformers tokenizer provides it as it is. An engine without one (llama.cpp reads the template text
from the GGUF file) provides an object with the same few members, so every dialect works on every
engine without a transformers tokenizer.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class ChatTemplateSource(Protocol):
    """The part of a tokenizer the dialects use.

    Attributes:
        chat_template: The Jinja chat template's text, or None when the model has none.
    """

    chat_template: Any

    def apply_chat_template(
        self,
        conversation: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        *,
        tokenize: bool = False,
        add_generation_prompt: bool = True,
    ) -> Any:
        """Render a conversation (OpenAI-style dicts) into the prompt text (with ``tokenize=False``)."""
        ...
