"""Sampling settings, generation statistics and the stream a generation is read from.

These types are shared by every backend (the local transformers model today; remote servers later),
so the mode loops never depend on how the text is produced.
"""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields, replace
from enum import Enum
from typing import TYPE_CHECKING, Any

from workbench.errors import GenerationError, SettingsError, WorkbenchError

if TYPE_CHECKING:
    from workbench.messages import Message


IMAGE_MARKER = "<__media__>"
"""Where an image goes in a rendered prompt (llama.cpp's mtmd marker; other vision engines replace it with
their own). Typed by a user, it is removed from the text: only real images are marked."""


class FinishReason(str, Enum):
    """Why a generation ended (the values are what transcripts and the API show)."""

    EOS = "eos"
    LENGTH = "length"
    STOP_STRING = "stop_string"
    CANCELLED = "cancelled"
    ERROR = "error"


@dataclass
class SamplingSettings:
    """How to sample. ``temperature == 0`` means greedy decoding.

    Attributes:
        temperature: Softmax temperature; 0 for greedy.
        top_p: Nucleus sampling mass, 0 < top_p <= 1.
        max_new_tokens: Upper bound on generated tokens.
        repetition_penalty: 1.0 for none.
        seed: Seed for sampling, or None for a random one.
    """

    temperature: float = 0.7
    top_p: float = 0.9
    max_new_tokens: int = 512
    repetition_penalty: float = 1.0
    seed: int | None = None

    def __post_init__(self) -> None:
        """Check every value: the one place settings from the CLI, the pages, the API and the server meet.

        Raises:
            SettingsError: Naming the setting, the value and the allowed range.
        """
        _check_number("temperature", self.temperature, "between 0 (greedy) and 2", lambda v: 0 <= v <= 2)
        _check_number("top_p", self.top_p, "above 0 and at most 1", lambda v: 0 < v <= 1)
        _check_number(
            "repetition_penalty", self.repetition_penalty, "above 0 (1.0 means none)", lambda v: v > 0
        )
        if isinstance(self.max_new_tokens, bool) or not isinstance(self.max_new_tokens, int):
            raise SettingsError(f"max_new_tokens must be a whole number, not {self.max_new_tokens!r}.")
        if self.max_new_tokens < 1:
            raise SettingsError(f"max_new_tokens must be at least 1, not {self.max_new_tokens}.")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)):
            raise SettingsError(f"seed must be a whole number (or unset), not {self.seed!r}.")

    def with_(self, **changes: Any) -> SamplingSettings:
        """Return a copy with some fields changed (``None`` values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as a plain dict."""
        return asdict(self)


def _check_number(name: str, value: Any, allowed: str, ok: Callable[[float], bool]) -> None:
    """Raise a :class:`SettingsError` unless ``value`` is a finite number that ``ok`` accepts."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SettingsError(f"{name} must be a finite number {allowed}, not {value!r}.")
    if not ok(float(value)):
        raise SettingsError(f"{name} must be {allowed}, not {value!r}.")


@dataclass
class GenerationRequest:
    """One generation: a rendered prompt (or, for chat servers, the messages) and how to continue it.

    Attributes:
        prompt: The full prompt text, as the dialect rendered it (the prefix included).
        settings: Sampling settings.
        stop_strings: Generation ends once the output contains one of these (it is cut off).
        json_schema: If set, the output is constrained to JSON valid against this schema.
        messages: The conversation the prompt was rendered from (backends that take messages use it); for a
            ``vision`` backend each observation holds exactly the output images given, with notes on the
            others (:mod:`workbench.prompt_images`).
        tools: The tool schemas shown to the model, if any.
        prefix: Text forced at the start of the reply (already at the end of ``prompt``).
        images: The user's images (PNG or JPEG bytes) and the latest outputs' (checked PNG), in prompt order; ``prompt`` holds
            :data:`IMAGE_MARKER` once for each, where it goes. Only for backends with ``vision``.
        literal_spans: Character spans of ``prompt`` that messages wrote with a control token's text
            (``<|im_start|>``): engines tokenize them as plain text, never as the control token
            (:mod:`workbench.models.prompt_literals`).
    """

    prompt: str
    settings: SamplingSettings = field(default_factory=SamplingSettings)
    stop_strings: tuple[str, ...] = ()
    json_schema: dict[str, Any] | None = None
    messages: list[Message] = field(default_factory=list)
    tools: list[dict[str, Any]] | None = None
    prefix: str = ""
    images: list[bytes] = field(default_factory=list)
    literal_spans: tuple[tuple[int, int], ...] = ()


@dataclass
class GenerationStats:
    """What a generation cost.

    Attributes:
        prompt_tokens: Tokens in the prompt.
        new_tokens: Tokens generated.
        seconds: Wall time from start of decoding to the end (excludes waiting for the model lock).
        first_token_s: Time to the first token, from the start of decoding.
        waited_s: Time spent waiting for another session's generation to finish.
        finish_reason: ``eos``, ``length``, ``stop_string``, ``cancelled`` or ``error``.
    """

    prompt_tokens: int = 0
    new_tokens: int = 0
    seconds: float = 0.0
    first_token_s: float | None = None
    waited_s: float = 0.0
    finish_reason: str = FinishReason.EOS

    @property
    def tokens_per_s(self) -> float:
        """Decode speed in tokens per second."""
        return self.new_tokens / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        """One line for the UI: tokens, tokens/s and why it ended."""
        line = f"{self.new_tokens} tokens · {self.tokens_per_s:.1f} tok/s"
        if self.first_token_s is not None:
            line += f" · first token {self.first_token_s:.2f} s"
        if self.finish_reason == FinishReason.CANCELLED:
            line += " · stopped"
        elif self.finish_reason == FinishReason.LENGTH:
            line += " · hit max new tokens"
        return line

    def to_dict(self) -> dict[str, Any]:
        """Return the stats as a plain dict (with tokens_per_s)."""
        data = asdict(self)
        data["finish_reason"] = str(FinishReason(self.finish_reason).value)
        return {**data, "tokens_per_s": round(self.tokens_per_s, 2)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GenerationStats:
        """Rebuild stats from :meth:`to_dict` output (unknown keys are ignored)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def failure_message(error: BaseException) -> str:
    """What a user reads when a generation failed: what happened, then what to do, each said once.

    An error of ours already says what to do; to others "Try again." is added, and lowering max new
    tokens is advised only when the cause was memory (the one thing a shorter answer helps with).
    """
    text = str(error).strip() or type(error).__name__
    if not text.endswith((".", "!", "?")):
        text += "."
    if isinstance(error, WorkbenchError):
        return f"Generation failed: {text}"
    if "memory" in text.lower():
        return f"Generation failed: {text} Try again, or lower max new tokens."
    return f"Generation failed: {text} Try again."


