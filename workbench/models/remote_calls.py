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
from workbench.errors import RemoteModelError
from workbench.models.generation import FinishReason, GenerationRequest, GenerationStats, GenerationStream
from workbench.models.remote_forced import CODE_OPENER, ForcedCall, call_text, decode_arguments
from workbench.models.remote_profile import ServerProfile, names_any

_CANCEL_POLL_S = 0.05


class RemoteHost(Protocol):
    """What an exchange uses of the remote backend (see :class:`~workbench.models.remote_backend.RemoteBackend`)."""

    client: Any
    profile: ServerProfile

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
        backend: The remote backend (client, model, what the server was seen to accept).
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
        self.profile = backend.profile
        self.request = request
        self.stream = stream
        self.stats = stats
        self.started = time.perf_counter()

    @property
    def cancelled(self) -> bool:
        """Whether the consumer stopped the generation."""
        return self.stream.cancelled

    # --- deciding what to send -----------------------------------------------------------------
    def run(self) -> None:
        """Send the request and stream the answer (raises what the client raises)."""
        request = self.request
        if request.tools and request.json_schema and request.prefix.endswith(CALL_OPEN_TAG + "\n"):
            ForcedCall(request.tools, request.json_schema).run(self)
        elif request.prefix.endswith(CODE_OPENER) and not request.tools:
            ForcedCall.for_code().run(self)
        elif request.json_schema is not None:
            ForcedCall.for_json(request.json_schema).run(self)
        elif request.tools:
            self._free_with_tools()
        else:
            self._send(self.openai_messages())

    def _free_with_tools(self) -> None:
        request, profile = self.request, self.profile
        assert request.tools is not None
        if profile.tools is not False:
            try:
                answer = self._send(self.openai_messages(), tools=request.tools, tool_choice="auto")
            except openai.APIStatusError as exc:  # no tool support (vLLM without a tool parser)
                if self.stream.text or not names_any(exc, ("tools", "tool_choice")):
                    raise
                profile.tools = False
            else:
                profile.tools = True
                if answer.calls:
                    calls = [(c[0], parse_arguments(c[1])) for _, c in sorted(answer.calls.items())]
                    self.emit(tagged_calls_text(calls))
                return
        # The tools in the prompt, calls read back as text.
        self._send(self.text_messages(request.tools))

    # --- the messages --------------------------------------------------------------------------
    def openai_messages(self) -> list[dict[str, Any]]:
        """The conversation as OpenAI chat messages (content "" beside calls, if null was refused)."""
        messages = self.backend.openai_messages(self.request.messages)
        return _no_null_content(messages) if self.profile.null_content is False else messages

    def text_messages(self, tools: list[dict[str, Any]], note: str = "") -> list[dict[str, Any]]:
        """The conversation with the tools (and ``note``) in the system prompt, calls and results as text."""
        messages = self.backend.hermes_messages(self.request.messages, tools)
        if note:
            if messages and messages[0].get("role") == "system":
                messages[0] = {**messages[0], "content": f"{messages[0]['content']}\n\n{note}".strip()}
            else:
                messages.insert(0, {"role": "system", "content": note})
        return messages

    def send(self, messages: list[dict[str, Any]], **kwargs: Any) -> _Answer:
        """Stream one chat completion without passing its text on (a forced call is checked first)."""
        return self._send(messages, emit=False, **kwargs)

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
        response = self._create(body, extra)
        closer = _CloseOnCancel(self.stream, response)
        answer = _Answer()
        # The call opener is not a stop here: the server's calls come back apart from the text.
        stops = [s for s in self.request.stop_strings if s and not CALL_OPEN_TAG.startswith(s.strip())]
        held = max((len(s) - 1 for s in stops), default=0)
        try:
            for chunk in _chunks(response, self.backend.base_url, self.stream):
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
                            name = call.function.name or ""
                            # llama-cpp-python's server repeats the whole name in every chunk.
                            slot[0] = slot[0] if name == slot[0] else slot[0] + name
                            slot[1] += _argument_text(call.function.arguments)
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
            raise RemoteModelError(stopped_answering(self.backend.base_url, bool(self.stream.text)))
        self.stats.finish_reason = (
            FinishReason.LENGTH if answer.finish_reason == "length" else FinishReason.EOS
        )
        return answer

    def _create(self, body: dict[str, Any], extra: dict[str, Any]) -> Any:
        """Open the stream; a server that refuses null content beside calls gets "" from then on."""
        create = self.backend.client.chat.completions.create
        try:
            return create(**body, extra_body=extra)
        except openai.APIStatusError as exc:
            fixed = _no_null_content(body["messages"])
            if fixed == body["messages"] or not names_any(exc, ("content",)):
                raise
            self.profile.null_content = False
            return create(**{**body, "messages": fixed}, extra_body=extra)

    def _read_usage(self, chunk: Any) -> None:
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            self.stats.prompt_tokens = int(usage.prompt_tokens or 0)
            self.stats.new_tokens = int(usage.completion_tokens or 0)

    _sent = 0

    def _emit_upto(self, text: str, end: int) -> None:
        if end > self._sent:
            self.emit(text[self._sent : end])
            self._sent = end

    def emit(self, text: str) -> None:
        """Pass text on to the stream (timing the first piece)."""
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


def _chunks(response: Any, url: str, stream: GenerationStream) -> Any:
    """The response's chunks; a connection cut while reading (the server died) says so."""
    try:
        yield from response
    except (openai.APIError, ValueError):  # the client's own errors; not JSON (ValueError) is reported apart
        raise
    except Exception as exc:  # the HTTP library's read errors: the server went away
        if stream.cancelled:  # Stop closed the response under the read
            return
        raise RemoteModelError(stopped_answering(url, bool(stream.text))) from exc


def _argument_text(value: Any) -> str:
    """A piece of a call's arguments as text (some servers send an object or a number, not a string)."""
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _first_stop(text: str, stops: list[str]) -> int | None:
    found = [i for i in (text.find(s) for s in stops) if i != -1]
    return min(found) if found else None


def tagged_calls_text(calls: list[tuple[str, Any]]) -> str:
    """Calls written as ``<tool_call>`` blocks after a free reply."""
    return "".join(f"\n{CALL_OPEN_TAG}\n{call_text([call])}\n{CALL_CLOSE_TAG}" for call in calls)


def parse_arguments(raw: str) -> Any:
    """A call's arguments from the server: an object (decoded from a JSON string if need be), else the text."""
    decoded = decode_arguments(raw)
    return decoded if decoded is not None else raw


def stopped_answering(url: str, received: bool) -> str:
    """The message for a server that went away (killed, crashed, cut off) during an answer."""
    if received:
        return (
            f"The server at {url} stopped answering in the middle of the answer; the partial answer is kept. "
            "Check that it is running."
        )
    return f"The server at {url} stopped answering before the answer began. Check that it is running."


def _no_null_content(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages with "" for null content (an assistant message that only calls)."""
    return [{**m, "content": ""} if m.get("content", "") is None else m for m in messages]
