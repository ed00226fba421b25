"""What a page's history sidebar does, without Streamlit.

Which conversation is open, and opening, starting, deleting and restoring conversations, each one
saved by a recorder as it changes.

One :class:`PageHistory` per page and browser session. The page keeps its loop (``ChatSession``,
``ToolSession``, ``CodeSession``); the loop's ``history`` is the conversation this object opens, and
its recorder saves every change of it. The open conversation's id is what the page puts in the URL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from workbench.conversation import Conversation, Mode
from workbench.store.errors import ConversationNotFoundError, StoreError
from workbench.store.recorder import ConversationRecorder
from workbench.store.reopen import load_conversation
from workbench.store.rows import ConversationInfo
from workbench.store.store import ConversationStore
from workbench.store.transcripts import valid_id


class HoldsHistory(Protocol):
    """A mode loop: it has the conversation it changes, and ends its running turn on ``stop``."""

    history: Conversation

    def stop(self) -> None:
        """End a running turn, keeping what it wrote."""


@dataclass(frozen=True)
class Opened:
    """What opening by URL did.

    Attributes:
        conversation: The conversation now open.
        from_store: It was read from the store (a reopened conversation, not a new one).
        other_mode: The id names a saved conversation of another mode (the page should send the user
            to that mode's page), else None.
    """

    conversation: Conversation
    from_store: bool = False
    other_mode: Mode | None = None


class PageHistory:
    """The conversations of one mode for one browser session, saved as they change.

    Args:
        store: Where conversations are saved.
        mode: The page's mode.
        model: Returns the model spec to record with a new conversation (called when it is saved).
    """

    def __init__(
        self,
        store: ConversationStore,
        mode: Mode,
        model: Callable[[], Any] | None = None,
        on_reopen: Callable[[Conversation], None] | None = None,
    ) -> None:
        """Bind the page's mode to the store (nothing is read or written yet)."""
        self.store = store
        self.mode = Mode(mode)
        self._model = model or (lambda: None)
        self._on_reopen = on_reopen
        self.recorder: ConversationRecorder | None = None
        self.last_deleted: ConversationInfo | None = None
        self.reopened: str | None = None
        """The id of the open conversation when it was read from the store (cleared by :meth:`new`)."""

    @property
    def error(self) -> StoreError | None:
        """The last failed write of the open conversation (None once a later write worked)."""
        error = self.recorder.error if self.recorder is not None else None
        return error if isinstance(error, StoreError) else None

    def follow(self, loop: HoldsHistory, url_id: str | None) -> Opened:
        """Make ``loop`` hold the conversation the URL names, and keep a recorder on it.

        A saved conversation of this mode is opened; an unknown id (a conversation not yet saved, e.g.
        after a refresh before the first message) starts an empty one with that id; no id keeps what
        the loop holds. A saved conversation of another mode is left to its page (``other_mode``).
        """
        current = loop.history
        if url_id is None or url_id == current.id or not valid_id(url_id):
            self._record(current, saved=None)
            return Opened(current)
        try:
            info = self.store.info(url_id)
        except ConversationNotFoundError:
            conversation = Conversation(self.mode, url_id)
            self._switch(loop, conversation, saved=False)
            return Opened(conversation)
        if info.mode != self.mode.value:
            self._record(current, saved=None)
            return Opened(current, other_mode=Mode(info.mode))
        return Opened(self.open(loop, url_id), from_store=True)

    def open(self, loop: HoldsHistory, conversation_id: str) -> Conversation:
        """Open a saved conversation in ``loop``.

        Raises:
            ConversationNotFoundError: If it is not saved (or was deleted).
        """
        conversation = load_conversation(self.store, conversation_id)
        self._switch(loop, conversation, saved=True)
        self.reopened, self.last_deleted = conversation.id, None
        if self._on_reopen is not None:
            self._on_reopen(conversation)
        return conversation

    def new(self, loop: HoldsHistory) -> Conversation:
        """Start a new, empty conversation in ``loop`` (saved at its first message)."""
        conversation = Conversation(self.mode)
        self._switch(loop, conversation, saved=False)
        self.reopened, self.last_deleted = None, None
        return conversation

    def fork(self, loop: HoldsHistory, message_id: str) -> Conversation:
        """Branch into a new conversation: the open one's thread up to ``message_id``, saved and opened.

        The new conversation gets a copy of the open one's attached files.

        Raises:
            BranchError: If the open conversation has no such message.
            StoreError: If the new conversation cannot be saved.
        """
        source = loop.history.id
        copy = loop.history.fork(message_id)
        self._switch(loop, copy, saved=False)
        if self.recorder is not None:
            self.recorder.save_now()
        self.store.copy_documents(source, copy.id)  # the fork keeps the attached files
        self.reopened, self.last_deleted = None, None
        return copy

    def delete(self, loop: HoldsHistory) -> None:
        """Delete the open conversation (undo with :meth:`undo_delete`) and start a new one."""
        current = loop.history
        loop.stop()  # a turn still running would write into the deleted conversation
        deleted = None
        if self.store.exists(current.id, include_deleted=False):
            self.store.delete(current.id)
            deleted = self.store.info(current.id, include_deleted=True)
        self.new(loop)
        self.last_deleted = deleted

    def undo_delete(self, loop: HoldsHistory) -> Conversation | None:
        """Restore the conversation deleted last and open it; None if there is none."""
        deleted, self.last_deleted = self.last_deleted, None
        if deleted is None:
            return None
        self.store.restore(deleted.id)
        return self.open(loop, deleted.id)

    def rename(self, loop: HoldsHistory, title: str) -> None:
        """Rename the open conversation (the recorder saves it)."""
        if " ".join(title.split()) != loop.history.title:
            loop.history.set_title(title)

    def conversations(self, query: str = "", limit: int = 20) -> list[ConversationInfo]:
        """This mode's saved conversations, newest first, matching ``query`` when given."""
        return self.store.list(mode=self.mode.value, query=query or None, limit=limit)

    def _switch(self, loop: HoldsHistory, conversation: Conversation, *, saved: bool) -> None:
        loop.stop()  # a turn still running ends in the conversation it belongs to
        loop.history = conversation
        self._record(conversation, saved=saved)

    def _record(self, conversation: Conversation, *, saved: bool | None) -> None:
        if self.recorder is not None and self.recorder.conversation is conversation:
            return
        if self.recorder is not None:
            self.recorder.detach()
        if saved is None:  # a conversation the loop made itself: saved already if it has been before
            saved = self.store.exists(conversation.id) and len(conversation) > 0
        model = None if saved else self._model()
        self.recorder = ConversationRecorder.attach(self.store, conversation, model=model, saved=saved)
