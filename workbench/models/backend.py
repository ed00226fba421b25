"""The seam every engine plugs into: :class:`Backend`, what it can do, and the shared generation loop.

A backend continues a prompt (or a list of messages, for a remote chat server). The mode loops never
know which one they hold: they read :class:`Capabilities` flags, never a backend's name.

:class:`SerialBackend` holds the part every in-process engine shares: one generation at a time behind a
lock (a second session's request waits, and gives up at once if it is stopped while waiting), the worker
thread, cancel, timing and the stats. An engine writes only :meth:`SerialBackend.prepare` (tokenize and
check the context) and :meth:`SerialBackend.decode` (produce tokens).
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import Any, Protocol, runtime_checkable

from workbench.dialects.template import ChatTemplateSource
from workbench.errors import PromptTooLongError
from workbench.models.decode_thread import GENERATE_THREAD, DecodeThread
from workbench.models.generation import (
    FinishReason,
    GenerationRequest,
    GenerationStats,
    GenerationStream,
    SamplingSettings,
)
from workbench.models.spec import ModelSpec

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do; the loops read these flags instead of testing names.

    Attributes:
        constrained_json: Can hold its output to a JSON schema (tool calls, response formats).
        prompt_prefix: Can continue a prompt that already holds the start of the reply (a forced
            ``<tool_call>`` or code fence). Chat servers that take messages cannot.
        opens_tool_calls: The model opens a tool call on its own when one would help; tiny models never do,
            so the Tool page defaults to ``required`` for them.
        forces_code: A reply can be forced to be code (``--force-code``): by a prefix that opens a python
            block, or, on a chat server, by a forced call of the ``interpreter`` tool.
        vision: Reads images: the user's images and the latest images of tool and code outputs arrive as
            :attr:`GenerationRequest.images`, each marked in the prompt by
            :data:`workbench.models.generation.IMAGE_MARKER` (chat servers get them as ``image_url`` parts of
            ``request.messages``). A model without it refuses a user's images before generating, and gets
            outputs' images as their text only.
    """

    constrained_json: bool = True
    prompt_prefix: bool = True
    opens_tool_calls: bool = True
    forces_code: bool = True
    vision: bool = False


