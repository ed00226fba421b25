"""The local transformers model: one loaded copy, generations serialised by a lock."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import torch
from transformers import (
    LogitsProcessorList,
    StoppingCriteria,
    StoppingCriteriaList,
    TextStreamer,
)

from workbench.errors import PromptTooLongError
from workbench.models.devices import resolve_device, resolve_dtype
from workbench.models.generation import (
    GenerationRequest,
    GenerationStats,
    GenerationStream,
    SamplingSettings,
)
from workbench.models.loading import ProgressCallback, load_tokenizer_and_model
from workbench.models.spec import EMBEDDED, ModelSpec


@dataclass(frozen=True)
class ModelInfo:
    """What the sidebar shows about a loaded model."""

    label: str
    source: str
    loaded_from: str
    device: str
    dtype: str
    context_length: int
    load_seconds: float
    architecture: str


class _CancelCriterion(StoppingCriteria):
    """Stops generation as soon as the stream is cancelled (checked after every token)."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> bool:
        return self.event.is_set()


class _StreamWriter(TextStreamer):
    """Feeds decoded text into a :class:`GenerationStream` from the generating thread itself."""

    def __init__(
        self, tokenizer: Any, target: GenerationStream, stats: GenerationStats, started: float
    ) -> None:
        super().__init__(tokenizer, skip_prompt=True, skip_special_tokens=True)
        self.target = target
        self.stats = stats
        self.started = started

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        if text and self.stats.first_token_s is None:
            self.stats.first_token_s = round(time.perf_counter() - self.started, 3)
        self.target.put(text)


