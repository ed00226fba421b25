"""One loaded copy of a model per process, shared by every page, session and thread.

:class:`SharedModel` is a slot for one :class:`ModelSpec`: the first caller loads it (others wait on
the lock, then reuse it); a failed load leaves the slot empty so the next call can try again. The app,
the CLI and the tests all take slots from :func:`shared_model`: module-level, so that no message a
browser sends can drop them (Streamlit's ``clear_cache`` empties ``st.cache_resource``, which would
load a second copy of every model beside the first).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar, cast

from workbench.chat_model import ChatModel
from workbench.models.loading import ProgressCallback
from workbench.models.spec import ModelSpec

T = TypeVar("T")


class SharedModel:
    """A lazily loaded, shared model for one spec."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self._lock = threading.Lock()
        self._model: ChatModel | None = None

    @property
    def loaded(self) -> bool:
        """Whether the model is in memory."""
        return self._model is not None

    def get(self, progress: ProgressCallback | None = None) -> ChatModel:
        """Return the model, loading it first if needed (once, whatever the number of callers).

        Raises:
            ModelError: If loading fails; the slot stays empty.
        """
        if self._model is not None:
            return self._model
        with self._lock:
            if self._model is None:
                self._model = ChatModel.load(self.spec, progress)
            return self._model


_slots: dict[ModelSpec, SharedModel] = {}
_slots_lock = threading.Lock()


def shared_model(spec: ModelSpec, keep: int | None = None) -> SharedModel:
    """Return the process-wide slot for a spec.

    Args:
        spec: The model.
        keep: Keep at most this many slots, dropping the least recently asked for (their models go
            once nobody holds them); None keeps every slot.
    """
    with _slots_lock:
        slot = _slots.pop(spec, None) or SharedModel(spec)
        _slots[spec] = slot  # the most recently asked for last
        if keep is not None:
            for stale in list(_slots)[: max(0, len(_slots) - max(keep, 1))]:
                del _slots[stale]
        return slot


_resources: dict[tuple[str, str], Any] = {}
_resources_lock = threading.Lock()


def process_resource(kind: str, key: str, factory: Callable[[], T]) -> T:
    """The process's one ``kind`` object for ``key`` (a store for a URL, a tool registry for a path).

    Made by ``factory`` at the first call, under a lock so concurrent first calls make one; a factory
    that raises keeps nothing, so the next call tries again. For the app's process-wide state, which
    must not live in ``st.cache_resource`` (any browser can empty that with a ``clear_cache`` message).
    """
    with _resources_lock:
        if (kind, key) not in _resources:
            _resources[(kind, key)] = factory()
        return cast(T, _resources[(kind, key)])
