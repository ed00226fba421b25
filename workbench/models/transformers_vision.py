"""What transformers' image-text models need besides their processor: the image placeholder, content parts.

The dialects render each message's content as a string, with :data:`IMAGE_MARKER` where an image goes; the
engine replaces each marker by :func:`image_placeholder` and lets the processor expand it into the image's
tokens. Some VLM templates (SmolVLM's, LLaVA's) read content only as a list of parts and would render a
string as nothing: :class:`PartsTemplate` gives them parts.

The messages' control-token texts stay plain text beside images too (the request's ``literal_spans``, see
:mod:`~workbench.models.prompt_literals`). The processor tokenizes the whole text it is given with special
tokens parsed, and only it knows how many tokens an image becomes (Idefics3 expands each ``<image>`` into
rows of tiles), so it runs once over the prompt with each literal span replaced by a sentinel: a special
token of the tokenizer that the prompt does not otherwise hold (:func:`literal_sentinels`). Each sentinel
comes back as one id, which :func:`splice_literals` replaces by its span's plain-text ids. A special token
splits the text around it, so the template's text is tokenized in the same pieces as the text engine's
``tokenize_pieces`` cuts (the same ids for a byte-level BPE such as SmolLM2's or Qwen's; a SentencePiece
tokenizer that prefixes a space only at the start of a text gives the piece after a span no prefix here,
as the whole prompt would, where ``tokenize_pieces`` gives it one). If the sentinels do not come back one
for each span (the processor's expansion used that token), the next one is tried, and at last the request
is refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch


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


#: The tokenizer's own roles, never a sentinel (a processor may add them: PaliGemma writes its BOS).
_ROLES = ("bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token", "mask_token")


def literal_sentinels(processor: Any, text: str) -> list[tuple[str, int]]:
    """Special tokens that can stand for a literal span in ``text`` while the processor runs, best first.

    A sentinel is one of the tokenizer's special added tokens that matches only itself (no stripping of the
    spaces around it), is not written in ``text``, and is none of the processor's own tokens (its image
    token and the like, as far as its attributes name them) or the tokenizer's BOS, EOS, padding... The
    caller still checks that each comes back once for each span (:func:`splice_literals`).

    Args:
        processor: An image-text model's processor (with its ``tokenizer``).
        text: The prompt's text outside the literal spans, as the processor will read it.
    """
    tokenizer = processor.tokenizer
    named = [getattr(tokenizer, role, None) for role in _ROLES]
    named += [value for value in vars(processor).values() if isinstance(value, str)]
    avoid = {str(token) for token in named if token}
    sentinels = []
    for token_id, token in sorted((getattr(tokenizer, "added_tokens_decoder", None) or {}).items()):
        content = str(getattr(token, "content", ""))
        if not content or not getattr(token, "special", False) or content in text or content in avoid:
            continue
        if any(getattr(token, flag, False) for flag in ("lstrip", "rstrip", "single_word")):
            continue
        sentinels.append((content, int(token_id)))
    return sentinels


def splice_literals(
    inputs: Mapping[str, Any], sentinel_id: int, literals: Sequence[Sequence[int]]
) -> dict[str, Any] | None:
    """The processor's inputs with each sentinel id replaced by its literal span's ids, in order.

    The per-token tensors (``input_ids``, ``attention_mask``, token type ids: every integer tensor shaped as
    ``input_ids``, one row) take the span's ids, or the sentinel's value once for each of them; the others
    (pixel values and the like) stay as they are.

    Args:
        inputs: What the processor returned for one prompt (tensors).
        sentinel_id: The id standing for each literal span.
        literals: Each span's plain-text ids, in the prompt's order.

    Returns:
        The spliced inputs, or None if the ids do not hold the sentinel exactly once for each span.
    """
    ids = inputs["input_ids"]
    if ids.dim() != 2 or ids.shape[0] != 1:
        return None
    positions = (ids[0] == sentinel_id).nonzero().flatten().tolist()
    if len(positions) != len(literals):
        return None
    out = dict(inputs)
    for key, value in inputs.items():
        if not isinstance(value, torch.Tensor) or value.is_floating_point() or value.shape != ids.shape:
            continue
        parts: list[torch.Tensor] = []
        at = 0
        for position, literal in zip(positions, literals, strict=True):
            parts.append(value[0, at:position])
            if key == "input_ids":
                parts.append(torch.tensor(list(literal), dtype=value.dtype))
            else:
                parts.append(value[0, position].repeat(len(literal)))
            at = position + 1
        parts.append(value[0, at:])
        out[key] = torch.cat(parts).unsqueeze(0)
    return out
