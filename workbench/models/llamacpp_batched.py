"""The llama.cpp engine with several generations at once: :class:`BatchedLlamaCppBackend`.

Everything but running a generation is :class:`~workbench.models.llamacpp_backend.LlamaCppBackend`'s
(loading, the template, tokenizing, schemas, sampling defaults). Instead of one generation at a time
behind the model's lock, :meth:`BatchedLlamaCppBackend.start` queues the request for the model's one
:class:`~workbench.models.llamacpp_slots.SlotScheduler`, which runs up to ``parallel`` of them in each
``llama_decode`` (continuous batching). ``--parallel 1`` keeps the serial engine. Engines are loaded through this class
(:data:`workbench.models.backends.ENGINES`), whose ``load`` picks one of the two by ``--parallel``.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

from workbench.models.backend import ModelInfo
from workbench.models.generation import FinishReason, GenerationRequest, GenerationStats, GenerationStream
from workbench.models.gguf_check import GGUFInfo
from workbench.models.llamacpp_backend import LlamaCppBackend
from workbench.models.llamacpp_grammar import json_schema_grammar
from workbench.models.llamacpp_slots import Job, SlotScheduler
from workbench.models.llamacpp_vision import MediaPrompt
from workbench.models.spec import ModelSpec

#: Requests that may wait for a slot by default (``--queue``); one more is refused as busy.
DEFAULT_QUEUE = 16


class BatchedLlamaCppBackend(LlamaCppBackend):
    """A GGUF model on llama.cpp serving ``parallel`` generations at once, shared by every front door.

    Attributes:
        scheduler: The loop that runs every generation of this model.
    """

    def __init__(self, spec: ModelSpec, llm: Any, gguf: GGUFInfo, info: ModelInfo, parallel: int) -> None:
        super().__init__(spec, llm, gguf, info)
        self.scheduler = SlotScheduler(
            llm, parallel, queue_limit=spec.queue if spec.queue > 0 else DEFAULT_QUEUE
        )
        self.states = self.scheduler
        # Stop the loop before the model is freed (never while a step runs).
        self._finalizer.detach()
        self._finalizer = weakref.finalize(self, _close, self.scheduler, llm, self.scheduler.step_lock)

    @classmethod
    def made(
        cls, spec: ModelSpec, llm: Any, gguf: GGUFInfo, info: ModelInfo, parallel: int
    ) -> LlamaCppBackend:
        """This engine for ``parallel`` above 1; the serial one for 1."""
        if parallel > 1:
            return BatchedLlamaCppBackend(spec, llm, gguf, info, parallel)
        return LlamaCppBackend(spec, llm, gguf, info)

    @property
    def parallel(self) -> int:
        """Generations run together."""
        return len(self.scheduler.slots)

    @property
    def generating(self) -> bool:
        """Whether a generation runs in a slot or waits for one."""
        return self.scheduler.waiting > 0 or any(s.job is not None for s in self.scheduler.slots)

    def start(self, request: GenerationRequest) -> GenerationStream:
        """Queue a generation and return its stream at once.

        Raises:
            PromptTooLongError: If the prompt leaves no room to generate.
            ModelBusyError: If every slot is busy and the queue is full (retry shortly).
        """
        prepared = self.prepare(request)
        stream = GenerationStream()
        stream.stats = GenerationStats(prompt_tokens=prepared.prompt_tokens)
        try:
            schema = request.json_schema
            grammar = json_schema_grammar(schema, self._vocab) if schema is not None else None
        except Exception as exc:  # reported through the stream, as the serial engine does
            stream.stats.finish_reason = FinishReason.ERROR
            stream.finish(stream.stats, exc)
            return stream
        media = prepared.payload if isinstance(prepared.payload, MediaPrompt) else None  # images (issue 26)
        tokens = prepared.payload if media is None else []
        self.scheduler.submit(Job(request, tokens, prepared.max_new_tokens, stream, grammar, media=media))
        return stream


def _close(scheduler: SlotScheduler, llm: Any, lock: threading.Lock) -> None:
    scheduler.close()
    with lock:
        llm.close()
