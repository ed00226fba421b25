"""One slot of the llama.cpp scheduler: the :class:`Job` it runs, its sampler, its stop rules and stats.

A :class:`Slot` is a llama.cpp sequence (its own KV cells) and the job running in it. The job carries
everything that is that request's own: its sampler chain and grammar, its seed, its stop strings, its
cancel flag (on the stream) and its stats. :class:`~workbench.models.llamacpp_slots.SlotScheduler` owns
the slots; this module only knows one of them at a time.
"""

from __future__ import annotations

import codecs
import time
from dataclasses import dataclass, field
from typing import Any

from workbench.models.generation import FinishReason, GenerationRequest, GenerationStats, GenerationStream


@dataclass(eq=False)
class Job:
    """One generation waiting for, or holding, a slot.

    Attributes:
        request: What to generate.
        tokens: The prompt's token ids.
        max_new_tokens: Tokens that may be generated.
        stream: Where the text goes.
        grammar: The constrained call's grammar (a ``LlamaGrammar``), or None.
        media: A prompt with images (a :class:`~workbench.models.llamacpp_vision.MediaPrompt`), evaluated
            whole when the job takes its slot; ``tokens`` is then empty and its cells are never kept.
    """

    request: GenerationRequest
    tokens: list[int]
    max_new_tokens: int
    stream: GenerationStream
    grammar: Any = None
    media: Any = None
    queued_at: float = field(default_factory=time.perf_counter)
    started_at: float = 0.0
    sampler: Any = None
    decoder: Any = None
    #: The next prompt position to evaluate; ``len(tokens)`` once the prompt is read.
    read: int = 0
    #: The token sampled last, whose cells the next step writes.
    next_token: int = -1

    def start_sampling(self, llm: Any, lib: Any) -> None:
        """Build this job's sampler (with its seed and grammar) and text decoder.

        Args:
            llm: The ``llama_cpp.Llama`` the job runs on.
            lib: The ``llama_cpp`` module.
        """
        settings = self.request.settings
        greedy = settings.temperature <= 0
        llm.set_seed(settings.seed if settings.seed is not None else lib.LLAMA_DEFAULT_SEED)
        # The chain llama-cpp-python's generate() builds, so an answer is the same as on the serial path.
        self.sampler = llm._init_sampler(
            temp=0.0 if greedy else settings.temperature,
            top_p=1.0 if greedy else settings.top_p,
            top_k=0,
            min_p=0.0,
            typical_p=1.0,
            repeat_penalty=settings.repetition_penalty,
            grammar=self.grammar,
        )
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.stream.stats.finish_reason = FinishReason.LENGTH

    def sample(self, llm: Any, lib: Any, vocab: Any, row: int) -> str | None:
        """Sample the next token from the batch's ``row`` of logits and stream its text.

        Returns:
            Why the job ends now (a :class:`FinishReason`), or None to go on.
        """
        stats = self.stream.stats
        token = self.sampler.sample(llm._ctx, row)
        if lib.llama_vocab_is_eog(vocab, token):
            return FinishReason.EOS
        stats.new_tokens += 1
        self.next_token = token  # its cells are written by the next step
        piece = self.decoder.decode(llm.detokenize([token]))
        if piece:
            if stats.first_token_s is None:
                stats.first_token_s = round(time.perf_counter() - self.started_at, 3)
            self.stream.put(piece)
        stops = self.request.stop_strings
        longest = max((len(s) for s in stops), default=0)
        if stops and any(s in self.stream.text[-(len(piece) + longest) :] for s in stops):
            return FinishReason.STOP_STRING
        if self.stream.cancelled:
            return FinishReason.CANCELLED
        if stats.new_tokens >= self.max_new_tokens:
            return FinishReason.LENGTH
        return None

    def end(self, reason: str, error: BaseException | None = None) -> None:
        """Flush the decoder and finish the stream with this job's stats."""
        if self.decoder is not None:
            tail = self.decoder.decode(b"", final=True)
            if tail:
                self.stream.put(tail)
        self.stream.finish(self.stats(reason), error)

    def stats(self, reason: str) -> GenerationStats:
        """The stream's stats with ``reason`` and the time spent (running, or waiting if it never ran)."""
        stats = self.stream.stats
        stats.finish_reason = reason
        if self.started_at:
            stats.seconds = round(time.perf_counter() - self.started_at, 3)
        else:
            stats.waited_s = round(time.perf_counter() - self.queued_at, 3)
        return stats


@dataclass(eq=False)
class Slot:
    """A llama.cpp sequence and the job it runs.

    Attributes:
        seq: The sequence id.
        cached: The tokens whose cells the sequence holds, in order.
        settled: How many of ``cached`` were evaluated in batches of two or more (reusable).
        job: The job running in it, or None when free.
        used_at: When it last took a job (the least recently used free slot is taken first).
    """

    seq: int
    cached: list[int] = field(default_factory=list)
    settled: int = 0
    job: Job | None = None
    used_at: float = 0.0

    def finish(self, reason: str, error: BaseException | None = None) -> None:
        """End the running job and free the slot (its cells stay for the next job to reuse)."""
        job = self.job
        assert job is not None
        self.job = None
        job.end(reason, error)


def add_token(batch: Any, n: int, token: int, pos: int, seq: int, logits: bool) -> int:
    """Put one token in row ``n`` of a ``llama_batch``; return the next free row."""
    batch.token[n] = token
    batch.pos[n] = pos
    batch.n_seq_id[n] = 1
    batch.seq_id[n][0] = seq
    batch.logits[n] = logits
    return n + 1
