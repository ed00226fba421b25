"""The Tool loop with a real MCP server (our own, on the official SDK): Run/Skip for ``confirm`` servers,
progress reports as events, and Stop sending ``notifications/cancelled`` to a call in flight.

The model is the scripted one (its calls are fixed); the server is a real process answering through the SDK.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.mcp.conftest import misbehaving
from tests.scripted import ScriptedBackend, call, hermes
from tools import ToolRegistry
from tools.mcp_client import McpTools
from workbench.chat_model import ChatModel
from workbench.messages import Message, Role
from workbench.modes.events import CallProgress, ConfirmationNeeded, MessageDone
from workbench.modes.tool import ToolChoice, ToolOptions, ToolSession

Start = Callable[..., McpTools]


def _session(start_servers: Start, *replies: str, entry: dict[str, Any], **options: Any) -> ToolSession:
    mcp = start_servers({"own": entry})
    registry = ToolRegistry()
    registry.attach_mcp(mcp)
    assert registry.wait(60) and registry.names(), mcp.servers["own"].describe_state()
    model = ChatModel(ScriptedBackend(*replies), dialect=hermes())
    return ToolSession(model, registry, options=ToolOptions(tool_choice=ToolChoice.REQUIRED, **options))


def _observations(session: ToolSession) -> list[Message]:
    return [m for m in session.messages if m.role is Role.OBSERVATION]


def test_a_confirm_server_pauses_the_turn_until_run(start_servers: Start) -> None:
    session = _session(
        start_servers,
        call("echo", text="ran"),
        "It said ran.",
        entry=misbehaving(confirm=True, tools=["echo"]),
        ask_confirmation=True,
    )
    events = list(session.send("Echo something"))
    assert isinstance(events[-1], ConfirmationNeeded)
    assert (events[-1].call.name, events[-1].server) == ("echo", "own")
    assert session.pending is not None and session.pending.call.id == session.messages[-1].tool_calls[0].id
    assert not _observations(session) and not session.busy  # nothing ran yet
    session.stop()  # a page's next script run stops leftovers: the waiting call stays
    assert session.pending is not None

    rest = list(session.decide(run=True))
    [answer] = _observations(session)
    assert (answer.content, answer.error) == ("ran", False)  # the server's own answer
    assert answer.tool_call_id == session.messages[1].tool_calls[0].id
    assert [e.message.content for e in rest if isinstance(e, MessageDone)] == ["ran", "It said ran."]
    assert session.pending is None and list(session.decide(run=True)) == []


def test_skip_becomes_an_observation_saying_the_user_skipped(start_servers: Start) -> None:
    session = _session(
        start_servers,
        call("echo", text="never"),
        "Fine, without it.",
        entry=misbehaving(confirm=True, tools=["echo"]),
        ask_confirmation=True,
    )
    list(session.send("Echo something"))
    list(session.decide(run=False))
    [skipped] = _observations(session)
    assert skipped.error and skipped.metadata["error_type"] == "CallSkippedError"
    assert skipped.content == "The user skipped this call to 'echo', so it did not run. Answer without it."
    assert session.messages[-1].content == "Fine, without it."


def test_a_new_message_skips_the_waiting_call(start_servers: Start) -> None:
    session = _session(
        start_servers,
        call("echo", text="never"),
        call("echo", text="again"),
        entry=misbehaving(confirm=True, tools=["echo"]),
        ask_confirmation=True,
    )
    list(session.send("Echo something"))
    list(session.send("Something else"))
    roles = [m.role for m in session.messages]
    assert roles == [Role.USER, Role.ASSISTANT, Role.OBSERVATION, Role.USER, Role.ASSISTANT]
    assert "skipped" in session.messages[2].content and session.pending is not None


def test_without_asking_a_confirm_server_is_refused_as_before(start_servers: Start) -> None:
    session = _session(
        start_servers, call("echo", text="x"), "No.", entry=misbehaving(confirm=True, tools=["echo"])
    )
    list(session.send("Echo something"))
    [refused] = _observations(session)
    assert refused.error and refused.metadata["error_type"] == "ConfirmationNeededError"
    assert session.pending is None


def test_progress_reports_arrive_as_events(start_servers: Start) -> None:
    session = _session(
        start_servers, call("count", steps=3, delay=0.4), "Counted.", entry=misbehaving(tools=["count"])
    )
    events = list(session.send("Count to three"))
    reports = [(e.progress, e.total, e.message) for e in events if isinstance(e, CallProgress) and e.progress]
    assert [r for r in reports if r[0] is not None][:1] == [(1.0, 3.0, "step 1 of 3")]
    assert {r[0] for r in reports} >= {1.0, 2.0, 3.0}  # a heartbeat repeats the last report
    progress = next(e for e in events if isinstance(e, CallProgress) and e.progress == 2.0)
    assert progress.describe().startswith("2/3 · step 2 of 3 · ")
    assert _observations(session)[0].content == "counted to 3"


def _stopped_call(session: ToolSession, marker: Path) -> Message:
    [observation] = _observations(session)
    assert observation.error and observation.metadata["error_type"] == "ToolCancelledError"
    assert "was told to cancel it" in observation.content
    deadline = time.monotonic() + 10
    while not marker.exists():  # the server's handler was interrupted by notifications/cancelled
        assert time.monotonic() < deadline, "the server never heard the cancel"
        time.sleep(0.1)
    assert marker.read_text() == "cancelled"
    return observation


def test_a_stopped_page_cancels_the_call_on_the_server(start_servers: Start, tmp_path: Path) -> None:
    marker = tmp_path / "cancelled"
    session = _session(
        start_servers,
        call("count", steps=100, delay=0.2, marker=str(marker)),
        "Never written.",
        entry=misbehaving(tools=["count"]),
    )
    events = session.send("Count to a hundred")
    for event in events:
        if isinstance(event, CallProgress) and event.progress == 2.0:
            break
    events.close()  # what Stop does to the page's script: the turn's generator is closed mid-call
    started = time.monotonic()
    _stopped_call(session, marker)
    assert time.monotonic() - started < 8  # far from the 20 s the call would take
    assert session.messages[-1].role is Role.OBSERVATION  # no answer after a stop


def test_stop_from_another_thread_cancels_the_call(start_servers: Start, tmp_path: Path) -> None:
    marker = tmp_path / "cancelled"
    session = _session(
        start_servers,
        call("count", steps=100, delay=0.2, marker=str(marker)),
        "Never written.",
        entry=misbehaving(tools=["count"]),
    )
    events: list[Any] = []

    def consume() -> None:
        for event in session.send("Count to a hundred"):
            events.append(event)

    worker = threading.Thread(target=consume)
    worker.start()
    deadline = time.monotonic() + 30
    while not any(isinstance(e, CallProgress) and e.progress for e in events):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    session.stop()
    worker.join(15)
    assert not worker.is_alive()
    _stopped_call(session, marker)
    assert session.messages[-1].role is Role.OBSERVATION
