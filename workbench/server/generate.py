"""One completion on the shared model, as events: text as it is written, then the calls, then the end.

Tool calls are made the way the tool loop makes them (:mod:`workbench.modes.tool`): for ``required``
or a named function the reply starts with the dialect's call opener and the call is decoded under the
JSON schema of the allowed tools, so even the embedded model returns a valid call; for ``auto`` the
model writes freely until it opens a call itself, then the call is constrained. Calls are read back
by the model's dialect. A :class:`CompletionRun` runs in a worker thread; :meth:`CompletionRun.cancel`
(a client that went away) stops the generation after the current token.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from workbench.chat_model import ChatModel
from workbench.dialects.base import strip_stop_strings
from workbench.messages import Message, Role
from workbench.models.generation import FinishReason, GenerationRequest, GenerationStream
from workbench.modes.tool import _HeldBackText, call_schema
from workbench.server.requests import CompletionParams


@dataclass
class TextPiece:
    """Text of the answer, as it is written."""

    text: str


@dataclass
class Finished:
    """The end of a completion.

    Attributes:
        content: The whole answer's text (calls left out).
        tool_calls: The calls, as OpenAI ``tool_calls`` items.
        finish_reason: ``stop``, ``length`` or ``tool_calls``.
        prompt_tokens: Tokens in the prompt.
        completion_tokens: Tokens generated (all generations of the request).
    """

    content: str
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    finish_reason: str = "stop"
    prompt_tokens: int = 0
    completion_tokens: int = 0


CompletionEvent = TextPiece | Finished


def openai_call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    """One item of ``tool_calls``."""
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def calls_of(message: Message) -> list[dict[str, Any]]:
    """The calls the dialect read from a reply (unreadable ones keep what the model wrote)."""
    calls = [
        openai_call(c.id, c.name, json.dumps(c.arguments, ensure_ascii=False)) for c in message.tool_calls
    ]
    calls += [openai_call(c.id, c.name or "unknown", c.text) for c in message.invalid_calls]
    return calls


class CompletionRun:
    """One request's generation(s) on the shared model: :meth:`start`, then iterate :meth:`events`.

    Args:
        model: The shared model.
        params: The checked request.
    """

    def __init__(self, model: ChatModel, params: CompletionParams) -> None:
        self.model = model
        self.params = params
        self._stream: GenerationStream | None = None
        self._cancelled = threading.Event()
        self._prompt_tokens = 0
        self._completion_tokens = 0
        self._marker = ""
        self._forced_tools: list[dict[str, Any]] | None = None

    def cancel(self) -> None:
        """Stop the generation after its current token (from any thread)."""
        self._cancelled.set()
        stream = self._stream
        if stream is not None:
            stream.cancel()

    def start(self) -> None:
        """Render the prompt and start the first generation, in the caller's thread.

        The request can still be refused with a status then, before any event is sent.

        Raises:
            PromptError: If the conversation cannot be rendered or is longer than the context.
        """
        params, dialect = self.params, self.model.dialect
        if not params.messages:  # a text completion: the raw prompt
            request = GenerationRequest(params.prompt, params.settings, stop_strings=params.stop)
            self._watch(self.model.backend.start(request))
            return
        opener = dialect.tool_call_open if params.tools else None
        if params.tools and opener and self._can_constrain and params.tool_choice != "auto":
            allowed = [t for t in params.tools if params.forced_tool in (None, t["function"]["name"])]
            self._forced_tools = allowed
            self._start_call("", allowed)
            return
        self._marker = opener.strip() if opener else ""
        # Stop at a call the model opens, to write it under the schema; a backend that cannot continue a
        # prefix (a chat server) writes its calls in full instead.
        can_continue = self.model.capabilities.prompt_prefix
        markers = (self._marker,) if self._marker and can_continue else ()
        self._watch(
            self.model.stream(
                params.messages,
                params.settings,
                tools=params.tools,
                stop_strings=markers + params.stop,
                json_schema=params.json_schema,
            )
        )

    def events(self) -> Iterator[CompletionEvent]:
        """The answer's events, once :meth:`start` has run (blocks while the model writes).

        Raises:
            GenerationError: If generating failed.
        """
        stream = self._stream
        assert stream is not None, "start() first"
        if self._forced_tools is not None:
            yield self._read_call("", stream)
            return
        dialect, stops = self.model.dialect, self.params.stop
        held = _HeldBackText([self._marker, *stops, *(dialect.stop_strings if self.params.messages else ())])
        for chunk in stream:
            piece = held.feed(chunk)
            if piece:
                yield TextPiece(piece)
        self._count(stream)
        text = strip_stop_strings(stream.text, stops)
        if not self.params.messages:
            yield self._finished(text, [], stream)
            return
        marker = self._marker
        if marker and marker in text and self._can_constrain and self.model.capabilities.prompt_prefix:
            # The model opened a call: write the call itself under the tools' schema.
            before = text[: text.index(marker)]
            call_stream = self._start_call(before, self.params.tools or [])
            yield self._read_call(before, call_stream)
            return
        tail = held.flush()
        if tail:
            yield TextPiece(tail)
        if self.params.tools:
            message = dialect.parse(text)
        else:  # without tools, whatever looks like a call is just text (kept as streamed)
            message = Message(Role.ASSISTANT, strip_stop_strings(text, dialect.stop_strings))
        yield self._finished(message.content, calls_of(message), stream)

    # --- internals ----------------------------------------------------------------------------
    @property
    def _can_constrain(self) -> bool:
        return self.model.capabilities.constrained_json

    def _watch(self, stream: GenerationStream) -> GenerationStream:
        self._stream = stream
        if self._cancelled.is_set():
            stream.cancel()
        return stream

    def _start_call(self, before: str, tools: list[dict[str, Any]]) -> GenerationStream:
        """Start writing one call: the opener forced, the JSON under the schema of ``tools``."""
        opener = self.model.dialect.tool_call_open
        assert opener is not None
        # No repetition penalty inside a call: JSON repeats its punctuation (as in the tool loop).
        settings = self.params.settings.with_(repetition_penalty=1.0)
        return self._watch(
            self.model.stream(
                self.params.messages,
                settings,
                tools=self.params.tools,
                prefix=before + opener,
                json_schema=call_schema(tools),
            )
        )

    def _read_call(self, before: str, stream: GenerationStream) -> Finished:
        dialect = self.model.dialect
        stream.result()
        self._count(stream)
        message = dialect.parse(f"{before}{dialect.tool_call_open}{stream.text}{dialect.tool_call_close}")
        return self._finished(message.content, calls_of(message), stream)

    def _count(self, stream: GenerationStream) -> None:
        self._prompt_tokens = self._prompt_tokens or stream.stats.prompt_tokens
        self._completion_tokens += stream.stats.new_tokens

    def _finished(self, content: str, calls: list[dict[str, Any]], stream: GenerationStream) -> Finished:
        if calls:
            reason = "tool_calls"
        elif stream.stats.finish_reason == FinishReason.LENGTH:
            reason = "length"
        else:
            reason = "stop"
        return Finished(content, calls, reason, self._prompt_tokens, self._completion_tokens)
