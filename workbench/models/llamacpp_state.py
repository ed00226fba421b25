"""Keeping each conversation's evaluated prompt (llama.cpp's KV cache) between turns.

llama.cpp keeps the KV cache of the last prompt it evaluated, and llama-cpp-python's ``generate`` reuses
its longest common prefix with the next prompt: one conversation's next turn evaluates only the new
messages. Two sessions taking turns would each throw the other's cache away and re-evaluate their
whole conversation every turn. :class:`ConversationStates` saves the live cache (llama.cpp's per-sequence
state, only the cells in use) before another conversation overwrites it, and brings back the saved
cache that shares the longest prefix with the prompt about to run. In one conversation it does nothing.

Greedy answers must not depend on what the cache held before. llama.cpp computes a batch of one token
with other kernels (matrix-vector) than a batch of several, and the last bits of the results differ, so
a token's cache cells and the logits after it depend on how the prompt was cut into batches; with more
than one token per batch they do not (bench/RESULTS.md, "Greedy with and without the cache"). So every
cell the cache keeps is evaluated in a batch of at least :data:`MIN_BATCH_TOKENS` tokens:

- :meth:`ConversationStates.evaluate` evaluates what the cache lacks of a prompt, taking back cached
  tokens when fewer than two are left to evaluate (the same prompt asked again re-evaluates its last two);
- :meth:`ConversationStates.settle`, after an answer, evaluates its tokens again as one batch: they were
  decoded one at a time, and the next turn's prompt starts with them. It runs once the answer is
  delivered, unless another generation waits for the model; cells not settled are never reused, so the
  next prompt then evaluates them itself.

A prompt continued from a kept or restored cache then gives the same logits, bit for bit, as the same
prompt evaluated afresh (tests/test_llamacpp_backend.py checks the greedy texts).
"""

from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

#: Saved states are kept within this many bytes (the embedded model's cache is ~23 KB per token).
DEFAULT_BUDGET_BYTES = 96 << 20
#: A state worth saving or bringing back covers at least this many tokens more than the live one.
MIN_GAIN_TOKENS = 32
#: Every batch evaluated holds at least this many tokens (a one-token batch runs other kernels).
MIN_BATCH_TOKENS = 2


def batches(start: int, end: int, size: int) -> list[tuple[int, int]]:
    """Cut the positions ``[start, end)`` into batches of at most ``size`` tokens, none of one token.

    The caller makes sure ``end - start >= MIN_BATCH_TOKENS`` where it can (a one-token prompt is one
    token); the last two batches share the remainder when it would leave a single token.
    """
    size = max(size, MIN_BATCH_TOKENS)
    cuts: list[tuple[int, int]] = []
    at = start
    while at < end:
        stop = min(end, at + size)
        if end - stop == 1:  # the next batch would be a single token: leave it two
            stop -= 1
        cuts.append((at, stop))
        at = stop
    return cuts


def common_prefix(a: np.ndarray, b: np.ndarray) -> int:
    """The number of leading tokens two sequences share."""
    n = min(len(a), len(b))
    differ = np.flatnonzero(a[:n] != b[:n])
    return int(differ[0]) if len(differ) else n


class KeptCaches(Protocol):
    """What the engine's callers (tests, the pages' Clear) use of whatever keeps conversations' caches."""

    @property
    def restores(self) -> int:
        """Times a prompt continued a kept or saved cache."""

    def forget(self) -> None:
        """Drop every kept cache (the next prompt is evaluated from its first token)."""


@dataclass(eq=False)  # compared by identity: token arrays of different lengths do not compare
class SavedState:
    """One conversation's evaluated tokens and their KV cache cells.

    Attributes:
        tokens: The tokens the cache holds.
        data: llama.cpp's sequence state (``llama_state_seq_get_data``).
    """

    tokens: np.ndarray
    data: bytes


