"""SerialBackend runs every decode of an engine in one long-lived thread (CUDA keeps state per thread)."""

from __future__ import annotations

import gc
import threading

from workbench.models.backend import ModelInfo, PreparedPrompt, SerialBackend
from workbench.models.generation import GenerationRequest, SamplingSettings
from workbench.models.spec import ModelSpec


class _ThreadRecorder(SerialBackend):
    """Writes one word and records the thread each decode and each tidy-up ran in."""

    template = None  # type: ignore[assignment]

    def __init__(self) -> None:
        info = ModelInfo("recorder", "test", "", "test", "cpu", "float32", 64, 0.0, "none")
        super().__init__(ModelSpec(source="embedded"), info)
        self.threads: list[int] = []
        self.fail = False

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def default_settings(self) -> SamplingSettings:
        return SamplingSettings()

    def prepare(self, request: GenerationRequest) -> PreparedPrompt:
        return PreparedPrompt(1, 1)

    def decode(self, request, prepared, stream, stats) -> None:
        self.threads.append(threading.get_ident())
        if self.fail:
            raise RuntimeError("the engine broke")
        self.emit(stream, stats, "word")
        stats.new_tokens = 1

    def after_decode(self) -> None:
        self.threads.append(threading.get_ident())


def test_every_decode_and_tidy_up_runs_in_the_same_thread():
    backend = _ThreadRecorder()
    for _ in range(3):
        assert backend.start(GenerationRequest("a prompt")).result(timeout=10) == "word"
        with backend._lock:  # the tidy-up runs after the answer is delivered, holding the lock
            pass
    assert len(backend.threads) == 6
    assert len(set(backend.threads)) == 1
    assert backend.threads[0] != threading.get_ident()


def test_an_engine_error_still_reaches_the_consumer_and_the_thread_goes_on():
    backend = _ThreadRecorder()
    backend.fail = True
    failed = backend.start(GenerationRequest("a prompt"))
    failed.wait(10)
    assert failed.stats.finish_reason == "error" and "the engine broke" in str(failed.error)
    backend.fail = False
    assert backend.start(GenerationRequest("a prompt")).result(timeout=10) == "word"
    assert len(set(backend.threads)) == 1


def test_the_thread_ends_when_its_engine_is_dropped():
    backend = _ThreadRecorder()
    backend.start(GenerationRequest("a prompt")).result(timeout=10)
    thread = backend._decode_thread._thread
    assert thread is not None and thread.is_alive()
    del backend
    gc.collect()
    thread.join(10)
    assert not thread.is_alive()
