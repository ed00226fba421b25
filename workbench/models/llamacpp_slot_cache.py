"""Prefix and KV reuse across the scheduler's slots: :class:`SlotCaches`.

- **Choosing.** A job takes the free slot whose settled tokens share the longest prefix with its prompt,
  else the least recently used one.
- **Saving and restoring.** A slot's cache covers one conversation. When a conversation's slot must serve
  another one, its cells are saved (``llama_state_seq_get_data``) and restored into whichever slot that
  conversation next gets (``llama_state_seq_set_data``), so its next turn evaluates only its new messages.
- **Sharing.** A job whose prompt begins as another slot's does (the same system prompt, template and
  documents; that slot busy or free) takes a copy of those cells rather than reading them again: the
  other slot's state goes out and into the job's slot (``llama_state_seq_get_data`` and ``_set_data``,
  as a save and restore do), and the cells past the shared prefix go. (``llama_memory_seq_cp`` copies
  between per-slot streams only whole, 8192 cells of the embedded model: bench/RESULTS.md.)
- **Settling.** As in :mod:`workbench.models.llamacpp_state`, a cell kept for reuse is one that was
  evaluated in a batch of at least two tokens. The tokens a slot decoded alone (one-token batches) are
  evaluated again as one batch once the scheduler is idle; cells not settled are never reused.

Every method runs on the scheduler's thread, or under its step lock.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from typing import Any

import numpy as np

from workbench.models.llamacpp_slot import Slot, add_token
from workbench.models.llamacpp_state import (
    DEFAULT_BUDGET_BYTES,
    MIN_BATCH_TOKENS,
    MIN_GAIN_TOKENS,
    SavedState,
    batches,
    common_prefix,
)

#: Tokens settled per step while idle. A request that arrives waits for one such batch at most: on one
#: core of this machine a prompt token costs ~5.6 ms whatever the batch (4 to 256 tokens), so 16 tokens
#: (~0.1 s) rather than 64 (~0.36 s, which the first token at 2 clients waited for; bench/RESULTS.md).
SETTLE_CHUNK = 16


class SlotCaches:
    """The conversations' KV caches: those the slots hold, and those saved out of them.

    Args:
        lib: The ``llama_cpp`` module.
        llm: The ``llama_cpp.Llama`` whose sequences are the slots.
        budget_bytes: The most memory saved caches may take; the least recently used go first.
    """

    def __init__(self, lib: Any, llm: Any, budget_bytes: int = DEFAULT_BUDGET_BYTES) -> None:
        self._lib = lib
        self.llm = llm
        self.budget_bytes = budget_bytes
        self.saved: list[SavedState] = []  # most recently used last
        #: Times a job continued its conversation's cache (kept in a slot or brought back from a save).
        self.restores = 0
        #: Times a job copied its prompt's prefix from another slot.
        self.copies = 0

    def memory(self) -> Any:
        """The context's KV memory."""
        return self._lib.llama_get_memory(self.llm.ctx)

    def choose(self, free: list[Slot], prompt: list[int]) -> Slot:
        """The free slot sharing the longest settled prefix with ``prompt``, else the least recently used."""
        wanted = np.asarray(prompt, dtype=np.intc)
        best = max(free, key=lambda s: (settled_prefix(s, wanted), -s.used_at))
        if settled_prefix(best, wanted) >= MIN_GAIN_TOKENS:
            return best
        return min(free, key=lambda s: (len(s.cached) > 0, s.used_at))

    def prepare(self, slot: Slot, prompt: list[int], others: Sequence[Slot] = ()) -> int:
        """Make ``slot`` hold the longest reusable prefix of ``prompt``; return how many tokens it keeps.

        Saves the slot's cache first when it belongs to another conversation, and restores a saved one
        that shares more with ``prompt``, or copies the settled cells of whichever of ``others`` (the
        other slots, busy or free) shares more still. At least :data:`MIN_BATCH_TOKENS` prompt tokens are
        left to evaluate, so the last logits come from a batch.
        """
        wanted = np.asarray(prompt, dtype=np.intc)
        live = settled_prefix(slot, wanted)
        if slot.settled - live >= MIN_GAIN_TOKENS:
            self.save(slot)  # another conversation's cache: keep it for that conversation's next turn
        best = max(self.saved, key=lambda s: common_prefix(s.tokens, wanted), default=None)
        best_match = 0 if best is None else common_prefix(best.tokens, wanted)
        source = max(others, key=lambda s: settled_prefix(s, wanted), default=None)
        shared = 0 if source is None else settled_prefix(source, wanted)
        copied = (
            source is not None
            and shared - max(live, best_match) >= MIN_GAIN_TOKENS
            and self.copy(source, slot)
        )
        if copied:
            self.copies += 1
        elif best is not None and best_match - live >= MIN_GAIN_TOKENS:
            self.restore(best, slot)
        live = settled_prefix(slot, wanted)  # what the slot holds now (a failed copy or restore left none)
        if live >= MIN_GAIN_TOKENS and not copied:
            self.restores += 1
        keep = min(live, max(0, len(prompt) - MIN_BATCH_TOKENS))
        self._lib.llama_memory_seq_rm(self.memory(), slot.seq, keep, -1)
        slot.cached, slot.settled = list(prompt[:keep]), keep
        return keep

    def copy(self, source: Slot, slot: Slot) -> bool:
        """Make ``slot`` hold a copy of ``source``'s cells (which keeps its own); return whether it took.

        The caller then trims ``slot`` to the settled prefix it shares. ``source`` may be running: this is
        called between steps, when every cell it has is written. The copy takes all of ``source``'s cells
        at once, so a source larger than the saved caches' budget (a long conversation of a large model)
        is not copied: the job reads its prompt instead.
        """
        lib = self._lib
        ctx = self.llm.ctx
        size = int(lib.llama_state_seq_get_size(ctx, source.seq))
        if not 0 < size <= self.budget_bytes:
            return False
        buffer = (ctypes.c_uint8 * size)()
        written = int(lib.llama_state_seq_get_data(ctx, buffer, size, source.seq))
        self.drop(slot)
        if written <= 0 or not lib.llama_state_seq_set_data(ctx, buffer, written, slot.seq):
            self.drop(slot)
            return False
        slot.cached, slot.settled = list(source.cached[: source.settled]), source.settled
        return True

    def drop(self, slot: Slot) -> None:
        """Empty ``slot``'s cells (a half-written or failed sequence)."""
        self._lib.llama_memory_seq_rm(self.memory(), slot.seq, -1, -1)
        slot.cached, slot.settled = [], 0

    def forget(self, slots: list[Slot]) -> None:
        """Drop every saved cache and those of the free slots (running ones keep theirs until they end)."""
        self.saved.clear()
        if all(slot.job is None for slot in slots):  # clearing also puts the next prompts in the first cells
            self._lib.llama_memory_clear(self.memory(), True)
        for slot in slots:
            if slot.job is None:
                self.drop(slot)

    def settle(self, slot: Slot, batch: Any) -> None:
        """Evaluate again, as a batch, the next tokens that a free slot decoded one at a time.

        One chunk of :data:`SETTLE_CHUNK` tokens per call, so that a request arriving meanwhile waits for
        one chunk at most: it then takes the model, and the rest stays unsettled (never reused).
        """
        end = len(slot.cached)
        start = max(0, min(slot.settled, end - MIN_BATCH_TOKENS))
        # Cells past ``start`` came from one-token batches, or are gone already (an earlier chunk).
        self._lib.llama_memory_seq_rm(self.memory(), slot.seq, start, -1)
        a, b = batches(start, end, SETTLE_CHUNK)[0]
        n = 0
        for pos in range(a, b):
            n = add_token(batch, n, slot.cached[pos], pos, slot.seq, False)
        batch.n_tokens = n
        if self._lib.llama_decode(self.llm.ctx, batch) != 0:
            self.drop(slot)
            return
        slot.settled = b  # the tokens past ``b`` have no cells now; the next idle step goes on from here

    def save(self, slot: Slot) -> None:
        """Keep ``slot``'s settled cells for its conversation's next turn (within the budget)."""
        lib = self._lib
        ctx = self.llm.ctx
        del slot.cached[slot.settled :]
        lib.llama_memory_seq_rm(self.memory(), slot.seq, slot.settled, -1)
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

    def restore(self, state: SavedState, slot: Slot) -> bool:
        """Bring a saved cache back into ``slot``; return whether llama.cpp took it."""
        self.drop(slot)
        buffer = (ctypes.c_uint8 * len(state.data)).from_buffer_copy(state.data)
        if not self._lib.llama_state_seq_set_data(self.llm.ctx, buffer, len(state.data), slot.seq):
            self.drop(slot)
            return False
        slot.cached = [int(t) for t in state.tokens]
        slot.settled = len(slot.cached)  # only settled cells are saved
        self.saved.remove(state)
        return True


def settled_prefix(slot: Slot, wanted: np.ndarray) -> int:
    """How many leading tokens of ``wanted`` the settled cells of ``slot`` hold."""
    return common_prefix(np.asarray(slot.cached[: slot.settled], dtype=np.intc), wanted)
