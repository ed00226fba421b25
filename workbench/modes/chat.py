"""The chat loop: one conversation with a system prompt, streaming, stop, regenerate and clear.

A :class:`ChatSession` belongs to one page of one browser session (or one CLI run). Sending a message
returns a :class:`Turn`, an iterator of text chunks. Whatever ends the turn (the model's end, Stop,
a closed browser tab, an exception in the consumer) the reply generated so far is added to the
history when the turn is closed, and the generation itself is halted.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from workbench.chat_model import ChatModel
from workbench.conversation import Message, Role
from workbench.errors import EmptyPromptError, WorkbenchError
from workbench.models.generation import GenerationStats, GenerationStream, SamplingSettings


class Turn:
    """One assistant reply being generated; iterate to get its text as it is written.

    Closing the turn (explicitly, or by leaving a ``with`` block) stops the generation and records the
    reply (possibly partial) in the session's history exactly once.
    """

    def __init__(self, session: ChatSession, stream: GenerationStream) -> None:
        self.session = session
        self.stream = stream
        self.message: Message | None = None
        # A stopped Streamlit script and the next run may both close the turn: record it once.
        self._close_lock = threading.Lock()

    def __iter__(self) -> Iterator[str]:
        try:
            yield from self.stream
        finally:
            self.close()

    def __enter__(self) -> Turn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def stats(self) -> GenerationStats:
        """The generation's statistics (final once the turn is closed)."""
        return self.stream.stats

    def stop(self) -> None:
        """Ask the model to stop after the current token; the partial reply is kept."""
        self.stream.cancel()

    def close(self) -> Message:
        """Stop the generation if it still runs and add the reply to the history (once)."""
        with self._close_lock:
            return self._close()

    def _close(self) -> Message:
        if self.message is not None:
            return self.message
        self.stream.halt()
        message = self.session.model.dialect.parse(self.stream.text)
        stats = self.stream.stats
        message.metadata["stats"] = stats.to_dict()
        if stats.finish_reason == "cancelled":
            message.metadata["stopped"] = True
        if self.stream.error is not None:
            message.metadata["error"] = str(self.stream.error)
        self.message = message
        self.session._finish(self)
        return message


class ChatSession:
    """A chat conversation: history, system prompt and sampling settings.

    Attributes:
        model: The shared model.
        system_prompt: Sent first, as the system message, when not empty.
        settings: Sampling settings for the next turns.
        messages: The user and assistant messages so far (the system prompt is kept apart).
    """

    def __init__(
        self, model: ChatModel, system_prompt: str = "", settings: SamplingSettings | None = None
    ) -> None:
        self.model = model
        self.system_prompt = system_prompt
        self.settings = settings or model.default_settings()
        self.messages: list[Message] = []
        self.active: Turn | None = None

    @property
    def busy(self) -> bool:
        """Whether a turn is being generated."""
        return self.active is not None

    def conversation(self) -> list[Message]:
        """The messages as sent to the model: the system prompt, then the history."""
        head = [Message(Role.SYSTEM, self.system_prompt)] if self.system_prompt.strip() else []
        return head + self.messages

    def send(self, text: str) -> Turn:
        """Add the user's message and start the reply.

        Raises:
            EmptyPromptError: If ``text`` is blank.
            PromptTooLongError: If the conversation no longer fits the model's context (the user's
                message is taken back so nothing is half-recorded).
        """
        if not text or not text.strip():
            raise EmptyPromptError("The message is empty; type something to send.")
        self.stop()
        self.messages.append(Message(Role.USER, text))
        try:
            return self._start()
        except WorkbenchError:
            self.messages.pop()
            raise

    def regenerate(self) -> Turn:
        """Drop the last reply and generate it again.

        Raises:
            WorkbenchError: If there is no user message to answer yet.
        """
        self.stop()
        while self.messages and self.messages[-1].role is not Role.USER:
            self.messages.pop()
        if not self.messages:
            raise EmptyPromptError("Nothing to regenerate yet: send a message first.")
        return self._start()

    def stop(self) -> None:
        """Stop the reply being generated, if any, keeping what it wrote."""
        if self.active is not None:
            self.active.close()

    def clear(self) -> None:
        """Stop any reply and empty the history (the system prompt and settings stay)."""
        self.stop()
        self.messages.clear()

    def _start(self) -> Turn:
        stream = self.model.stream(self.conversation(), self.settings)
        self.active = Turn(self, stream)
        return self.active

    def _finish(self, turn: Turn) -> None:
        if turn.message is not None and (turn.message.content or not turn.message.metadata.get("stopped")):
            self.messages.append(turn.message)
        if self.active is turn:
            self.active = None
