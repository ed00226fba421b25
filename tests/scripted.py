"""A scripted stand-in for the model, shared by the tests of the chat, code and tool loops.

``call`` writes a reply that calls a tool the way the embedded model's Hermes dialect reads it, and
``hermes`` is that dialect over the embedded model's chat template.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from tests.template_tokenizer import SMOLLM2_TEMPLATE, TemplateTokenizer
from workbench.dialects import Dialect, HermesDialect
from workbench.errors import PromptTooLongError
from workbench.messages import Message
from workbench.models.backend import Capabilities, ModelInfo
from workbench.models.generation import GenerationRequest, GenerationStats, GenerationStream, SamplingSettings
from workbench.models.spec import ModelSpec


def hermes() -> HermesDialect:
    """The Hermes dialect over the embedded SmolLM2's chat template (no model needed)."""
    return HermesDialect(TemplateTokenizer(SMOLLM2_TEMPLATE))


def call(name: str, **args: Any) -> str:
    """A scripted reply that calls tool ``name`` with ``args``, as a Hermes model writes it."""
    return json.dumps({"name": name, "arguments": args}, separators=(",", ":"))


class PlainDialect(Dialect):
    """``role: content`` lines; enough for the loop logic."""

    name = "plain"

    def render(
        self, messages: list[Message], *, tools: Any = None, add_generation_prompt: bool = True
    ) -> str:
        return "".join(f"{m.role.value}: {m.content}\n" for m in messages) + "assistant:"


class ScriptedBackend:
    """Writes scripted replies piece by piece in a worker thread, honouring stop strings and cancel.

    A piece is ``chunk_chars`` characters, or one word (with its leading space) when ``chunk_chars`` is
    None; each piece counts as one new token. A stop string ends the reply right after it, as
    transformers' ``stop_strings`` does. A reply that is an exception instance makes the generation fail
    after writing one word. A prompt of ``context_length`` characters or more is refused. Every request is
    kept in ``requests`` (its prompt also in ``prompts``).
    """

    def __init__(
        self,
        *replies: str | BaseException,
        delay_s: float = 0.0,
        chunk_chars: int | None = 3,
        context_length: int = 20_000,
        capabilities: Capabilities | None = None,
    ) -> None:
        self.spec = ModelSpec(source="scripted")
        self.info = ModelInfo(
            label="scripted",
            source="scripted",
            loaded_from="",
            backend="scripted",
            device="cpu",
            dtype="none",
            context_length=context_length,
            load_seconds=0.0,
            architecture="scripted",
        )
        self.capabilities = capabilities or Capabilities()
        self.template = TemplateTokenizer(SMOLLM2_TEMPLATE)
        self.replies = list(replies)
        self.delay_s = delay_s
        self.chunk_chars = chunk_chars
        self.context_length = context_length
        self.requests: list[GenerationRequest] = []

    @classmethod
    def of(cls, model: Any) -> ScriptedBackend:
        """The scripted backend of a ChatModel (for assertions on what it was asked)."""
        assert isinstance(model.backend, cls)
        return model.backend

    @property
    def prompts(self) -> list[str]:
        return [request.prompt for request in self.requests]

    def count_tokens(self, text: str) -> int:
        return len(text)

    def default_settings(self) -> SamplingSettings:
        return SamplingSettings(max_new_tokens=64)

    def start(self, request: GenerationRequest) -> GenerationStream:
        if self.count_tokens(request.prompt) >= self.context_length:
            raise PromptTooLongError("The conversation is too long for the scripted model.")
        self.requests.append(request)
        reply = self.replies.pop(0)
        stopped = False
        if isinstance(reply, str):
            ends = [reply.find(s) + len(s) for s in request.stop_strings if s and s in reply]
            stopped = bool(ends)
            reply = reply[: min(ends)] if ends else reply
        stream = GenerationStream(poll_s=0.01)
        threading.Thread(target=self._write, args=(reply, stopped, stream), daemon=True).start()
        return stream

    def _pieces(self, reply: str) -> list[str]:
        if self.chunk_chars is None:
            first, *rest = reply.split(" ")
            return [first, *(" " + word for word in rest)]
        return [reply[index : index + self.chunk_chars] for index in range(0, len(reply), self.chunk_chars)]

    def _write(self, reply: str | BaseException, stopped: bool, stream: GenerationStream) -> None:
        stats = GenerationStats(finish_reason="stop_string" if stopped else "eos")
        if isinstance(reply, BaseException):
            pieces, error = ["Partial"], reply
        else:
            pieces, error = self._pieces(reply), None
        for piece in pieces:
            if stream.cancelled:
                stats.finish_reason = "cancelled"
                break
            stream.put(piece)
            stats.new_tokens += 1
            time.sleep(self.delay_s)
        stream.finish(stats, error)
