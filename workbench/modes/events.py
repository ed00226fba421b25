"""Events a mode loop yields while it answers one user message.

Pages and the CLI render events; they hold no logic. Every message a loop creates is also appended
to its session's history before the matching :class:`MessageDone` is yielded, so a consumer that
goes away (a stopped script) never loses a finished step.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from workbench.messages import Message, ToolCall
from workbench.models.generation import GenerationStream


@dataclass
class TextDelta:
    """A chunk of assistant text, for streaming display."""

    text: str


@dataclass
class MessageDone:
    """A message was completed and appended to the history (assistant, call or observation)."""

    message: Message


@dataclass
class Notice:
    """Something the user should know that is not part of the conversation (limits, restarts)."""

    text: str
    level: str = "info"  # info | warning | error


@dataclass
class CallProgress:
    """A tool call is still running: its server's last progress report, and how long it has run.

    Yielded by the Tool loop when a server reports progress (MCP ``notifications/progress``) and about
    twice a second while a call runs, so a page can show it and a Stop can reach the call.

    Attributes:
        call: The call.
        seconds: Seconds since it started.
        progress: The last progress reported (None before any report).
        total: The total it counts towards, when the server gave one.
        message: The server's last progress message, if any.
    """

    call: ToolCall
    seconds: float
    progress: float | None = None
    total: float | None = None
    message: str | None = None

    def describe(self) -> str:
        """``3/10 · step 3 of 10 · 2.1 s`` (what is known)."""
        parts = []
        if self.progress is not None:
            parts.append(f"{self.progress:g}/{self.total:g}" if self.total else f"{self.progress:g}")
        if self.message:
            parts.append(self.message)
        parts.append(f"{self.seconds:.1f} s")
        return " · ".join(parts)


@dataclass
class ConfirmationNeeded:
    """The turn paused: the call needs the user's Run or Skip (an MCP server configured with ``confirm``).

    The session keeps the call as :attr:`~workbench.modes.tool.ToolSession.pending`;
    :meth:`~workbench.modes.tool.ToolSession.decide` runs or skips it and goes on with the turn.

    Attributes:
        call: The call waiting.
        server: The MCP server that asks for confirmation.
    """

    call: ToolCall
    server: str


@dataclass
class Waiting:
    """The model is busy with other sessions: the reply waits for a free slot (shown until its first text).

    Attributes:
        text: "Waiting for a free slot (n ahead)".
    """

    text: str


def waiting_events(stream: GenerationStream) -> Iterator[Waiting]:
    """A :class:`Waiting` event if ``stream`` waits for a free slot of the model, else nothing."""
    notice = stream.waiting_notice()
    if notice:
        yield Waiting(notice)


Event = TextDelta | MessageDone | Notice | CallProgress | ConfirmationNeeded | Waiting
