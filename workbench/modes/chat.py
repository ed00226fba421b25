"""The chat loop: one conversation with a system prompt, streaming, stop, edit, regenerate and clear.

A :class:`ChatSession` belongs to one page of one browser session (or one CLI run). Sending a message
returns a :class:`Turn`, an iterator of the same :mod:`events <workbench.modes.events>` the tool and
code loops yield (:class:`TextDelta` chunks, then :class:`MessageDone` with the recorded reply);
:meth:`Turn.text` gives the text chunks alone, for ``st.write_stream`` and the CLI. The history lives
in a :class:`~workbench.conversation.Conversation` (mode chat) and changes only through it. Whatever ends the turn (the model's end, Stop,
a closed browser tab, an exception in the consumer) the reply generated so far is added to the
history when the turn is closed, and the generation itself is halted.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from workbench.chat_model import ChatModel
from workbench.conversation import Conversation, Mode
from workbench.errors import EmptyPromptError, WorkbenchError
from workbench.messages import Message, Role
from workbench.models.generation import GenerationStats, GenerationStream, SamplingSettings
from workbench.modes.events import Event, MessageDone, TextDelta

if TYPE_CHECKING:
    from workbench.documents.context import Retriever, Source


class Turn:
    """One assistant reply being generated; iterate to get its events, or :meth:`text` for its text.

    Closing the turn (explicitly, or by leaving a ``with`` block) stops the generation and records the
    reply (possibly partial) in the session's history exactly once.
    """

    def __init__(
        self, session: ChatSession, stream: GenerationStream, sources: list[Source] | None = None
    ) -> None:
        self.session = session
        self.stream = stream
        self.sources = sources or []
        self.message: Message | None = None
        # A stopped Streamlit script and the next run may both close the turn: record it once.
        self._close_lock = threading.Lock()

    def __iter__(self) -> Iterator[Event]:
        try:
            for chunk in self.stream:
                self.session.history.draft(self.stream.text)  # a store checkpoints it (a crash keeps it)
                yield TextDelta(chunk)
            message = self.close()
            if self.recorded:
                yield MessageDone(message)
        finally:
            self.close()

    def text(self) -> Iterator[str]:
        """The reply's text chunks as they are written (the events without the bookkeeping)."""
        for event in self:
            if isinstance(event, TextDelta):
                yield event.text

    def waiting(self) -> str | None:
        """What to show while the reply waits for a free slot of the model ("... (n ahead)"), or None."""
        return self.stream.waiting_notice()

    @property
    def recorded(self) -> bool:
        """Whether the closed turn's reply joined the history (an empty stopped reply does not)."""
        message = self.message
        return message is not None and (bool(message.content) or not message.stopped)

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
        message.stats = stats.to_dict()
        message.stopped = stats.finish_reason == "cancelled"
        if self.stream.error is not None:
            message.failure = str(self.stream.error)
        if self.sources:  # what [1], [2] in the reply refer to, saved with it
            message.metadata["sources"] = [source.to_dict() for source in self.sources]
        self.message = message
        self.session._finish(self)
        return message


class ChatSession:
    """A chat conversation: history, system prompt and sampling settings.

    Attributes:
        model: The shared model.
        system_prompt: Sent first, as the system message, when not empty.
        settings: Sampling settings for the next turns.
        history: The conversation (mode chat): user and assistant messages, the system prompt kept apart.
        documents: Documents attached to the conversation (a DocumentIndex) or a knowledge base:
            each question is sent with them (whole when they fit the context, else the passages most
            similar to it) as numbered sources.
    """

    def __init__(
        self,
        model: ChatModel,
        system_prompt: str = "",
        settings: SamplingSettings | None = None,
        history: Conversation | None = None,
    ) -> None:
        self.model = model
        self.system_prompt = system_prompt
        self.settings = settings or model.default_settings()
        self.history = history if history is not None else Conversation(Mode.CHAT)  # an empty one is falsy
        self.active: Turn | None = None
        self.documents: Retriever | None = None

    @property
    def messages(self) -> list[Message]:
        """A copy of the history's messages (change them through :attr:`history`)."""
        return self.history.snapshot()

    @property
    def busy(self) -> bool:
        """Whether a turn is being generated."""
        return self.active is not None

    def conversation(self) -> list[Message]:
        """The messages as sent to the model: the system prompt, then the history."""
        head = [Message(Role.SYSTEM, self.system_prompt)] if self.system_prompt.strip() else []
        return head + self.messages

    def send(self, text: str, images: Sequence[bytes] = ()) -> Turn:
        """Add the user's message (with its images, PNG bytes) and start the reply.

        Raises:
            EmptyPromptError: If ``text`` is blank.
            PromptTooLongError: If the conversation no longer fits the model's context (the user's
                message is taken back so nothing is half-recorded).
            ImageInputError: If the message has images and the model reads text only (taken back too).
        """
        if not text or not text.strip():
            raise EmptyPromptError("The message is empty; type something to send.")
        self.stop()
        asked = Message(Role.USER, text, images=list(images))
        self.history.append(asked)
        try:
            return self._start()
        except WorkbenchError:
            self.history.remove_if_last(asked)
            raise

    def regenerate(self, message_id: str | None = None) -> Turn:
        """Generate a new answer beside an old one, which stays as its sibling (one pager step away).

        Args:
            message_id: The answer to regenerate; by default the last answer of the shown thread (or,
                when the thread ends with a user message, that message gets an answer).

        Raises:
            EmptyPromptError: If there is no user message to answer yet.
            BranchError: If ``message_id`` is not an answer of this conversation.
        """
        self.stop()
        self.history.regenerate(message_id)
        return self._start()

    def edit(self, message_id: str, text: str) -> Turn:
        """Edit one of the user's messages: its new text becomes a sibling, and is answered.

        Raises:
            BranchError: If there is no such user message, or ``text`` is blank.
        """
        self.stop()
        self.history.edit(message_id, text)
        return self._start()

    def stop(self) -> None:
        """Stop the reply being generated, if any, keeping what it wrote."""
        if self.active is not None:
            self.active.close()

    def clear(self) -> None:
        """Stop any reply and empty the history (the system prompt and settings stay)."""
        self.stop()
        self.history.clear()

    def _start(self) -> Turn:
        from workbench.documents.context import with_sources

        messages, sources = with_sources(self.model, self.settings, self.conversation(), self.documents)
        stream = self.model.stream(messages, self.settings)
        self.active = Turn(self, stream, sources)
        return self.active

    def _finish(self, turn: Turn) -> None:
        if turn.message is not None and turn.recorded:
            self.history.append(turn.message)
        if self.active is turn:
            self.active = None
