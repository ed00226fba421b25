"""Running one tool call: check it, run the function under a time limit, turn the outcome into text.

Nothing here raises for a bad call. Every failure becomes a :class:`ToolResult` with ``error=True``
and a message the model can act on, because the model, not the user, has to fix its next call.
"""

from __future__ import annotations

import asyncio
import contextvars
import difflib
import inspect
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tools.arguments import prepare_arguments
from tools.errors import ToolDisabledError, ToolRaisedError, ToolTimeoutError, UnknownToolError
from tools.host import HostedTool
from tools.spec import ToolSpec
from workbench.errors import ToolError
from workbench.messages import Message, Role, ToolCall

logger = logging.getLogger(__name__)

NO_RESULT = "(no result)"
"""What the model sees when a tool returns None."""

Progress = Callable[[float, "float | None", "str | None"], None]
"""Told of a call's progress: ``(progress, total or None, message or None)``, as MCP reports it."""


class CallControl:
    """What a caller can do with one call while it runs: hear its progress, cancel it, confirm it.

    Made by the caller (the Tool loop) and passed to :meth:`tools.ToolRegistry.call`. A tool that can
    report progress or be cancelled (an MCP tool) uses it; others ignore it.

    Args:
        on_progress: Called, from any thread, with each progress report.
        confirmed: The user already allowed this call (an MCP server configured with ``confirm``).
    """

    def __init__(self, on_progress: Progress | None = None, *, confirmed: bool = False) -> None:
        self.on_progress = on_progress
        self.confirmed = confirmed
        self._cancelled = threading.Event()
        self._lock = threading.Lock()
        self._on_cancel: list[Callable[[], Any]] = []

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called."""
        return self._cancelled.is_set()

    def cancel(self) -> None:
        """Cancel the call (from any thread): an MCP tool's server is sent ``notifications/cancelled``."""
        with self._lock:
            self._cancelled.set()
            hooks, self._on_cancel = self._on_cancel, []
        for hook in hooks:
            hook()

    def on_cancel(self, hook: Callable[[], Any]) -> None:
        """Run ``hook`` when the call is cancelled (at once if it already is)."""
        with self._lock:
            if not self._cancelled.is_set():
                self._on_cancel.append(hook)
                return
        hook()

    def progress(self, progress: float, total: float | None = None, message: str | None = None) -> None:
        """Pass one progress report on to the caller."""
        if self.on_progress is not None:
            self.on_progress(progress, total, message)


@dataclass
class ToolResult:
    """The outcome of one call, fed back to the model as an observation.

    Attributes:
        name: The tool the model called.
        arguments: The arguments the tool ran with (after coercion), or as sent when they were invalid.
        content: The result as text, or the error message.
        error: Whether the call failed.
        error_type: For a failed call, the error class name (``UnknownToolError``, ``ToolDisabledError``,
            ``InvalidArgumentsError``, ``ToolRaisedError``, ``ToolTimeoutError``).
        duration_s: Seconds from receiving the call to having the result.
        images: PNG images the tool returned (MCP tools), kept with the observation.
    """

    name: str
    arguments: Any
    content: str
    error: bool = False
    error_type: str | None = None
    duration_s: float = 0.0
    images: list[bytes] = field(default_factory=list)

    def to_message(self) -> Message:
        """Return the observation message for the conversation."""
        return Message(
            role=Role.OBSERVATION, content=self.content, name=self.name, error=self.error, images=self.images
        )


def call_tool(
    specs: Mapping[str, ToolSpec],
    call: ToolCall,
    *,
    enabled: set[str] | None,
    timeout: float,
    control: CallControl | None = None,
) -> ToolResult:
    """Check and run ``call`` against ``specs``; see :meth:`ToolRegistry.call`."""
    started = time.perf_counter()
    arguments: Any = call.arguments
    try:
        spec = _find(specs, call.name, enabled)
        arguments = prepare_arguments(spec.name, spec.parameters, call.arguments)
        images: list[bytes] = []
        run_call = getattr(spec.function, "run_call", None)  # an MCP tool: its own timeout, images
        if callable(run_call):
            outcome = run_call(arguments, spec.timeout or timeout, control)
            content, images = outcome.text, outcome.images
        else:
            content = run_with_timeout(spec, arguments, spec.timeout or timeout)
    except ToolError as exc:
        return ToolResult(
            call.name, arguments, str(exc), True, type(exc).__name__, time.perf_counter() - started
        )
    elapsed = time.perf_counter() - started
    return ToolResult(call.name, arguments, content, False, None, elapsed, images)


def _find(specs: Mapping[str, ToolSpec], name: Any, enabled: set[str] | None) -> ToolSpec:
    usable = [n for n in specs if enabled is None or n in enabled]
    listing = ", ".join(usable) if usable else "(none: no tool is switched on)"
    spec = specs.get(name) if isinstance(name, str) else None
    if spec is None:
        close = difflib.get_close_matches(str(name), usable, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise UnknownToolError(
            f"There is no tool named {name!r}.{hint} The tools you can call are: {listing}."
        )
    if enabled is not None and name not in enabled:
        raise ToolDisabledError(
            f"The tool {name!r} is switched off in this conversation, so it cannot be called. "
            f"The tools you can call are: {listing}."
        )
    return spec


def run_with_timeout(spec: ToolSpec, arguments: dict[str, Any], timeout: float) -> str:
    """Run the tool and return its result as text.

    A tool from a tool file runs in the tool host, whose process is killed when the tool runs past
    its limit. Any other tool (built-ins, installed modules) runs in a worker thread here: a Python
    thread cannot be killed, so such a tool past its limit is abandoned, not stopped, and keeps
    running in the background until it returns. The thread is a daemon so it never keeps the process alive.

    Raises:
        ToolRaisedError: If the tool raised (the message gives the type and text).
        ToolTimeoutError: If it did not finish within ``timeout`` seconds.
    """
    if isinstance(spec.function, HostedTool):
        return spec.function.run(arguments, timeout)
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            value = spec.function(**arguments)
            if inspect.iscoroutine(value):
                value = asyncio.run(value)
            outcome["text"] = result_to_text(value)
        except BaseException as exc:  # the tool's own error is the result; SystemExit included
            outcome["error"] = exc

    context = contextvars.copy_context()  # the tool sees the caller's context variables
    worker = threading.Thread(target=context.run, args=(work,), name=f"tool-{spec.name}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise ToolTimeoutError(
            f"The tool {spec.name!r} did not finish within its limit of {timeout:g} seconds and was "
            "abandoned. Try simpler arguments, or answer without this tool."
        )
    if "error" in outcome:
        exc = outcome["error"]
        logger.info("Tool %r raised", spec.name, exc_info=exc)
        detail = str(exc) or "(no message)"
        raise ToolRaisedError(f"The tool {spec.name!r} failed with {type(exc).__name__}: {detail}")
    return str(outcome["text"])


def result_to_text(value: Any) -> str:
    """Return a tool's value as text: strings as they are, dicts and lists as JSON, others by ``str``."""
    if value is None:
        return NO_RESULT
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list | tuple):
        try:
            return json.dumps(value, ensure_ascii=False, default=str)
        except (TypeError, ValueError):  # keys JSON cannot hold, or a circular reference
            return str(value)
    return str(value)


def truncate_for_model(text: str, max_chars: int) -> str:
    """Return ``text`` cut to ``max_chars`` characters, with a visible marker saying how much was cut."""
    if len(text) <= max_chars:
        return text
    cut = len(text) - max(max_chars, 0)
    return f"{text[: max(max_chars, 0)]}\n[... {cut} more characters cut ...]"