class ConversationStates:
    """Saved KV caches of recent conversations for one ``llama_cpp.Llama``; use under its lock.

    Args:
        llm: The model whose context is saved and restored.
        budget_bytes: The most memory the saved states may take; the least recently used go first.
        lock: The model's lock, which :meth:`forget` takes (the other methods run under it already).
    """

    def __init__(
        self, llm: Any, budget_bytes: int = DEFAULT_BUDGET_BYTES, lock: threading.Lock | None = None
    ) -> None:
        self.llm = llm
        self.lock = lock or threading.Lock()
        self.budget_bytes = budget_bytes
        self.saved: list[SavedState] = []  # most recently used last
        self.restores = 0
        #: The live cache's first cells that were evaluated in batches (see :meth:`settle`).
        self.settled = 0

    def evaluate(self, prompt: list[int]) -> int:
        """Make the cache hold ``prompt``, evaluating only what it lacks; return how many tokens were reused.

        The last logits are those of ``prompt``'s last token, computed in a batch of at least two tokens,
        so ``llama_cpp.Llama.generate`` samples from them at once (an exact cache hit).
        """
        llm = self.llm
        reused = self.prepare_for(prompt)
        keep = min(reused, max(0, len(prompt) - MIN_BATCH_TOKENS))
        llm.n_tokens = keep  # eval() removes the cells from here on before it evaluates
        for start, stop in batches(keep, len(prompt), llm.n_batch):
            llm.eval(prompt[start:stop])
        self.settled = len(prompt)
        return keep

    def settle(self) -> None:
        """Evaluate again, as batches, the answer's tokens that were decoded one at a time.

        Call it after a generation, holding the model's lock; the next turn's prompt then finds cells
        equal to a fresh evaluation's. Costs one batch over the answer (a fraction of its decode time).
        """
        llm = self.llm
        end = int(llm.n_tokens)
        start = min(self.settled, end)
        if end - start < 1:
            return
        start = max(0, min(start, end - MIN_BATCH_TOKENS))
        tokens = [int(t) for t in llm.input_ids[start:end]]
        llm.n_tokens = start
        for a, b in batches(0, len(tokens), llm.n_batch):
            llm.eval(tokens[a:b])
        self.settled = end

    def prepare_for(self, prompt: list[int]) -> int:
        """Make the live cache the best one for ``prompt``; return how many prompt tokens it already holds.

        Saves the live cache when this prompt would overwrite most of it, then restores the saved one
        that shares the longest prefix with the prompt when that beats the live one. Only settled cells
        count (see :meth:`settle`); the rest of the live cache is dropped.
        """
        llm = self.llm
        self._drop_unsettled()
        wanted = np.asarray(prompt, dtype=np.intc)
        live = np.array(llm._input_ids, dtype=np.intc)
        live_match = common_prefix(live, wanted)
        if len(live) - live_match >= MIN_GAIN_TOKENS:
            self._save(live)
        best = max(self.saved, key=lambda s: common_prefix(s.tokens, wanted), default=None)
        best_match = 0 if best is None else common_prefix(best.tokens, wanted)
        if best is not None and best_match - live_match >= MIN_GAIN_TOKENS and self._restore(best):
            self.saved.remove(best)
            self.saved.append(best)
            return best_match
        # Another conversation's cache may share only the template's first tokens (the system block):
        # they are kept, since a settled cell is what a fresh evaluation would compute.
        return live_match

    def _drop_unsettled(self) -> None:
        # Cells past ``settled`` came from one-token batches (an answer not settled, e.g. after an
        # error): never reuse them.
        llm = self.llm
        if llm.n_tokens > self.settled:
            llm.n_tokens = self.settled
            llm._ctx.kv_cache_seq_rm(-1, self.settled, -1)

    def forget(self) -> None:
        """Drop every saved state and the live cache (the next prompt is evaluated from the start).

        Takes the model's lock (given at construction): a generation, or the settling of its answer
        after the consumer has it, may still be using the cache.
        """
        with self.lock:
            self.saved.clear()
            self._clear_live()

    def _clear_live(self) -> None:
        # Clearing the memory, not only the token count, puts the next prompt in the first cells again:
        # the cells in use decide the attention kernels' shapes, and so the last bits of the logits.
        import llama_cpp

        llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(self.llm.ctx), True)
        self.llm.n_tokens = 0
        self.settled = 0

    def _save(self, tokens: np.ndarray) -> None:
        import llama_cpp

        ctx = self.llm.ctx
        size = int(llama_cpp.llama_state_seq_get_size(ctx, 0))
        if not 0 < size <= self.budget_bytes:
            return
        buffer = (ctypes.c_uint8 * size)()
        written = int(llama_cpp.llama_state_seq_get_data(ctx, buffer, size, 0))
        if written <= 0:
            return
        # A state that extends a saved one supersedes it (the same conversation, further on).
        self.saved = [s for s in self.saved if common_prefix(s.tokens, tokens) < len(s.tokens)]
        self.saved.append(SavedState(tokens.copy(), bytes(buffer)[:written]))
        while sum(len(s.data) for s in self.saved) > self.budget_bytes:
            self.saved.pop(0)

    def _restore(self, state: SavedState) -> bool:
        import llama_cpp

        llm = self.llm
        self._clear_live()
        buffer = (ctypes.c_uint8 * len(state.data)).from_buffer_copy(state.data)
        if not llama_cpp.llama_state_seq_set_data(llm.ctx, buffer, len(state.data), 0):
            llm.n_tokens = 0  # the cache is empty now; the prompt is evaluated from the start
            return False
        n = len(state.tokens)
        llm.input_ids[:n] = state.tokens
        llm.n_tokens = n
        self.settled = n  # only settled caches are saved
        llm._requires_eval = True  # logits are not part of the saved state: re-evaluate the last token
        self.restores += 1
        return True
