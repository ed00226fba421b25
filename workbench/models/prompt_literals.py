"""Message text is text: control tokens typed in a message are not read as the template's own.

A rendered prompt mixes two kinds of text: the chat template's own (``<|im_start|>user``, which must
become the model's control tokens) and the messages' contents (what a user typed, a tool's result, a web
page), which must not. Tokenizing the whole prompt with special tokens parsed would let anyone who can put
text in a message write ``<|im_start|>system`` and a line of orders and forge a system or assistant turn.

So the contents' control-token texts are held out of the template while it renders: each one is replaced
by a placeholder of two private-use characters (:meth:`Literals.escape`), the template renders, and the
placeholders are put back (:meth:`Literals.restore`), which gives the same prompt text as before and the
spans where those texts are. The engines tokenize the spans with special tokens *not* parsed and the rest
as before (:func:`tokenize_pieces`). A conversation with no control-token text in its messages has no
span, so its tokens are exactly what they were (and a kept KV cache still matches them).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from workbench.errors import PromptError
from workbench.messages import Message

#: Opens a placeholder (a private-use character no template writes); the next character is its index.
PLACEHOLDER = "\U000f0000"
_FIRST_INDEX = 0xF0001
_LAST_INDEX = 0xFFFFD

#: A character span of a prompt: ``(start, end)``.
Span = tuple[int, int]
T = TypeVar("T")


def control_texts(template: Any) -> tuple[str, ...]:
    """The texts of the control tokens a model's tokenizer would parse in a prompt.

    Args:
        template: The backend's chat template source: an object with ``control_texts`` (llama.cpp's), or a
            transformers tokenizer (its ``added_tokens_decoder`` entries marked ``special``).
    """
    texts = getattr(template, "control_texts", None)
    if texts is None:
        added = getattr(template, "added_tokens_decoder", None) or {}
        texts = [token.content for token in added.values() if getattr(token, "special", False)]
    return tuple(sorted({t for t in texts if t}, key=len, reverse=True))


@dataclass
class Literals:
    """The control-token texts found in one conversation's messages, and their placeholders.

    Args:
        texts: The control tokens' texts (see :func:`control_texts`).
    """

    texts: Sequence[str]
    _held: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        alternatives = [re.escape(t) for t in sorted(self.texts, key=len, reverse=True)]
        # A typed placeholder character is held out too, so every placeholder in the render is ours.
        self._pattern = re.compile("|".join([*alternatives, re.escape(PLACEHOLDER)]))

    def escape(self, text: str) -> str:
        """``text`` with each control-token text (and typed placeholder) replaced by a placeholder.

        Raises:
            PromptError: If the messages hold more different such texts than placeholders exist.
        """
        return self._pattern.sub(lambda m: self._placeholder(m.group()), text)

    def escape_messages(self, messages: list[Message]) -> list[Message]:
        """The messages with their contents escaped (unchanged messages are the same objects)."""
        out = []
        for message in messages:
            content = self.escape(message.content)
            out.append(message if content == message.content else replace(message, content=content))
        return out

    def restore(self, rendered: str) -> tuple[str, tuple[Span, ...]]:
        """Put the held texts back into a rendered prompt.

        Returns:
            The prompt as it would have rendered without placeholders, and the spans of the held texts.
        """
        if not self._held:
            return rendered, ()
        parts: list[str] = []
        spans: list[Span] = []
        length = 0
        at = 0
        for match in re.finditer(re.escape(PLACEHOLDER) + "(.)", rendered, re.DOTALL):
            index = ord(match.group(1)) - _FIRST_INDEX
            if not 0 <= index < len(self._held):
                continue  # not one of ours (the template cut a placeholder): leave it as it is
            before = rendered[at : match.start()]
            parts.append(before)
            length += len(before)
            text = self._held[index]
            parts.append(text)
            spans.append((length, length + len(text)))
            length += len(text)
            at = match.end()
        parts.append(rendered[at:])
        return "".join(parts), tuple(spans)

    def _placeholder(self, text: str) -> str:
        if text not in self._held:
            if _FIRST_INDEX + len(self._held) > _LAST_INDEX:
                raise PromptError(
                    "The messages hold too many different special-token texts; remove some and try again."
                )
            self._held.append(text)
        return PLACEHOLDER + chr(_FIRST_INDEX + self._held.index(text))


def tokenize_pieces(
    text: str,
    spans: Sequence[Span],
    special: Callable[[str], list[T]],
    plain: Callable[[str], list[T]],
) -> list[T]:
    """Tokenize ``text``: the ``spans`` with ``plain`` (no special tokens parsed), the rest with ``special``.

    Without spans this is ``special(text)``: the same tokens as ever.
    """
    if not spans:
        return special(text)
    tokens: list[T] = []
    at = 0
    for start, end in sorted(spans):
        if start > at:
            tokens += special(text[at:start])
        tokens += plain(text[start:end])
        at = max(at, end)
    if at < len(text):
        tokens += special(text[at:])
    return tokens
