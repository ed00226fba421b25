"""Continuous batching on llama.cpp: slots, one ``llama_decode`` per step for all of them, a bounded queue.

Built the way llama.cpp's own server (``tools/server``) is: every running generation holds a *slot* (a
llama.cpp sequence with its own KV cells, sampler, stop strings and stats:
:mod:`workbench.models.llamacpp_slot`). One thread, the :class:`SlotScheduler`'s, owns the context; each
step it builds one batch with one token for every slot that is generating and prompt chunks for the slots
still reading theirs (up to ``n_batch`` tokens), calls ``llama_decode`` once, and samples each slot's next
token from its own row of logits. Every front door (Streamlit sessions, ``serve``, the CLI, Python threads)
only queues a :class:`Job` and reads its stream.

- **Reuse.** A job takes the free slot whose cached tokens share the longest prefix with its prompt, and a
  conversation's cache is saved and restored across slots (:mod:`workbench.models.llamacpp_slot_cache`).
  The tokens a slot decoded alone are evaluated again as one batch once the scheduler is idle (*settling*).
  A job whose prompt begins as another slot's (the same system prompt, say) copies those cells instead of
  reading them again, and one arriving while another slot reads such a prompt waits for those cells
  (usually one step) rather than reading the same tokens beside it (*sharing*;
  ``WORKBENCH_SHARE_PREFIXES=0`` turns it off).
- **Fairness.** Jobs wait in a FIFO queue of bounded length (a full queue refuses at once with
  :class:`~workbench.errors.ModelBusyError`); every step carries a token for every generating slot, so a
  long answer or a long prompt slows the others but never stops them.
- **Failures.** A slot's failure (its grammar, its sampler) ends that job only.

Each slot's KV cells are its own (llama.cpp's per-sequence streams, ``kv_unified`` off): a request gets the
whole context window, and its attention never spans another conversation's cells (measured in
bench/RESULTS.md, "Continuous batching").
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from typing import Any

import numpy as np

from workbench.errors import GenerationError, ModelBusyError
from workbench.models.generation import FinishReason
from workbench.models.llamacpp_slot import Job, Slot, add_token
from workbench.models.llamacpp_slot_cache import SlotCaches, settled_prefix
from workbench.models.llamacpp_state import (
    DEFAULT_BUDGET_BYTES,
    MIN_BATCH_TOKENS,
    MIN_GAIN_TOKENS,
    SavedState,
    batches,
    common_prefix,
)
from workbench.models.llamacpp_vision import MEDIA_CELL

__all__ = ["Job", "Slot", "SlotScheduler"]

logger = logging.getLogger(__name__)

#: How often a waiting scheduler looks at stopped jobs in the queue, in seconds.
POLL_S = 0.05


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
        #: The conversations' caches, in the slots and saved out of them.
        self.caches = SlotCaches(llama_cpp, llm, budget_bytes)
        #: Whether a job copies the prefix of its prompt that another slot holds (``SlotCaches.copy``);
        #: ``WORKBENCH_SHARE_PREFIXES=0`` turns it off.
        self.share_prefixes = os.environ.get("WORKBENCH_SHARE_PREFIXES", "1") != "0"
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

    @property
    def restores(self) -> int:
        """Times a job continued its conversation's cache (kept in a slot or brought back from a save)."""
        return self.caches.restores

    @property
    def copies(self) -> int:
        """Times a job copied its prompt's prefix from another slot."""
        return self.caches.copies

    @property
    def saved(self) -> list[SavedState]:
        """The caches saved out of the slots, most recently used last."""
        return self.caches.saved

    @property
    def budget_bytes(self) -> int:
        """The most memory saved caches may take."""
        return self.caches.budget_bytes

    @budget_bytes.setter
    def budget_bytes(self, value: int) -> None:
        self.caches.budget_bytes = value

    def forget(self) -> None:
        """Drop every kept and saved cache (the next prompts are evaluated from their first token).

        Slots running a generation keep theirs until it ends.
        """
        with self.step_lock:
            self.caches.forget(self.slots)

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
                    self._end(slot, FinishReason.CANCELLED)
            for job in self._queue:
                job.stream.finish(job.stats(FinishReason.CANCELLED))
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
            waiting = len(self._queue)
            self._admit()
            if self._busy():
                self._step()
            elif not self._queue:
                unsettled = self._unsettled()
                if unsettled is not None:
                    self.caches.settle(unsettled, self._batch)
        if waiting and len(self._queue) == waiting and not self._busy():
            time.sleep(POLL_S)  # no job could start: look again shortly (a job queued meanwhile starts now)
        return True

    def _busy(self) -> bool:
        return any(slot.job is not None for slot in self.slots)

    def _unsettled(self) -> Slot | None:
        return next((s for s in self.slots if s.job is None and s.settled < len(s.cached)), None)

    def _drop_cancelled_waiting(self) -> None:
        for job in [j for j in self._queue if j.stream.cancelled]:
            self._queue.remove(job)
            job.stream.finish(job.stats(FinishReason.CANCELLED))
        if all(slot.job is not None for slot in self.slots):
            for ahead, job in enumerate(self._queue):
                job.stream.ahead = ahead

    # --- admission: a free slot for the oldest waiting job ------------------------------------
    def _admit(self) -> None:
        while True:
            with self._wake:
                free = [s for s in self.slots if s.job is None]
                if not free or not self._queue or self._wait_for_prefix(self._queue[0]):
                    return
                job = self._queue.popleft()
                for ahead, waiting in enumerate(self._queue):
                    waiting.stream.ahead = ahead
            job.stream.ahead = None
            job.started_at = time.perf_counter()
            job.stream.stats.waited_s = round(job.started_at - job.queued_at, 3)
            try:
                slot = self.caches.choose(free, job.tokens)
                others = [s for s in self.slots if s is not slot] if self.share_prefixes else []
                job.read = self.caches.prepare(slot, job.tokens, others)
                job.start_sampling(self.llm, self._lib)
                slot.job, slot.used_at = job, time.perf_counter()
            except Exception as exc:  # this job's own failure (its grammar, its sampler)
                job.stream.finish(job.stats(FinishReason.ERROR), exc)
                continue
            if (
                job.media is not None
            ):  # images (issue 26): mtmd evaluates the prompt; its first token is sampled now
                try:
                    slot.cached = [MEDIA_CELL] * job.media.evaluate(self.llm.ctx, slot.seq, self.n_batch)
                    reason = job.sample(self.llm, self._lib, self._vocab, -1)
                except Exception as exc:  # this job's own failure (an image the encoder refused, its grammar)
                    self._fail(slot, exc)
                    continue
                if reason is not None:
                    self._end(slot, reason)

    def _wait_for_prefix(self, job: Job) -> bool:
        """Whether ``job`` should wait for the prefix of its prompt that another slot is reading now.

        True while a slot reading its prompt (its cells all settled so far) shares at least
        :data:`MIN_GAIN_TOKENS` more of ``job``'s prompt than any slot or saved cache holds: once read,
        ``job`` copies those cells rather than reading the same tokens in the same step (four new
        conversations with one system prompt). The wait ends when that slot has read its prompt: one
        step for a prompt within ``n_batch``, and at once if it stops or fails.
        """
        if not self.share_prefixes or job.media is not None or len(job.tokens) < 2 * MIN_GAIN_TOKENS:
            return False
        wanted = np.asarray(job.tokens, dtype=np.intc)
        held = max(
            [settled_prefix(s, wanted) for s in self.slots]
            + [common_prefix(s.tokens, wanted) for s in self.caches.saved]
        )
        for slot in self.slots:
            other = slot.job
            if other is None or other.media is not None or other.read >= len(other.tokens):
                continue
            if slot.settled < len(slot.cached):  # a short chunk was read: what follows is never settled
                continue
            ahead = common_prefix(np.asarray(other.tokens, dtype=np.intc), wanted)
            if min(ahead, len(job.tokens) - MIN_BATCH_TOKENS) - held >= MIN_GAIN_TOKENS:
                return True
        return False

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
                self._end(slot, FinishReason.CANCELLED)
                continue
            n = add_token(batch, n, job.next_token, len(slot.cached), slot.seq, True)
            slot.cached.append(job.next_token)
            rows.append((slot, n - 1))
            carried += 1
        for slot in reading:
            job = slot.job
            assert job is not None
            if job.stream.cancelled:
                self._end(slot, FinishReason.CANCELLED)
                continue
            room = self.n_batch - n
            end = len(job.tokens)
            if room < MIN_BATCH_TOKENS and end - job.read >= MIN_BATCH_TOKENS:
                break  # the rest read in the next step
            start, stop = batches(job.read, end, room)[0]
            for pos in range(start, stop):
                n = add_token(batch, n, job.tokens[pos], pos, slot.seq, pos == end - 1)
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
            job = slot.job
            if job is not None:
                try:
                    reason = job.sample(self.llm, self._lib, self._vocab, row)
                except Exception as exc:  # this slot's sampler or grammar: end this job only
                    self._fail(slot, exc)
                    continue
                if reason is not None:
                    self._end(slot, reason)

    def _end(self, slot: Slot, reason: str) -> None:
        """End the slot's job; an image prompt's cells are dropped (never kept, settled or reused)."""
        if slot.job is not None and slot.job.media is not None:  # images (issue 26), before the stream ends
            self.caches.drop(slot)
        slot.finish(reason)

    def _fail(self, slot: Slot, error: BaseException) -> None:
        # Its cells may be half written: drop them (another request's are untouched).
        self.caches.drop(slot)
        slot.finish(FinishReason.ERROR, error)
        slot.cached, slot.settled = [], 0
