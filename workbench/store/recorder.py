"""Saving a conversation as it changes: a listener that writes each change to the store.

``ConversationRecorder.attach(store, conversation)`` subscribes to a
:class:`~workbench.conversation.Conversation`; from then on every change is written when it happens, in
the thread that made it: an appended message (complete, or a stopped or failed answer with its partial
text and mark, or an edited message: a sibling) is one committed row under its parent; a switch of
branch (or a regenerate) saves the shown leaf, so a reload, another tab and a restart show that branch;
a deleted branch, a clear and a new title are one statement each. The conversation's row is created at
its first change, so an empty conversation is never listed; and when the messages it was made for are
all taken back (a first message refused before any answer: too long for the context, images for a
text-only model), the row this recorder made goes again, so a refused first message leaves nothing.

An answer being written is checkpointed: the loops announce its text as it streams
(:class:`~workbench.conversation.Drafted`), and about once a second (:data:`CHECKPOINT_S`) the recorder
writes it as the next row, marked interrupted (:func:`interrupted_message`). When the answer ends, its
real message overwrites that row. So a ``kill -9`` mid-answer loses at most about a second of text,
and the conversation reopens with the cut answer marked "interrupted".

Two writers of one conversation (two tabs on it) never drop each other's messages: their answers are
siblings in the saved tree. When the other writer deleted the branch this one writes to, this one
goes on as a copy (a new id, "(copy)" in its title, :attr:`ConversationRecorder.forked_from` set). A failed write does not break the loop that made
the change: the recorder keeps the error in :attr:`ConversationRecorder.error` (and logs it) for the
app or the CLI to show, and writes the whole history at the next change.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from workbench.conversation import (
    Appended,
    BranchDeleted,
    Cleared,
    Conversation,
    Drafted,
    Forked,
    HistoryChange,
    Switched,
    TitleChanged,
)
from workbench.errors import WorkbenchError
from workbench.messages import Message, Role
from workbench.store.errors import ConversationConflictError
from workbench.store.store import ConversationStore

logger = logging.getLogger(__name__)

#: Seconds between two checkpoints of an answer being written.
CHECKPOINT_S = 1.0

INTERRUPTED = (
    "Interrupted: the program stopped while this answer was being written; this is the text saved "
    "up to about a second before."
)


def interrupted_message(text: str) -> Message:
    """The checkpoint of an answer being written: its text so far, marked interrupted."""
    return Message(Role.ASSISTANT, text, failure=INTERRUPTED, metadata={"interrupted": True})


class ConversationRecorder:
    """Writes a conversation's changes to a store as they happen (see the module's notes)."""

    def __init__(self, store: ConversationStore, conversation: Conversation, *, model: Any = None) -> None:
        """Prepare a recorder; :meth:`attach` also subscribes it (use that)."""
        self.store = store
        self.conversation = conversation
        self.model = model
        self.error: WorkbenchError | None = None
        self.forked_from: str | None = None
        """Set when another writer changed the saved conversation: the id it had; it goes on as a copy."""
        self._saved: set[str] | None = None  # the ids saved; None: the row does not exist yet (or is out of sync)
        self._lock = threading.Lock()
        self._unsubscribe: Callable[[], None] | None = None
        self._draft: tuple[str, str | None] | None = None  # a checkpoint row's id and parent, if one is saved
        self._draft_since: float | None = None  # when the draft being written was last saved (or began)
        self._made_row = False  # this recorder created the row, and it has not been cleared since

    @classmethod
    def attach(
        cls, store: ConversationStore, conversation: Conversation, *, model: Any = None, saved: bool = False
    ) -> ConversationRecorder:
        """Subscribe a recorder to ``conversation`` and return it.

        Args:
            store: Where to save.
            conversation: What to save.
            model: The model spec to record with it (a ``ModelSpec``, a mapping or None).
            saved: The conversation was just opened from ``store`` (its row and messages exist).
        """
        recorder = cls(store, conversation, model=model)
        if saved:
            recorder._saved = {message.id for message, _ in conversation.nodes()}
        recorder._unsubscribe = conversation.subscribe(recorder)
        return recorder

    def detach(self) -> None:
        """Stop saving this conversation's changes."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def __call__(self, change: HistoryChange) -> None:
        """Save one change (the conversation's listener)."""
        with self._lock:
            try:
                self._save(change)
                self.error = None
            except WorkbenchError as exc:
                self._saved = None  # write the whole history at the next change
                self.error = exc
                logger.warning("Conversation %s was not saved: %s", self.conversation.id, exc)

    def save_now(self) -> None:
        """Write the whole conversation (its row and every message) now."""
        with self._lock:
            self._save_all()

    def _save(self, change: HistoryChange) -> None:
        conversation_id = self.conversation.id
        if isinstance(change, Drafted):
            self._checkpoint(change)
            return
        if isinstance(change, Forked):
            return  # the new conversation is saved by its own recorder, at its first change
        self._draft_since = None
        if self._saved is None:
            self._save_all()
        elif isinstance(change, Appended):
            message, parent = change.message, change.parent_id
            draft = self._draft
            if draft is not None and draft[1] == parent:  # the answer replaces its checkpoint
                self.store.replace(conversation_id, draft[0], message)
                self._saved.discard(draft[0])
                self._saved.add(message.id)
                self._draft = None
            elif parent is None or parent in self._saved:
                try:
                    self.store.add(conversation_id, message, parent)
                except ConversationConflictError:
                    self._fork()
                    return
                self._saved.add(message.id)
            else:  # listeners of two threads ran out of order: write what the tree is now
                self._save_all()
        elif isinstance(change, Switched):
            self._drop_draft()
            self.store.set_current(conversation_id, change.leaf_id)
        elif isinstance(change, BranchDeleted):
            self._drop_draft()
            self.store.delete_messages(conversation_id, list(change.ids), change.leaf_id)
            self._saved.difference_update(change.ids)
            if self._made_row and not self.conversation.node_count():
                self._discard_row()
        elif isinstance(change, Cleared):
            self.store.clear(conversation_id)
            self._saved = set()
            self._draft = None
            self._made_row = False  # cleared by the user: kept, empty, as Clear keeps it
        elif isinstance(change, TitleChanged):
            self.store.rename(conversation_id, change.title)

    def _discard_row(self) -> None:
        """Remove the row this recorder made, now that its messages were all taken back.

        The store removes it only while it holds no message (another writer's are never lost); the next
        change makes it again.
        """
        if self.store.discard_if_empty(self.conversation.id):
            self._saved, self._draft, self._made_row = None, None, False

    def _drop_draft(self) -> None:
        """A checkpoint row whose answer will not come (the thread moved): remove it."""
        if self._draft is not None and self._saved is not None:
            self.store.delete_messages(self.conversation.id, [self._draft[0]], self.conversation.current_id)
            self._saved.discard(self._draft[0])
            self._draft = None

    def _checkpoint(self, change: Drafted) -> None:
        """Save the answer being written, at most once every :data:`CHECKPOINT_S` seconds."""
        now = time.monotonic()
        if self._draft_since is None:
            self._draft_since = now  # the first piece: the first checkpoint comes a second later
            return
        if now - self._draft_since < CHECKPOINT_S or not change.text.strip():
            return
        if self._saved is None:
            self._save_all()
        if self._saved is None or (change.parent_id is not None and change.parent_id not in self._saved):
            return  # out of step with the history: the next complete message rewrites it all
        message = interrupted_message(change.text)
        if self._draft is not None and self._draft[1] == change.parent_id:
            message.id = self._draft[0]
            self.store.replace(self.conversation.id, self._draft[0], message)
        else:
            try:
                self.store.add(self.conversation.id, message, change.parent_id)
            except ConversationConflictError:
                return  # another writer: the answer's own add sorts it out
            self._saved.add(message.id)
            self._draft = (message.id, change.parent_id)
        self._draft_since = time.monotonic()

    def _fork(self) -> None:
        """Another writer removed this conversation's branch from the store: keep both, this one as a copy."""
        conversation = self.conversation
        original = conversation.id
        conversation.id = uuid.uuid4().hex
        conversation.title = f"{conversation.title or 'Untitled'} (copy)"  # saved below, no event needed
        self.forked_from = original
        self.store.create(conversation.mode, conversation.title, self.model, conversation_id=conversation.id)
        self._made_row = True
        self._write_tree()
        self.store.copy_documents(original, conversation.id)  # the copy keeps the attached files
        logger.info("Conversation %s changed elsewhere; this one goes on as %s", original, conversation.id)

    def _save_all(self) -> None:
        conversation = self.conversation
        if not conversation.node_count() and self._saved is None and not self._exists():
            return  # nothing worth listing yet
        if not self._exists():
            self.store.create(
                conversation.mode, conversation.title, self.model, conversation_id=conversation.id
            )
            self._made_row = True
        elif conversation.title:
            self.store.rename(conversation.id, conversation.title)
        self._write_tree()

    def _write_tree(self) -> None:
        conversation = self.conversation
        nodes = conversation.nodes()
        self.store.save_tree(conversation.id, nodes, conversation.current_id)
        self._saved = {message.id for message, _ in nodes}
        self._draft = None

    def _exists(self) -> bool:
        return self.store.exists(self.conversation.id)