@dataclass(frozen=True)
class ModelInfo:
    """What the sidebar, ``ask --json`` and the API's model list show about a loaded model.

    Attributes:
        label: A short name.
        source: The spec's source (``embedded``, a path, a URL).
        loaded_from: The file or folder the weights came from.
        backend: The engine's name (``transformers``, ...).
        device: Where it runs (``cpu``, ``cuda``, ``mps``, ``remote``).
        dtype: The weights' precision as loaded (``float32``, ``Q4_1``, ...).
        context_length: The context window in tokens.
        load_seconds: Wall time of the load.
        architecture: The model's architecture name.
        quantization: How the weights are quantized, or None.
        threads: CPU threads used for decoding, or None when not applicable.
        cpu_kernels: llama.cpp's CPU variant in use (``haswell``, ``icelake``, ``built-in``), or None.
        projector: llama.cpp's multimodal projector file (``--mmproj``, or found beside the model), through
            which the model reads images; None without one.
    """

    label: str
    source: str
    loaded_from: str
    backend: str
    device: str
    dtype: str
    context_length: int
    load_seconds: float
    architecture: str
    quantization: str | None = None
    threads: int | None = None
    cpu_kernels: str | None = None
    projector: str | None = None

    def summary(self) -> str:
        """One line for the sidebar: name, engine, device, precision, context."""
        parts = [f"**{self.label}**", self.backend, self.device, self.dtype]
        if self.quantization:
            parts.append(self.quantization)
        if self.threads:
            parts.append(f"{self.threads} thread{'s' if self.threads > 1 else ''}")
        if self.cpu_kernels:
            parts.append(f"{self.cpu_kernels} kernels")
        parts.append(f"context {self.context_length}")
        if self.projector:
            parts.append(f"reads images ({self.projector})")
        return " · ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """Return the info as a plain dict."""
        return asdict(self)


@runtime_checkable
class Backend(Protocol):
    """Everything the chat model and the mode loops use of an engine."""

    spec: ModelSpec
    info: ModelInfo
    capabilities: Capabilities

    @property
    def template(self) -> ChatTemplateSource:
        """The chat template the dialects render with (see :mod:`workbench.dialects.template`)."""
        ...

    @property
    def context_length(self) -> int:
        """The context window in tokens."""
        ...

    def count_tokens(self, text: str) -> int:
        """Return the number of tokens of a text."""
        ...

    def default_settings(self) -> SamplingSettings:
        """Sampling defaults suited to this model."""
        ...

    def start(self, request: GenerationRequest) -> GenerationStream:
        """Start generating in the background and return the stream to read.

        Raises:
            PromptTooLongError: If the prompt leaves no room to generate.
        """
        ...


@dataclass
class PreparedPrompt:
    """A request made ready by a backend before its worker starts.

    Attributes:
        prompt_tokens: Tokens in the prompt.
        max_new_tokens: Tokens that may be generated (settings capped by the room left in the context).
        payload: Whatever the backend's :meth:`SerialBackend.decode` needs (token ids, tensors).
    """

    prompt_tokens: int
    max_new_tokens: int
    payload: Any = None


class SerialBackend(ABC):
    """The shared lock, worker, cancel and stats loop of in-process engines.

    Generations run one at a time: a second session's request waits for the first to end, so each
    gets its own correct answer; the wait is reported as ``waited_s`` in the stats.

    Attributes:
        spec: What was asked for.
        info: What was loaded.
        capabilities: What this engine can do.
    """

    capabilities = Capabilities()

    def __init__(self, spec: ModelSpec, info: ModelInfo) -> None:
        self.spec = spec
        self.info = info
        self._lock = threading.Lock()
        self._waiting_lock = threading.Lock()
        self._waiting = 0  # generations waiting for the lock
        self._decode_thread = DecodeThread()  # every decode in one thread: CUDA keeps per-thread state

    @property
    def context_length(self) -> int:
        """The context window in tokens."""
        return self.info.context_length

    # --- what an engine writes ----------------------------------------------------------------
    @property
    @abstractmethod
    def template(self) -> ChatTemplateSource:
        """The chat template the dialects render with."""

    @abstractmethod
    def count_tokens(self, text: str) -> int:
        """Return the number of tokens of a text."""

    @abstractmethod
    def default_settings(self) -> SamplingSettings:
        """Sampling defaults suited to this model."""

    @abstractmethod
    def prepare(self, request: GenerationRequest) -> PreparedPrompt:
        """Tokenize the prompt and size the reply (use :meth:`room_for`); runs in the caller's thread.

        Raises:
            PromptTooLongError: If the prompt leaves no room to generate.
        """

    @abstractmethod
    def decode(
        self,
        request: GenerationRequest,
        prepared: PreparedPrompt,
        stream: GenerationStream,
        stats: GenerationStats,
    ) -> None:
        """Generate, holding the lock: pass text to :meth:`emit`, stop when ``stream.cancelled``.

        Set ``stats.new_tokens`` and ``stats.finish_reason`` (``eos``, ``length``, ``stop_string``;
        ``cancelled`` is set for you when the stream was cancelled). Exceptions are reported to the
        consumer through the stream.
        """

    def after_decode(self) -> None:
        """Tidy up after a generation, holding the lock, once its consumer has the whole answer.

        Skipped when another generation waits for the lock, so tidying never delays one; an engine
        must then do without (llama.cpp evaluates the cells it needs at the next prompt instead). The
        default does nothing; llama.cpp settles the answer's cache cells here (see
        :meth:`workbench.models.llamacpp_state.ConversationStates.settle`).
        """
        return None

    # --- shared -------------------------------------------------------------------------------
    @property
    def generating(self) -> bool:
        """Whether a generation (or the tidying after one) holds the model now."""
        return self._lock.locked()

    def room_for(self, prompt_tokens: int, request: GenerationRequest) -> int:
        """The number of tokens that may be generated after a prompt of ``prompt_tokens``.

        Raises:
            PromptTooLongError: If the prompt leaves no room to generate.
        """
        room = self.context_length - prompt_tokens
        if room < 1:
            raise PromptTooLongError(
                f"The conversation is {prompt_tokens} tokens long but the model's context holds "
                f"{self.context_length}. Clear the chat, shorten the message or the system prompt."
            )
        return max(1, min(request.settings.max_new_tokens, room))

    def emit(self, stream: GenerationStream, stats: GenerationStats, text: str) -> None:
        """Pass generated text to the consumer, recording the time to the first token."""
        if text and stats.first_token_s is None:
            stats.first_token_s = round(time.perf_counter() - self._decode_started, 3)
        stream.put(text)

    def start(self, request: GenerationRequest) -> GenerationStream:
        """Start a generation in a worker thread and return its stream.

        Raises:
            PromptTooLongError: If the prompt leaves no room to generate.
        """
        prepared = self.prepare(request)
        stream = GenerationStream()
        stream.stats = GenerationStats(prompt_tokens=prepared.prompt_tokens)
        with self._waiting_lock:
            if self._lock.locked():  # another generation holds the model: "Waiting for a free slot"
                stream.ahead = self._waiting
        thread = threading.Thread(
            target=self._run, args=(request, prepared, stream), name=GENERATE_THREAD, daemon=True
        )
        thread.start()
        return stream

    def _run(self, request: GenerationRequest, prepared: PreparedPrompt, stream: GenerationStream) -> None:
        stats = stream.stats
        queued = time.perf_counter()
        with self._waiting_lock:
            self._waiting += 1
        try:
            # Wait for another session's generation to end, but give up at once if this one is stopped.
            while not (acquired := self._lock.acquire(timeout=0.1)):
                if stream.cancelled:
                    break
        finally:
            with self._waiting_lock:
                self._waiting -= 1
        stream.ahead = None
        if acquired:
            try:
                stats.waited_s = round(time.perf_counter() - queued, 3)
                if not stream.cancelled:
                    self._decode_thread.run(lambda: self._decode_locked(request, prepared, stream, stats))
                    if not self._waiting:  # tidying up must not delay a generation that waits
                        self._decode_thread.run(self._after_decode)
                    return
            finally:
                self._lock.release()
        stats.waited_s = round(time.perf_counter() - queued, 3)
        stats.finish_reason = FinishReason.CANCELLED
        stream.finish(stats)

    def _decode_locked(
        self,
        request: GenerationRequest,
        prepared: PreparedPrompt,
        stream: GenerationStream,
        stats: GenerationStats,
    ) -> None:
        error: BaseException | None = None
        self._decode_started = started = time.perf_counter()
        try:
            self.decode(request, prepared, stream, stats)
            if stream.cancelled:
                stats.finish_reason = FinishReason.CANCELLED
        except Exception as exc:  # reported to the consumer through the stream
            error = exc
            stats.finish_reason = FinishReason.ERROR
        stats.seconds = round(time.perf_counter() - started, 3)
        stream.finish(stats, error)

    def _after_decode(self) -> None:
        try:
            self.after_decode()
        except Exception:  # the answer is delivered; the engine recovers at the next generation
            logger.exception("Tidying up after a generation failed")

    _decode_started: float = 0.0
