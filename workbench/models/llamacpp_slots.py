"""Continuous batching on llama.cpp: slots, one ``llama_decode`` per step for all of them, a bounded queue.

Built the way llama.cpp's own server (``tools/server``) is: every running generation holds a *slot* (a
llama.cpp sequence with its own KV cells, sampler, stop strings and stats). One thread, the
:class:`SlotScheduler`'s, owns the context; each step it builds one batch with one token for every slot
that is generating and prompt chunks for the slots still reading theirs (up to ``n_batch`` tokens), calls
``llama_decode`` once, and samples each slot's next token from its own row of logits. Every front door
(Streamlit sessions, ``serve``, the CLI, Python threads) only queues a :class:`Job` and reads its stream.

- **Reuse.** A job takes the free slot whose cached tokens share the longest prefix with its prompt; a
  slot's cache covers one conversation, and when a conversation's slot must serve another one its cells
  are saved (``llama_state_seq_get_data``) and restored into whichever slot it next gets
  (``llama_state_seq_set_data``), so a conversation's next turn evaluates only its new messages.
- **Greedy repeats.** As in :mod:`workbench.models.llamacpp_state`, a cell kept for reuse is one that was
  evaluated in a batch of at least two tokens: prompt chunks never leave a single token, and the tokens a
  slot decoded alone (one-token batches) are evaluated again as one batch once the scheduler is idle
  (*settling*); cells not settled are never reused.
- **Fairness.** Jobs wait in a FIFO queue of bounded length (a full queue refuses at once with
  :class:`~workbench.errors.ModelBusyError`); every step carries a token for every generating slot, so a
  long answer or a long prompt slows the others but never stops them.
- **Failures.** A slot's failure (its grammar, its sampler) ends that job only.

Each slot's KV cells are its own (llama.cpp's per-sequence streams, ``kv_unified`` off): a request gets the
whole context window, and its attention never spans another conversation's cells (measured in
bench/RESULTS.md, "Continuous batching").
"""

from __future__ import annotations

import codecs
import ctypes
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workbench.errors import GenerationError, ModelBusyError
from workbench.models.generation import FinishReason, GenerationRequest, GenerationStats, GenerationStream
from workbench.models.llamacpp_state import (
    DEFAULT_BUDGET_BYTES,
    MIN_BATCH_TOKENS,
    MIN_GAIN_TOKENS,
    SavedState,
    batches,
    common_prefix,
)
from workbench.models.llamacpp_vision import MEDIA_CELL

logger = logging.getLogger(__name__)

#: How often a waiting scheduler looks at stopped jobs in the queue, in seconds.
POLL_S = 0.05
#: Tokens settled per step while idle (a request that arrives waits for one such batch at most).
SETTLE_CHUNK = 64


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


