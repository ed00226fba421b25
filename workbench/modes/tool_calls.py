"""Running one tool call for the Tool loop: in a worker thread, with progress, Stop and confirmation.

The loop hands a call to :class:`RunningCall`, which runs :meth:`tools.ToolRegistry.call` in a thread
of its own and passes on what the call reports (an MCP server's ``notifications/progress``) as
:class:`~workbench.modes.events.CallProgress` events, plus one about twice a second while it runs,
so a page shows the call alive and its Stop reaches the call. Cancelling makes an MCP call's server
receive ``notifications/cancelled``; other tools cannot be cancelled and are abandoned.

A call to an MCP server configured with ``confirm`` waits for the user as a :class:`PendingCall`
when the loop asks (the app's Run/Skip); this module also makes the observations for the calls the
user skipped or stopped.
"""

from __future__ import annotations

import contextvars
import queue
import threading
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

from tools import CallControl, ToolRegistry, ToolResult, truncate_for_model
from tools.mcp_client import skipped_message
from workbench.conversation import Conversation
from workbench.dialects.calls import InvalidCall
from workbench.messages import Message, Role, ToolCall
from workbench.modes.events import CallProgress

HEARTBEAT_S = 0.5
"""Seconds between two :class:`CallProgress` events while a call runs without reporting."""
STOP_WAIT_S = 5.0
"""Seconds a stopped call is given to end (an MCP server answers a cancel) before it is abandoned."""
SKIPPED = "CallSkippedError"
"""``error_type`` of the observation of a call the user skipped."""
STOPPED = "ToolCancelledError"
"""``error_type`` of the observation of a call the user stopped."""


@dataclass
class PendingCall:
    """A call waiting for the user's Run or Skip, and what the turn does after it.

    Attributes:
        call: The call waiting.
        server: The MCP server that asks for confirmation.
        rest: The same reply's calls after it, still to run.
        tools: The tool schemas the turn was shown.
        replies: Replies the model has written in this turn (counted against ``max_rounds``).
        history: The conversation it belongs to (a call pending in another one is dropped).
    """

    call: ToolCall
    server: str
    rest: list[ToolCall | InvalidCall]
    tools: list[dict[str, Any]]
    replies: int
    history: Conversation = field(repr=False)


class RunningCall:
    """One call running in a worker thread: its progress as events, its result, cancel.

    Args:
        registry: Runs the call.
        call: The model's call.
        enabled: The tools switched on (None: all).
        timeout: Seconds for tools that set no limit of their own (None: the registry's).
        confirmed: The user chose Run for it (an MCP server configured with ``confirm``).
    """

    def __init__(
        self,
        registry: ToolRegistry,
        call: ToolCall,
        *,
        enabled: set[str] | None,
        timeout: float | None,
        confirmed: bool = False,
    ) -> None:
        self.call = call
        self.result: ToolResult | None = None
        self._updates: queue.Queue[tuple[float, float | None, str | None] | None] = queue.Queue()
        self.control = CallControl(lambda *report: self._updates.put(report), confirmed=confirmed)
        self._started = time.monotonic()

        def work() -> None:
            try:
                self.result = registry.call(call, enabled=enabled, timeout=timeout, control=self.control)
            finally:
                self._updates.put(None)  # the end

        context = contextvars.copy_context()  # the tool sees the caller's context variables
        self._worker = threading.Thread(
            target=context.run, args=(work,), name=f"tool-call-{call.name}", daemon=True
        )
        self._worker.start()

    def progress(self) -> Generator[CallProgress, None, ToolResult]:
        """Yield the call's progress until it ends; return its result."""
        last: tuple[float, float | None, str | None] | None = None
        while True:
            try:
                update = self._updates.get(timeout=HEARTBEAT_S)
            except queue.Empty:
                update = last  # nothing new: say it still runs
            else:
                if update is None:
                    break
                last = update
            seconds = time.monotonic() - self._started
            yield CallProgress(self.call, seconds, *(update or (None, None, None)))
        self._worker.join()
        assert self.result is not None
        return self.result

    def cancel(self, wait: float = STOP_WAIT_S) -> ToolResult | None:
        """Cancel the call and wait up to ``wait`` seconds for it to end; its result, or None if it still runs."""
        self.control.cancel()
        self._worker.join(wait)
        return self.result


def observation(call: ToolCall, result: ToolResult, max_chars: int) -> Message:
    """The observation message of a finished call (its result cut to ``max_chars`` for the model)."""
    content = truncate_for_model(result.content, max_chars)
    metadata: dict[str, Any] = {"arguments": result.arguments, "duration_s": round(result.duration_s, 3)}
    if result.error_type:
        metadata["error_type"] = result.error_type
    if len(content) != len(result.content):
        metadata["full_length"] = len(result.content)
    return Message(
        Role.OBSERVATION,
        content,
        name=call.name,
        error=result.error,
        tool_call_id=call.id,
        metadata=metadata,
        images=result.images,
    )


def skipped(call: ToolCall | InvalidCall) -> Message:
    """The observation of a call the user chose not to run."""
    return Message(
        Role.OBSERVATION,
        skipped_message(call.name or "unknown"),
        name=call.name or "unknown",
        error=True,
        tool_call_id=call.id,
        metadata={"arguments": getattr(call, "arguments", None), "error_type": SKIPPED},
    )


def stopped(call: ToolCall) -> Message:
    """The observation of a call the user stopped and that did not end in time."""
    return Message(
        Role.OBSERVATION,
        f"The user stopped the call to {call.name!r} before it finished; it may still end in the background, "
        "and its result is not known.",
        name=call.name,
        error=True,
        tool_call_id=call.id,
        metadata={"arguments": call.arguments, "error_type": STOPPED},
    )
