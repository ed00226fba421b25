"""What transformers' image-text models need besides their processor: the image placeholder, content parts.

The dialects render each message's content as a string, with :data:`IMAGE_MARKER` where an image goes; the
engine replaces each marker by :func:`image_placeholder` and lets the processor expand it into the image's
tokens. Some VLM templates (SmolVLM's, LLaVA's) read content only as a list of parts and would render a
string as nothing: :class:`PartsTemplate` gives them parts.
"""

from __future__ import annotations

from typing import Any


def image_placeholder(processor: Any) -> str:
    """The text an image-text model's processor expands into one image's tokens.

    The processor's chat template is asked how it writes an image part (Qwen2-VL wraps its
    ``<|image_pad|>`` in ``<|vision_start|>...<|vision_end|>``); if it cannot say, the processor's
    ``image_token`` (``<image>`` for SmolVLM and LLaVA).
    """
    token = str(getattr(processor, "image_token", None) or "<image>")
    template = getattr(processor, "chat_template", None)
    if not template:
        return token
    parts = [{"type": "text", "text": "\x01"}, {"type": "image"}, {"type": "text", "text": "\x02"}]
    try:
        rendered = processor.apply_chat_template([{"role": "user", "content": parts}], tokenize=False)
    except Exception:  # a template that takes only strings: the bare token it is
        return token
    start, end = rendered.find("\x01"), rendered.find("\x02")
    between = rendered[start + 1 : end].strip() if 0 <= start < end else ""
    return between if token in between else token


_PROBE = "\x01probe"


def reads_only_parts(tokenizer: Any) -> bool:
    """Whether a chat template drops a message whose content is a string (it reads content parts only).

    SmolVLM's and LLaVA's templates loop over ``message['content']`` as a list of parts: a plain string
    renders as nothing there, and the model would get an empty conversation.
    """
    if not getattr(tokenizer, "chat_template", None):
        return False
    try:
        plain = tokenizer.apply_chat_template([{"role": "user", "content": _PROBE}], tokenize=False)
    except Exception:  # a template that fails on a string: try it with parts
        return True
    return _PROBE not in str(plain)


class PartsTemplate:
    """A tokenizer whose template reads content parts: each message's text is given as one text part.

    The images stay ``<__media__>`` markers in the text (the engine turns each into the processor's image
    placeholder), so the prompt holds them where the conversation has them.
    """

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.chat_template = tokenizer.chat_template

    def __getattr__(self, name: str) -> Any:
        return getattr(self.tokenizer, name)  # response_template and the like, as the tokenizer has them

    def apply_chat_template(
        self,
        conversation: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        *,
        tokenize: bool = False,
        add_generation_prompt: bool = True,
    ) -> Any:
        """Render with the tokenizer's template, each string content given as ``[{"type": "text", ...}]``."""
        parts = [
            {**m, "content": [{"type": "text", "text": m["content"]}]}
            if isinstance(m.get("content"), str)
            else m
            for m in conversation
        ]
        return self.tokenizer.apply_chat_template(
            parts, tools=tools, tokenize=tokenize, add_generation_prompt=add_generation_prompt
        )
