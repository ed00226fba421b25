"""Events a mode loop yields while it answers one user message.

Pages and the CLI render events; they hold no logic. Every message a loop creates is also appended
to its session's history before the matching :class:`MessageDone` is yielded, so a consumer that
goes away (a stopped script) never loses a finished step.
"""

from __future__ import annotations

from dataclasses import dataclass

from workbench.messages import Message


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


Event = TextDelta | MessageDone | Notice
