"""One request to a remote OpenAI-compatible server, read as a stream (see :mod:`remote_backend`).

:class:`RemoteExchange` decides what to send for a :class:`GenerationRequest` (a forced call, a free
reply with tools, constrained JSON, plain text), streams the answer into the
:class:`GenerationStream` and closes the HTTP stream as soon as the consumer stops.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import openai

from workbench.dialects.calls import CALL_CLOSE_TAG, CALL_OPEN_TAG
from workbench.dialects.hermes import compact_json
from workbench.errors import RemoteModelError
from workbench.models.generation import FinishReason, GenerationRequest, GenerationStats, GenerationStream

_CANCEL_POLL_S = 0.05
_CALL_BREAK = f"\n{CALL_CLOSE_TAG}\n{CALL_OPEN_TAG}\n"


class RemoteHost(Protocol):
    """What an exchange uses of the remote backend (see :class:`~workbench.models.remote_backend.RemoteBackend`)."""

    client: Any
    native_tool_choice: bool | None
    native_tools: bool | None

    @property
    def base_url(self) -> str:
        """The server's base URL."""
        ...

    @property
    def model_id(self) -> str:
        """The model's id on the server."""
        ...

    def openai_messages(self, messages: list[Any]) -> list[dict[str, Any]]:
        """The conversation as OpenAI chat messages."""
        ...

    def hermes_messages(self, messages: list[Any], tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The conversation with the tools in the system prompt and calls as text."""
        ...


@dataclass
class _Answer:
    """What came back: text, calls (name, raw arguments) by index, the finish reason."""

    text: str = ""
    calls: dict[int, list[str]] = field(default_factory=dict)
    finish_reason: str | None = None
    chunks: int = 0


class RemoteExchange:
    """Sends one generation request to the server and streams the answer.

    Args:
        backend: The remote backend (client, model, what the server was learned to ignore).
        request: What the loop asked for.
        stream: Where the answer goes.
        stats: The stream's statistics, filled in here.
    """

    def __init__(
        self,
        backend: RemoteHost,
        request: GenerationRequest,
        stream: GenerationStream,
        stats: GenerationStats,
    ) -> None:
        self.backend = backend
        self.request = request
        self.stream = stream
        self.stats = stats
        self.started = time.perf_counter()

    # --- deciding what to send -----------------------------------------------------------------
    def run(self) -> None:
        """Send the request and stream the answer (raises what the client raises)."""
        request = self.request
        forced = bool(request.tools and request.json_schema and request.prefix.endswith(CALL_OPEN_TAG + "\n"))
        if forced:
            self._forced_call()
        elif request.json_schema is not None:
            self._plain(self._messages(), response_format=_response_format(request.json_schema))
        elif request.tools:
            self._free_with_tools()
        else:
            self._plain(self._messages())

    def _forced_call(self) -> None:
        backend, request = self.backend, self.request
        assert request.tools is not None and request.json_schema is not None
        if backend.native_tool_choice is not False:
            name = _only_name(request.json_schema)
            choice: Any = {"type": "function", "function": {"name": name}} if name else "required"
            try:
                answer = self._send(self._messages(), tools=request.tools, tool_choice=choice, emit=False)
            except openai.BadRequestError:  # no tool support: the dialect in the prompt, below
                answer = None
            if answer is not None and answer.calls:
                backend.native_tool_choice = True
                calls = [(c[0], parse_arguments(c[1])) for _, c in sorted(answer.calls.items())]
                self._emit(call_text(calls))
                return
            if self.stream.cancelled:
                return
            backend.native_tool_choice = False  # ignored (Ollama): from now on, the fallback at once
        messages = backend.hermes_messages(request.messages, request.tools)
        self._send(messages, response_format=_response_format(request.json_schema))

    def _free_with_tools(self) -> None:
        request = self.request
        assert request.tools is not None
        if self.backend.native_tools is not False:
            try:
                answer = self._send(self._messages(), tools=request.tools, tool_choice="auto")
            except openai.BadRequestError:  # no tool support (vLLM without a tool parser)
                if self.stream.text:
                    raise
                self.backend.native_tools = False
        if self.backend.native_tools is False:  # the tools in the prompt, calls read back as text
            self._send(self.backend.hermes_messages(request.messages, request.tools))
            return
        if answer.calls:
            calls = [(c[0], parse_arguments(c[1])) for _, c in sorted(answer.calls.items())]
            self._emit(tagged_calls_text(calls))

    def _plain(self, messages: list[dict[str, Any]], **kwargs: Any) -> None:
        self._send(messages, **kwargs)

    def _messages(self) -> list[dict[str, Any]]:
        return self.backend.openai_messages(self.request.messages)

    # --- sending and reading -------------------------------------------------------------------
    def _send(self, messages: list[dict[str, Any]], *, emit: bool = True, **kwargs: Any) -> _Answer:
        """Stream one chat completion; text goes to the stream when ``emit`` (cut at stop strings)."""
        settings = self.request.settings
        body: dict[str, Any] = {
            "model": self.backend.model_id,
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": settings.max_new_tokens,
            "temperature": settings.temperature,
            "top_p": settings.top_p,
            **kwargs,
        }
        if settings.seed is not None:
            body["seed"] = settings.seed
        # Sent even when 1.0, so the server's own default penalty does not apply (vLLM and the workbench read
        # it; llama.cpp's server and Ollama ignore it).
        extra = {"repetition_penalty": settings.repetition_penalty}
        response = self.backend.client.chat.completions.create(**body, extra_body=extra)
        closer = _CloseOnCancel(self.stream, response)
        answer = _Answer()
        # The call opener is not a stop here: the server's calls come back apart from the text.
        stops = [s for s in self.request.stop_strings if s and not CALL_OPEN_TAG.startswith(s.strip())]
        held = max((len(s) - 1 for s in stops), default=0)
        try:
            for chunk in response:
                answer.chunks += 1
                if self.stream.cancelled:
                    break
                self._read_usage(chunk)
                for choice in chunk.choices or []:
                    delta = choice.delta
                    if delta is not None and delta.content:
                        answer.text += delta.content
                    for call in (delta.tool_calls if delta is not None else None) or []:
                        slot = answer.calls.setdefault(call.index or 0, ["", ""])
                        if call.function is not None:
                            slot[0] += call.function.name or ""
                            slot[1] += call.function.arguments or ""
                    if choice.finish_reason:
                        answer.finish_reason = choice.finish_reason
                if emit:
                    cut = _first_stop(answer.text, stops)
                    if cut is not None:
                        self._emit_upto(answer.text, cut)
                        self.stats.finish_reason = FinishReason.STOP_STRING
                        return answer
                    self._emit_upto(answer.text, len(answer.text) - held)
        finally:
            closer.done()
            response.close()
        if emit:
            self._emit_upto(answer.text, len(answer.text))
        if answer.chunks == 0 and not self.stream.cancelled:
            raise RemoteModelError(
                f"The server at {self.backend.base_url} sent an empty answer (no events). Check that it "
                "is an OpenAI-compatible server."
            )
        if answer.finish_reason is None and not self.stream.cancelled:
            # Every OpenAI-compatible server ends an answer with a finish reason; a cut connection does not.
            kept = " The partial answer is kept." if self.stream.text else ""
            raise RemoteModelError(
                f"The connection to {self.backend.base_url} broke in the middle of the answer.{kept} "
                "Check the server and try again."
            )
        self.stats.finish_reason = (
            FinishReason.LENGTH if answer.finish_reason == "length" else FinishReason.EOS
        )
        return answer

    def _read_usage(self, chunk: Any) -> None:
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            self.stats.prompt_tokens = int(usage.prompt_tokens or 0)
            self.stats.new_tokens = int(usage.completion_tokens or 0)

    _sent = 0

    def _emit_upto(self, text: str, end: int) -> None:
        if end > self._sent:
            self._emit(text[self._sent : end])
            self._sent = end

    def _emit(self, text: str) -> None:
        if text and self.stats.first_token_s is None:
            self.stats.first_token_s = round(time.perf_counter() - self.started, 3)
        self.stream.put(text)


class _CloseOnCancel:
    """Closes the HTTP response as soon as the stream is cancelled (a blocked read then ends)."""

    def __init__(self, stream: GenerationStream, response: Any) -> None:
        self._finished = threading.Event()
        self._thread = threading.Thread(target=self._watch, args=(stream, response), daemon=True)
        self._thread.start()

    def _watch(self, stream: GenerationStream, response: Any) -> None:
        while not self._finished.is_set():
            if stream.cancel_event.wait(_CANCEL_POLL_S):
                response.close()
                return

    def done(self) -> None:
        self._finished.set()


def _first_stop(text: str, stops: list[str]) -> int | None:
    found = [i for i in (text.find(s) for s in stops) if i != -1]
    return min(found) if found else None


def _only_name(schema: dict[str, Any]) -> str | None:
    """The tool a call schema allows, when it allows exactly one (``properties.name.const``)."""
    name = schema.get("properties", {}).get("name", {})
    return name.get("const") if isinstance(name, dict) and isinstance(name.get("const"), str) else None


def _response_format(schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": "output", "schema": schema, "strict": True}}


def call_text(calls: list[tuple[str, Any]]) -> str:
    """Calls written as the JSON that follows a forced call opener (several separated by close/open tags)."""
    return _CALL_BREAK.join(compact_json({"name": name, "arguments": arguments}) for name, arguments in calls)


def tagged_calls_text(calls: list[tuple[str, Any]]) -> str:
    """Calls written as ``<tool_call>`` blocks after a free reply."""
    return "".join(f"\n{CALL_OPEN_TAG}\n{call_text([call])}\n{CALL_CLOSE_TAG}" for call in calls)


def parse_arguments(raw: str) -> Any:
    """A call's arguments from the server: JSON if it is, else the text as the model wrote it."""
    try:
        return json.loads(raw) if raw.strip() else {}
    except json.JSONDecodeError:
        return raw
