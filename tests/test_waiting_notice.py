""""Waiting for a free slot (n ahead)": the serial engine says it too, and the Tool and Code loops pass it on.

The batched llama.cpp engine's own queue is tested in tests/test_llamacpp_batching.py; the pages in
tests/e2e/test_waiting_browser.py.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from tests.scripted import PlainDialect, ScriptedBackend
from tests.test_code_mode import FakeKernel, drain
from tests.test_tool_loop import hermes
from tools import ToolRegistry
from workbench.chat_model import ChatModel
from workbench.messages import Role
from workbench.models.backend import ModelInfo, PreparedPrompt, SerialBackend
from workbench.models.generation import GenerationRequest, GenerationStream, SamplingSettings
from workbench.models.spec import ModelSpec
from workbench.modes.code import CodeSession, CodeSettings
from workbench.modes.events import TextDelta, Waiting
from workbench.modes.tool import ToolChoice, ToolOptions, ToolSession


class _Gated(SerialBackend):
    """Writes one word once its gate opens."""

    template = None  # type: ignore[assignment]

    def __init__(self) -> None:
        info = ModelInfo("gated", "test", "", "test", "cpu", "float32", 64, 0.0, "none")
        super().__init__(ModelSpec(source="embedded"), info)
        self.gate = threading.Event()

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def default_settings(self) -> SamplingSettings:
        return SamplingSettings()

    def prepare(self, request: GenerationRequest) -> PreparedPrompt:
        return PreparedPrompt(1, 1)

    def decode(self, request, prepared, stream, stats) -> None:
        self.gate.wait(30)
        self.emit(stream, stats, "word")
        stats.new_tokens = 1


def test_the_serial_engine_says_how_many_wait_ahead_while_another_generation_runs():
    backend = _Gated()
    first = backend.start(GenerationRequest("one"))
    assert first.waiting_notice() is None
    while not backend.generating:
        threading.Event().wait(0.01)
    second = backend.start(GenerationRequest("two"))
    while backend._waiting < 1:
        threading.Event().wait(0.01)
    third = backend.start(GenerationRequest("three"))
    assert second.waiting_notice() == "Waiting for a free slot (0 ahead)"
    assert third.waiting_notice() == "Waiting for a free slot (1 ahead)"
    backend.gate.set()
    assert [s.result(timeout=10) for s in (first, second, third)] == ["word"] * 3
    assert second.ahead is None and third.ahead is None


class _Busy(ScriptedBackend):
    """A scripted model whose every reply first waits behind one other request."""

    def start(self, request: GenerationRequest) -> GenerationStream:
        stream = super().start(request)
        stream.ahead = 1
        self.streams.append(stream)
        return stream

    @property
    def streams(self) -> list[GenerationStream]:
        return self.__dict__.setdefault("_streams", [])

    def _write(self, reply: Any, stopped: bool, stream: GenerationStream) -> None:
        threading.Event().wait(0.05)
        stream.ahead = None  # a slot is free: the text comes
        super()._write(reply, stopped, stream)


def test_the_tool_loop_yields_the_notice_before_the_text():
    model = ChatModel(_Busy("Paris."), dialect=hermes())
    events = list(ToolSession(model, ToolRegistry(), options=ToolOptions(tool_choice=ToolChoice.NONE)).send("Capital?"))
    assert isinstance(events[0], Waiting) and events[0].text == "Waiting for a free slot (1 ahead)"
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Paris."


def test_the_tool_loop_yields_no_notice_when_the_model_is_free():
    model = ChatModel(ScriptedBackend("Paris."), dialect=hermes())
    events = list(ToolSession(model, ToolRegistry(), options=ToolOptions(tool_choice=ToolChoice.NONE)).send("Capital?"))
    assert not any(isinstance(e, Waiting) for e in events)


def test_the_code_loop_yields_the_notice_then_the_forced_fence_and_the_code(tmp_path: Path):
    backend = _Busy("print(1)\n```", "It printed 1.", chunk_chars=4)
    session = CodeSession(
        ChatModel(backend, dialect=PlainDialect()),
        FakeKernel(tmp_path),
        code_settings=CodeSettings(worked_example=False),
    )
    events = drain(session.send("Print one."))
    assert isinstance(events[0], Waiting)
    first_text = next(e for e in events if isinstance(e, TextDelta))
    assert first_text.text == "```python\n"  # the forced fence comes with the text, after the notice
    assert sum(isinstance(e, Waiting) for e in events) == 2  # each of the two replies waited


def test_closing_the_tool_events_while_a_forced_call_waits_stops_its_generation():
    backend = _Busy('{"name": "calculator", "arguments": {"expression": "1+1"}}', delay_s=0.2)
    registry = ToolRegistry()
    registry.load_builtins()
    session = ToolSession(
        ChatModel(backend, dialect=hermes()), registry, options=ToolOptions(tool_choice=ToolChoice.REQUIRED)
    )
    events = session.send("What is 1+1?")
    assert isinstance(next(events), Waiting)
    events.close()  # Stop in the app while the call waits for a free slot
    (stream,) = backend.streams
    assert stream.cancelled and stream.done.is_set()
    assert [m.role for m in session.messages] == [Role.USER]
