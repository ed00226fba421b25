"""The JSON the API answers with: completions, streamed chunks and usage, in OpenAI's exact shapes.

Streamed tool calls follow the official client's expectations: each call has a dense ``index`` from 0;
its first delta carries ``id``, ``type`` and ``function.name`` once (with empty arguments), later deltas
carry only ``function.arguments`` fragments (the client concatenates strings, so nothing is repeated).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from workbench.server.generate import Finished


def usage_of(finished: Finished) -> dict[str, int]:
    """The ``usage`` object."""
    return {
        "prompt_tokens": finished.prompt_tokens,
        "completion_tokens": finished.completion_tokens,
        "total_tokens": finished.prompt_tokens + finished.completion_tokens,
    }


@dataclass
class Envelope:
    """What every response and chunk of one request shares.

    Attributes:
        model: The served model's id.
        chat: A chat completion (else a text completion).
        id: The completion's id (``chatcmpl-...`` or ``cmpl-...``).
        created: Unix time of the request.
    """

    model: str
    chat: bool = True
    id: str = ""
    created: int = field(default_factory=lambda: int(time.time()))

    def __post_init__(self) -> None:
        if not self.id:
            self.id = ("chatcmpl-" if self.chat else "cmpl-") + uuid.uuid4().hex[:24]

    def head(self, kind: str) -> dict[str, Any]:
        """The fields every object of this request starts with."""
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model}

    # --- whole answers ---------------------------------------------------------------------------
    def response(self, finished: Finished) -> dict[str, Any]:
        """The non-streamed answer (``usage`` always present: some clients crash without it)."""
        if not self.chat:
            choice: dict[str, Any] = {
                "index": 0,
                "text": finished.content,
                "logprobs": None,
                "finish_reason": finished.finish_reason,
            }
            return {**self.head("text_completion"), "choices": [choice], "usage": usage_of(finished)}
        message: dict[str, Any] = {"role": "assistant", "content": finished.content or None}
        if finished.tool_calls:
            message["tool_calls"] = finished.tool_calls
        else:
            message["content"] = finished.content
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finished.finish_reason}
        return {**self.head("chat.completion"), "choices": [choice], "usage": usage_of(finished)}

    # --- streamed answers ------------------------------------------------------------------------
    def chunk(
        self, delta: dict[str, Any] | str, finish_reason: str | None = None, usage: bool = False
    ) -> dict[str, Any]:
        """One streamed chunk: a chat ``delta`` (dict) or a text piece (str).

        Args:
            delta: The chat delta, or the text of a text completion.
            finish_reason: Set on the last chunk with a choice.
            usage: Add ``"usage": null`` (``stream_options.include_usage`` asks for it on every chunk).
        """
        if self.chat:
            choice: dict[str, Any] = {
                "index": 0,
                "delta": delta,
                "logprobs": None,
                "finish_reason": finish_reason,
            }
            out = {**self.head("chat.completion.chunk"), "choices": [choice]}
        else:
            text_choice = {"index": 0, "text": delta, "logprobs": None, "finish_reason": finish_reason}
            out = {**self.head("text_completion"), "choices": [text_choice]}
        if usage:
            out["usage"] = None
        return out

    def closing_chunks(self, finished: Finished, include_usage: bool) -> Iterator[dict[str, Any]]:
        """The calls (if any), the chunk with the finish reason, then the usage chunk if asked."""
        if self.chat:
            for index, call in enumerate(finished.tool_calls):
                first = {
                    "index": index,
                    "id": call["id"],
                    "type": "function",
                    "function": {"name": call["function"]["name"], "arguments": ""},
                }
                yield self.chunk({"tool_calls": [first]}, usage=include_usage)
                arguments = {"index": index, "function": {"arguments": call["function"]["arguments"]}}
                yield self.chunk({"tool_calls": [arguments]}, usage=include_usage)
        yield self.chunk({} if self.chat else "", finished.finish_reason, usage=include_usage)
        if include_usage:
            kind = "chat.completion.chunk" if self.chat else "text_completion"
            yield {**self.head(kind), "choices": [], "usage": usage_of(finished)}
