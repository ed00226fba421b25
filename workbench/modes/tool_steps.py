"""A Tool-mode history grouped for display: each user message, then the model's texts and calls.

The page shows one assistant bubble per user message; inside it, the text the model wrote and one
status block per call with its arguments and result. An observation is paired with the call whose id
it names (``tool_call_id``); one without an id (an older transcript) takes the first call still
waiting, in order: an assistant message's calls (readable first, then unreadable).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from workbench.dialects.calls import invalid_calls
from workbench.messages import Message, Role


@dataclass
class CallStep:
    """One call and what came back.

    Attributes:
        name: The tool called (``unknown`` when it could not be read).
        arguments: The arguments as the model sent them (None for an unreadable call).
        observation: The result message, or None while the call runs (or if the turn was stopped).
        raw: For an unreadable call, what the model wrote.
        id: The call's id, which its observation names.
    """

    name: str
    arguments: Any
    observation: Message | None = None
    raw: str | None = None
    id: str | None = None

    @property
    def failed(self) -> bool:
        """Whether the call failed (an error result or an unreadable call)."""
        return self.raw is not None or (self.observation is not None and self.observation.error)


@dataclass
class Reply:
    """One assistant message: its text and its calls."""

    message: Message
    calls: list[CallStep] = field(default_factory=list)


@dataclass
class Exchange:
    """One user message and everything the model did to answer it."""

    user: Message | None
    replies: list[Reply] = field(default_factory=list)


def call_steps(message: Message) -> list[CallStep]:
    """The calls of an assistant message, without results yet."""
    steps = [CallStep(call.name, call.arguments, id=call.id) for call in message.tool_calls]
    steps += [
        CallStep(bad.name or "unknown", None, raw=bad.text, id=bad.id) for bad in invalid_calls(message)
    ]
    return steps


def _waiting_step(waiting: list[CallStep], observation: Message) -> CallStep | None:
    """Take the step an observation answers: by its call id, else the first one waiting."""
    if observation.tool_call_id is not None:
        for index, step in enumerate(waiting):
            if step.id == observation.tool_call_id:
                return waiting.pop(index)
    return waiting.pop(0) if waiting else None


def group_exchanges(messages: list[Message]) -> list[Exchange]:
    """Group a history (system messages left out) into exchanges for display."""
    exchanges: list[Exchange] = []
    waiting: list[CallStep] = []
    for message in messages:
        if message.role is Role.SYSTEM:
            continue
        if message.role is Role.USER:
            exchanges.append(Exchange(message))
            waiting = []
            continue
        if not exchanges:
            exchanges.append(Exchange(None))
        current = exchanges[-1]
        if message.role is Role.ASSISTANT:
            reply = Reply(message, call_steps(message))
            current.replies.append(reply)
            waiting = list(reply.calls)
        elif (step := _waiting_step(waiting, message)) is not None:
            step.observation = message
        else:  # an observation with no call before it (a hand-edited transcript): show it on its own
            current.replies.append(
                Reply(Message(Role.ASSISTANT), [CallStep(message.name or "unknown", None, message)])
            )
    return exchanges
