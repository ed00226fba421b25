"""Keeping each conversation's evaluated prompt (llama.cpp's KV cache) between turns.

llama.cpp keeps the KV cache of the last prompt it evaluated, and llama-cpp-python's ``generate`` reuses
its longest common prefix with the next prompt: one conversation's next turn evaluates only the new
messages. Two sessions taking turns would each throw the other's cache away and re-evaluate their
whole conversation every turn. :class:`ConversationStates` saves the live cache (llama.cpp's per-sequence
state, only the cells in use) before another conversation overwrites it, and brings back the saved
cache that shares the longest prefix with the prompt about to run. In one conversation it does nothing.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Saved states are kept within this many bytes (the embedded model's cache is ~23 KB per token).
DEFAULT_BUDGET_BYTES = 96 << 20
#: A state worth saving or bringing back covers at least this many tokens more than the live one.
MIN_GAIN_TOKENS = 32


def common_prefix(a: np.ndarray, b: np.ndarray) -> int:
    """The number of leading tokens two sequences share."""
    n = min(len(a), len(b))
    differ = np.flatnonzero(a[:n] != b[:n])
    return int(differ[0]) if len(differ) else n


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
    """

    def __init__(self, llm: Any, budget_bytes: int = DEFAULT_BUDGET_BYTES) -> None:
        self.llm = llm
        self.budget_bytes = budget_bytes
        self.saved: list[SavedState] = []  # most recently used last
        self.restores = 0

    def prepare_for(self, prompt: list[int]) -> int:
        """Make the live cache the best one for ``prompt``; return how many prompt tokens it already holds.

        Saves the live cache when this prompt would overwrite most of it, then restores the saved one
        that shares the longest prefix with the prompt when that beats the live one.
        """
        llm = self.llm
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
        if live_match < MIN_GAIN_TOKENS and len(live):
            # Another conversation's cache shares only the template's first tokens: start afresh, so that
            # an answer never depends on which conversation ran before (a prompt evaluated in two batches
            # can differ in the last bits from one evaluated in one).
            self._clear_live()
            return 0
        return live_match

    def forget(self) -> None:
        """Drop every saved state and the live cache (the next prompt is evaluated from the start)."""
        self.saved.clear()
        self._clear_live()

    def _clear_live(self) -> None:
        # Clearing the memory, not only the token count, puts the next prompt in the first cells again:
        # the cells in use decide the attention kernels' shapes, and so the last bits of the logits.
        import llama_cpp

        llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(self.llm.ctx), True)
        self.llm.n_tokens = 0

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
        llm._requires_eval = True  # logits are not part of the saved state: re-evaluate the last token
        self.restores += 1
        return True
