"""One loaded copy of a model per process, shared by every page, session and thread.

:class:`SharedModel` is a slot for one :class:`ModelSpec`: the first caller loads it (others wait on
the lock, then reuse it); a failed load leaves the slot empty so the next call can try again. The
Streamlit app keeps these slots in ``st.cache_resource``; the CLI and tests use :func:`shared_model`.
"""

from __future__ import annotations

import threading

from workbench.chat_model import ChatModel
from workbench.models.loading import ProgressCallback
from workbench.models.spec import ModelSpec


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


def shared_model(spec: ModelSpec) -> SharedModel:
    """Return the process-wide slot for a spec (outside Streamlit)."""
    with _slots_lock:
        return _slots.setdefault(spec, SharedModel(spec))