class SlotScheduler:
    """The one loop that runs every llama.cpp generation of a model, ``slots`` at a time.

    Args:
        llm: The ``llama_cpp.Llama`` whose context was made with ``n_seq_max >= slots``.
        slots: How many generations run at once.
        queue_limit: How many jobs may wait for a slot; one more is refused.
        budget_bytes: The most memory saved conversation caches may take.
    """

    def __init__(
        self, llm: Any, slots: int, queue_limit: int, budget_bytes: int = DEFAULT_BUDGET_BYTES
    ) -> None:
        import llama_cpp

        self._lib = llama_cpp
        self.llm = llm
        self.slots = [Slot(seq) for seq in range(slots)]
        self.queue_limit = queue_limit
        self.budget_bytes = budget_bytes
        self.saved: list[SavedState] = []  # most recently used last
        #: Times a job continued its conversation's cache (kept in a slot or brought back from a save).
        self.restores = 0
        #: Prompt tokens evaluated so far (what the kept caches did not hold).
        self.prompt_tokens_evaluated = 0
        #: The most slots one step has carried.
        self.peak = 0
        self.n_batch = int(llm.n_batch)
        self._vocab = llm._model.vocab
        self._queue: deque[Job] = deque()
        self._wake = threading.Condition()
        #: Held for every step; :meth:`forget` takes it to empty the caches between steps.
        self.step_lock = threading.Lock()
        self._closed = False
        self._batch = llama_cpp.llama_batch_init(max(self.n_batch, slots), 0, 1)
        self._thread = threading.Thread(target=self._loop, name="workbench-slots", daemon=True)
        self._thread.start()

    # --- front doors --------------------------------------------------------------------------
    def submit(self, job: Job) -> None:
        """Queue a job; its stream receives the text.

        Raises:
            ModelBusyError: If ``queue_limit`` jobs are waiting already.
        """
        with self._wake:
            if self._closed:
                raise GenerationError("The model was unloaded; load it again.")
            free = sum(slot.job is None for slot in self.slots)
            if len(self._queue) - free >= self.queue_limit:  # jobs beyond the free slots wait
                raise ModelBusyError(
                    f"All {len(self.slots)} generation slots are busy and {self.queue_limit} requests "
                    "are waiting; try again in a few seconds."
                )
            if all(slot.job is not None for slot in self.slots):  # else it starts at the next step
                job.stream.ahead = len(self._queue)
            self._queue.append(job)
            self._wake.notify()

    @property
    def waiting(self) -> int:
        """Jobs waiting for a slot."""
        return len(self._queue)

    def forget(self) -> None:
        """Drop every kept and saved cache (the next prompts are evaluated from their first token).

        Slots running a generation keep theirs until it ends.
        """
        with self.step_lock:
            self.saved.clear()
            if not self._busy():  # clearing the memory also puts the next prompts in the first cells
                self._lib.llama_memory_clear(self._memory(), True)
            for slot in self.slots:
                if slot.job is None:
                    self._lib.llama_memory_seq_rm(self._memory(), slot.seq, -1, -1)
                    slot.cached, slot.settled = [], 0

    def close(self) -> None:
        """Stop the loop (running jobs end as cancelled) and free the batch; the caller frees the model."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join(timeout=10)

    # --- the loop -----------------------------------------------------------------------------
    def _loop(self) -> None:
        try:
            while self._next():
                pass
        finally:
            for slot in self.slots:
                if slot.job is not None:
                    self._finish(slot, FinishReason.CANCELLED)
            for job in self._queue:
                job.stream.finish(_stats_of(job, FinishReason.CANCELLED))
            self._lib.llama_batch_free(self._batch)

    def _next(self) -> bool:
        """Wait for work, then run one step; return False once closed."""
        with self._wake:
            while not self._closed and not self._queue and not self._busy() and not self._unsettled():
                self._wake.wait()
            if self._closed:
                return False
            self._drop_cancelled_waiting()
        with self.step_lock:
            self._admit()
            if self._busy():
                self._step()
            elif not self._queue:
                self._settle_one()
        if not self._busy() and self._queue:
            time.sleep(POLL_S)  # only stopped jobs wait: look again shortly
        return True

    def _busy(self) -> bool:
        return any(slot.job is not None for slot in self.slots)

    def _unsettled(self) -> Slot | None:
        return next((s for s in self.slots if s.job is None and s.settled < len(s.cached)), None)

    def _drop_cancelled_waiting(self) -> None:
        for job in [j for j in self._queue if j.stream.cancelled]:
            self._queue.remove(job)
            job.stream.finish(_stats_of(job, FinishReason.CANCELLED))
        if all(slot.job is not None for slot in self.slots):
            for ahead, job in enumerate(self._queue):
                job.stream.ahead = ahead

    # --- admission: a free slot for the oldest waiting job ------------------------------------
    def _admit(self) -> None:
        while True:
            with self._wake:
                free = [s for s in self.slots if s.job is None]
                if not free or not self._queue:
                    return
                job = self._queue.popleft()
                for ahead, waiting in enumerate(self._queue):
                    waiting.stream.ahead = ahead
            job.stream.ahead = None
            job.started_at = time.perf_counter()
            job.stream.stats.waited_s = round(job.started_at - job.queued_at, 3)
            try:
                self._start(job, self._choose(free, job.tokens))
            except Exception as exc:  # this job's own failure (its grammar, its sampler)
                job.stream.finish(_stats_of(job, FinishReason.ERROR), exc)

    def _choose(self, free: list[Slot], prompt: list[int]) -> Slot:
        """The free slot sharing the longest settled prefix with ``prompt``, else the least recently used."""
        wanted = np.asarray(prompt, dtype=np.intc)

        def shared(slot: Slot) -> int:
            return common_prefix(np.asarray(slot.cached[: slot.settled], dtype=np.intc), wanted)

        best = max(free, key=lambda s: (shared(s), -s.used_at))
        if shared(best) >= MIN_GAIN_TOKENS:
            return best
        return min(free, key=lambda s: (len(s.cached) > 0, s.used_at))

    def _start(self, job: Job, slot: Slot) -> None:
        settings = job.request.settings
        wanted = np.asarray(job.tokens, dtype=np.intc)
        live = common_prefix(np.asarray(slot.cached[: slot.settled], dtype=np.intc), wanted)
        if slot.settled - live >= MIN_GAIN_TOKENS:
            self._save(slot)  # another conversation's cache: keep it for that conversation's next turn
        best = max(self.saved, key=lambda s: common_prefix(s.tokens, wanted), default=None)
        best_match = 0 if best is None else common_prefix(best.tokens, wanted)
        if best is not None and best_match - live >= MIN_GAIN_TOKENS and self._restore(best, slot):
            live = best_match
        if live >= MIN_GAIN_TOKENS:
            self.restores += 1
        keep = min(live, max(0, len(job.tokens) - MIN_BATCH_TOKENS))
        self._lib.llama_memory_seq_rm(self._memory(), slot.seq, keep, -1)
        slot.cached, slot.settled = list(job.tokens[:keep]), keep
        job.read = keep
        llm = self.llm
        greedy = settings.temperature <= 0
        llm.set_seed(settings.seed if settings.seed is not None else self._lib.LLAMA_DEFAULT_SEED)
        # The chain llama-cpp-python's generate() builds, so an answer is the same as on the serial path.
        job.sampler = llm._init_sampler(
            temp=0.0 if greedy else settings.temperature,
            top_p=1.0 if greedy else settings.top_p,
            top_k=0,
            min_p=0.0,
            typical_p=1.0,
            repeat_penalty=settings.repetition_penalty,
            grammar=job.grammar,
        )
        job.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        job.stream.stats.finish_reason = FinishReason.LENGTH
        slot.job, slot.used_at = job, time.perf_counter()
        if job.media is not None:  # images (issue 26): mtmd evaluates the prompt; its first token is sampled now
            try:
                slot.cached = [MEDIA_CELL] * job.media.evaluate(self.llm.ctx, slot.seq, self.n_batch)
                self._sample(slot, -1)
            except Exception as exc:  # this job's own failure (an image the encoder refused, its grammar)
                self._fail(slot, exc)

    # --- one step: one decode for every slot ----------------------------------------------------
    def _step(self) -> None:
        batch = self._batch
        rows: list[tuple[Slot, int]] = []  # (slot, batch row of its logits)
        n = 0
        carried = 0
        generating = [s for s in self.slots if s.job is not None and s.job.read >= len(s.job.tokens)]
        reading = sorted(
            (s for s in self.slots if s.job is not None and s.job.read < len(s.job.tokens)),
            key=lambda s: s.job.started_at if s.job else 0.0,
        )
        for slot in generating:
            job = slot.job
            assert job is not None
            if job.stream.cancelled:
                self._finish(slot, FinishReason.CANCELLED)
                continue
            n = self._add(batch, n, job.next_token, len(slot.cached), slot.seq, True)
            slot.cached.append(job.next_token)
            rows.append((slot, n - 1))
            carried += 1
        for slot in reading:
            job = slot.job
            assert job is not None
            if job.stream.cancelled:
                self._finish(slot, FinishReason.CANCELLED)
                continue
            room = self.n_batch - n
            end = len(job.tokens)
            if room < MIN_BATCH_TOKENS and end - job.read >= MIN_BATCH_TOKENS:
                break  # the rest read in the next step
            start, stop = batches(job.read, end, room)[0]
            for pos in range(start, stop):
                n = self._add(batch, n, job.tokens[pos], pos, slot.seq, pos == end - 1)
            job.read = stop
            carried += 1
            self.prompt_tokens_evaluated += stop - start
            if slot.settled == len(slot.cached) and stop - start >= MIN_BATCH_TOKENS:
                slot.settled = stop
            slot.cached.extend(job.tokens[start:stop])
            if stop == end:
                rows.append((slot, n - 1))
        if n == 0:
            return
        self.peak = max(self.peak, carried)
        batch.n_tokens = n
        status = self._lib.llama_decode(self.llm.ctx, batch)
        if status != 0:
            error = GenerationError(f"llama.cpp could not evaluate the batch (status {status}).")
            for slot in {s for s, _ in rows} | {s for s in reading if s.job is not None}:
                self._fail(slot, error)
            return
        if n >= MIN_BATCH_TOKENS:  # every token of this batch was evaluated with others
            for slot in generating:
                if slot.job is not None and slot.settled == len(slot.cached) - 1:
                    slot.settled = len(slot.cached)
        for slot, row in rows:
            if slot.job is not None:
                try:
                    self._sample(slot, row)
                except Exception as exc:  # this slot's sampler or grammar: end this job only
                    self._fail(slot, exc)

    @staticmethod
    def _add(batch: Any, n: int, token: int, pos: int, seq: int, logits: bool) -> int:
        batch.token[n] = token
        batch.pos[n] = pos
        batch.n_seq_id[n] = 1
        batch.seq_id[n][0] = seq
        batch.logits[n] = logits
        return n + 1

    def _sample(self, slot: Slot, row: int) -> None:
        job = slot.job
        assert job is not None
        stats = job.stream.stats
        token = job.sampler.sample(self.llm._ctx, row)
        if self._lib.llama_vocab_is_eog(self._vocab, token):
            self._finish(slot, FinishReason.EOS)
            return
        stats.new_tokens += 1
        job.next_token = token  # its cells are written by the next step
        piece = job.decoder.decode(self.llm.detokenize([token]))
        if piece:
            if stats.first_token_s is None:
                stats.first_token_s = round(time.perf_counter() - job.started_at, 3)
            job.stream.put(piece)
        stops = job.request.stop_strings
        longest = max((len(s) for s in stops), default=0)
        if stops and any(s in job.stream.text[-(len(piece) + longest) :] for s in stops):
            self._finish(slot, FinishReason.STOP_STRING)
        elif job.stream.cancelled:
            self._finish(slot, FinishReason.CANCELLED)
        elif stats.new_tokens >= job.max_new_tokens:
            self._finish(slot, FinishReason.LENGTH)

    def _finish(self, slot: Slot, reason: str, error: BaseException | None = None) -> None:
        job = slot.job
        assert job is not None
        if job.decoder is not None:
            tail = job.decoder.decode(b"", final=True)
            if tail:
                job.stream.put(tail)
        slot.job = None
        if job.media is not None:  # images (issue 26): an image prompt's cells are never kept
            self._lib.llama_memory_seq_rm(self._memory(), slot.seq, -1, -1)
            slot.cached, slot.settled = [], 0
        job.stream.finish(_stats_of(job, reason), error)

    def _fail(self, slot: Slot, error: BaseException) -> None:
        # Its cells may be half written: drop them (another request's are untouched).
        self._lib.llama_memory_seq_rm(self._memory(), slot.seq, -1, -1)
        self._finish(slot, FinishReason.ERROR, error)
        slot.cached, slot.settled = [], 0

    # --- settling, saving and restoring caches ------------------------------------------------
    def _settle_one(self) -> None:
        """Evaluate again, as a batch, the next tokens that a free slot decoded one at a time.

        One chunk of :data:`SETTLE_CHUNK` tokens per call, so that a request arriving meanwhile waits for
        one chunk at most: it then takes the model, and the rest stays unsettled (never reused).
        """
        slot = self._unsettled()
        if slot is None:
            return
        end = len(slot.cached)
        start = max(0, min(slot.settled, end - MIN_BATCH_TOKENS))
        # Cells past ``start`` came from one-token batches, or are gone already (an earlier chunk).
        self._lib.llama_memory_seq_rm(self._memory(), slot.seq, start, -1)
        a, b = batches(start, end, SETTLE_CHUNK)[0]
        n = 0
        for pos in range(a, b):
            n = self._add(self._batch, n, slot.cached[pos], pos, slot.seq, False)
        self._batch.n_tokens = n
        if self._lib.llama_decode(self.llm.ctx, self._batch) != 0:
            self._lib.llama_memory_seq_rm(self._memory(), slot.seq, -1, -1)
            slot.cached, slot.settled = [], 0
            return
        slot.settled = b  # the tokens past ``b`` have no cells now; the next idle step goes on from here

    def _save(self, slot: Slot) -> None:
        lib = self._lib
        ctx = self.llm.ctx
        del slot.cached[slot.settled :]
        lib.llama_memory_seq_rm(self._memory(), slot.seq, slot.settled, -1)
        size = int(lib.llama_state_seq_get_size(ctx, slot.seq))
        if not 0 < size <= self.budget_bytes:
            return
        buffer = (ctypes.c_uint8 * size)()
        written = int(lib.llama_state_seq_get_data(ctx, buffer, size, slot.seq))
        if written <= 0:
            return
        tokens = np.asarray(slot.cached, dtype=np.intc)
        # A state that extends a saved one supersedes it (the same conversation, further on).
        self.saved = [s for s in self.saved if common_prefix(s.tokens, tokens) < len(s.tokens)]
        self.saved.append(SavedState(tokens, bytes(buffer)[:written]))
        while sum(len(s.data) for s in self.saved) > self.budget_bytes:
            self.saved.pop(0)

    def _restore(self, state: SavedState, slot: Slot) -> bool:
        lib = self._lib
        lib.llama_memory_seq_rm(self._memory(), slot.seq, -1, -1)
        slot.cached, slot.settled = [], 0
        buffer = (ctypes.c_uint8 * len(state.data)).from_buffer_copy(state.data)
        if not lib.llama_state_seq_set_data(self.llm.ctx, buffer, len(state.data), slot.seq):
            lib.llama_memory_seq_rm(self._memory(), slot.seq, -1, -1)
            return False
        slot.cached = [int(t) for t in state.tokens]
        slot.settled = len(slot.cached)  # only settled cells are saved
        self.saved.remove(state)
        return True

    def _memory(self) -> Any:
        return self._lib.llama_get_memory(self.llm.ctx)


def _stats_of(job: Job, reason: str) -> GenerationStats:
    stats = job.stream.stats
    stats.finish_reason = reason
    if job.started_at:
        stats.seconds = round(time.perf_counter() - job.started_at, 3)
    else:
        stats.waited_s = round(time.perf_counter() - job.queued_at, 3)
    return stats