_DONE = object()
# How long stopping waits for the generating thread to notice (it checks after every token).
STOP_WAIT_S = 30.0


class GenerationStream:
    """Text chunks of one running generation, read from any thread.

    The producer (a backend's worker thread) calls :meth:`put`, then :meth:`finish` once. The consumer
    iterates over chunks; iteration never blocks forever. The full text and the stats are kept on the
    stream itself, so they survive a consumer that went away (a stopped Streamlit script).
    """

    def __init__(self, poll_s: float = 0.1) -> None:
        self._queue: queue.Queue[object] = queue.Queue()
        self._poll_s = poll_s
        self.cancel_event = threading.Event()
        self.done = threading.Event()
        self.text = ""
        self.stats = GenerationStats()
        self.error: BaseException | None = None
        #: Requests ahead of this one in the queue for a free slot; None when it is not waiting.
        self.ahead: int | None = None
        self._callbacks: list[Callable[[GenerationStream], None]] = []

    # --- producer side ------------------------------------------------------------------------
    def put(self, chunk: str) -> None:
        """Add a chunk of generated text."""
        if chunk:
            self.text += chunk
            self._queue.put(chunk)

    def finish(self, stats: GenerationStats, error: BaseException | None = None) -> None:
        """Mark the generation as ended (normally, cancelled or failed) and wake the consumer."""
        self.stats = stats
        self.error = error
        self.done.set()
        self._queue.put(_DONE)

    # --- consumer side ------------------------------------------------------------------------
    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called."""
        return self.cancel_event.is_set()

    def cancel(self) -> None:
        """Ask the producer to stop after the current token."""
        self.cancel_event.set()

    def waiting_notice(self) -> str | None:
        """The notice "Waiting for a free slot (n ahead)" while the request waits for the model, else None."""
        ahead = self.ahead
        if ahead is None or self.done.is_set():
            return None
        return f"Waiting for a free slot ({ahead} ahead)"

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the end of the generation; return whether it ended."""
        return self.done.wait(timeout)

    def halt(self, timeout: float = STOP_WAIT_S) -> bool:
        """Cancel the generation if it still runs and wait for the producer to notice (a token or two).

        Returns:
            Whether the generation has ended.
        """
        if not self.done.is_set():
            self.cancel()
        return self.wait(timeout)

    def __iter__(self) -> Iterator[str]:
        while True:
            try:
                item = self._queue.get(timeout=self._poll_s)
            except queue.Empty:
                continue
            if item is _DONE:
                if self.error is not None:
                    raise GenerationError(failure_message(self.error)) from self.error
                return
            assert isinstance(item, str)
            yield item

    def result(self, timeout: float | None = None) -> str:
        """Wait for the end and return the whole text.

        Raises:
            GenerationError: If the generation failed or did not end within ``timeout``.
        """
        if not self.done.wait(timeout):
            raise GenerationError(f"Generation did not finish within {timeout} s; it was cancelled.")
        if self.error is not None:
            raise GenerationError(failure_message(self.error)) from self.error
        return self.text