class LocalModel:
    """A transformers model and its tokenizer, loaded once and shared by every page and session.

    Generations run one at a time (a lock): a second session's request waits for the first to end,
    so each gets its own correct answer. Waiting time is reported in :class:`GenerationStats`.
    """

    def __init__(self, spec: ModelSpec, tokenizer: Any, model: Any, info: ModelInfo) -> None:
        self.spec = spec
        self.tokenizer = tokenizer
        self.model = model
        self.info = info
        self._lock = threading.Lock()
        self._grammar_compiler: Any = None

    @classmethod
    def load(cls, spec: ModelSpec, progress: ProgressCallback | None = None) -> LocalModel:
        """Load a model (see :func:`workbench.models.loading.load_tokenizer_and_model`).

        Raises:
            ModelError: With a message naming the problem and the fix.
        """
        started = time.perf_counter()
        device = resolve_device(spec.device)
        dtype = resolve_dtype(spec.dtype, device)
        tokenizer, model, folder = load_tokenizer_and_model(spec, device, dtype, progress)
        config = model.config
        context = int(
            getattr(config, "max_position_embeddings", 0) or getattr(config, "seq_length", 0) or 2048
        )
        info = ModelInfo(
            label=spec.label,
            source=spec.source,
            loaded_from=folder,
            device=device,
            dtype=str(dtype).removeprefix("torch."),
            context_length=context,
            load_seconds=round(time.perf_counter() - started, 2),
            architecture=(getattr(config, "architectures", None) or [config.model_type])[0],
        )
        return cls(spec, tokenizer, model, info)

    # --- TextBackend ----------------------------------------------------------------------------
    @property
    def context_length(self) -> int:
        """The context window in tokens."""
        return self.info.context_length

    def count_tokens(self, text: str) -> int:
        """Number of tokens of ``text`` (special tokens in the text count as one each)."""
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def default_settings(self) -> SamplingSettings:
        """Sampling defaults for this model: its generation_config where set, else ours."""
        if self.spec.source == EMBEDDED:
            # SmolLM2's model card suggests a low temperature; a mild penalty stops loops.
            return SamplingSettings(temperature=0.2, top_p=0.9, max_new_tokens=512, repetition_penalty=1.1)
        config = getattr(self.model, "generation_config", None)
        base = SamplingSettings()
        if config is None:
            return base
        return base.with_(
            temperature=getattr(config, "temperature", None) if getattr(config, "do_sample", False) else None,
            top_p=getattr(config, "top_p", None),
            repetition_penalty=getattr(config, "repetition_penalty", None),
        )

    def start(self, request: GenerationRequest) -> GenerationStream:
        """Start a generation in a worker thread and return its stream.

        Raises:
            PromptTooLongError: If the prompt leaves no room to generate.
        """
        inputs = self.tokenizer(request.prompt, return_tensors="pt", add_special_tokens=False)
        prompt_tokens = int(inputs["input_ids"].shape[1])
        room = self.context_length - prompt_tokens
        if room < 1:
            raise PromptTooLongError(
                f"The conversation is {prompt_tokens} tokens long but the model's context holds "
                f"{self.context_length}. Clear the chat, shorten the message or the system prompt."
            )
        max_new = max(1, min(request.settings.max_new_tokens, room))
        stream = GenerationStream()
        stream.stats = GenerationStats(prompt_tokens=prompt_tokens)
        thread = threading.Thread(
            target=self._run, args=(request, inputs, max_new, stream), name="workbench-generate", daemon=True
        )
        thread.start()
        return stream

    # --- internals ------------------------------------------------------------------------------
    def _logits_processors(self, schema: dict[str, Any] | None) -> LogitsProcessorList:
        processors = LogitsProcessorList()
        if schema is not None:
            from workbench.models.constrained import json_schema_processor

            processors.append(json_schema_processor(self, schema))
        return processors

    def _run(self, request: GenerationRequest, inputs: Any, max_new: int, stream: GenerationStream) -> None:
        stats = stream.stats
        queued = time.perf_counter()
        # Wait for another session's generation to end, but give up at once if this one is stopped.
        while not self._lock.acquire(timeout=0.1):
            if stream.cancelled:
                break
        else:
            error: BaseException | None = None
            try:
                stats.waited_s = round(time.perf_counter() - queued, 3)
                if not stream.cancelled:
                    started = time.perf_counter()
                    try:
                        self._generate(request, inputs, max_new, stream, stats, started)
                    except Exception as exc:  # reported to the consumer through the stream
                        error = exc
                        stats.finish_reason = "error"
                    stats.seconds = round(time.perf_counter() - started, 3)
                    stream.finish(stats, error)
                    return
            finally:
                self._lock.release()
        stats.waited_s = round(time.perf_counter() - queued, 3)
        stats.finish_reason = "cancelled"
        stream.finish(stats)

    def _generate(
        self,
        request: GenerationRequest,
        inputs: Any,
        max_new: int,
        stream: GenerationStream,
        stats: GenerationStats,
        started: float,
    ) -> None:
        settings = request.settings
        streamer = _StreamWriter(self.tokenizer, stream, stats, started)
        kwargs: dict[str, Any] = {
            **{k: v.to(self.model.device) for k, v in inputs.items()},
            "max_new_tokens": max_new,
            "streamer": streamer,
            "stopping_criteria": StoppingCriteriaList([_CancelCriterion(stream.cancel_event)]),
            "logits_processor": self._logits_processors(request.json_schema),
            "repetition_penalty": settings.repetition_penalty,
            "pad_token_id": self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
        }
        if request.stop_strings:
            kwargs["stop_strings"] = list(request.stop_strings)
            kwargs["tokenizer"] = self.tokenizer
        if settings.temperature > 0:
            kwargs.update(do_sample=True, temperature=settings.temperature, top_p=settings.top_p, top_k=0)
            if settings.seed is not None:
                torch.manual_seed(settings.seed)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        with torch.inference_mode():
            output = self.model.generate(**kwargs)
        sequence = output[0]
        stats.new_tokens = int(sequence.shape[0]) - stats.prompt_tokens
        last = int(sequence[-1]) if stats.new_tokens else None
        eos = self.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos]) | {self.tokenizer.eos_token_id}
        if stream.cancelled:
            stats.finish_reason = "cancelled"
        elif last in eos_ids:
            stats.finish_reason = "eos"
        elif request.stop_strings and any(s in stream.text for s in request.stop_strings):
            stats.finish_reason = "stop_string"
        elif stats.new_tokens >= max_new:
            stats.finish_reason = "length"
