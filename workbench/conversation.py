"""A conversation: a tree of messages with an identity, and one thread-safe way to change it.

Each message has a parent (the first ones have none); editing a user message or regenerating an
answer adds a *sibling*, so nothing is lost. The conversation keeps the leaf that is shown
(:attr:`Conversation.current_id`, as ChatGPT's ``current_node``); the *thread* is the path from the
root to that leaf, and it is what every reader of the history sees: :meth:`Conversation.snapshot`,
``len()``, the mode loops, the model's prompt and the KV-state reuse. The whole tree is in
:meth:`Conversation.nodes`.

Every mode loop (chat, tool, code) changes the conversation only through its methods:
:meth:`~Conversation.append` (a child of the shown leaf), :meth:`~Conversation.edit`,
:meth:`~Conversation.regenerate`, :meth:`~Conversation.switch`, :meth:`~Conversation.fork`,
:meth:`~Conversation.delete_branch`, :meth:`~Conversation.remove_if_last` and
:meth:`~Conversation.clear`. Each change is announced to the listeners
(:meth:`Conversation.subscribe`) as a small typed event, so a store can save every message as it
completes::

    conversation = Conversation(Mode.CHAT)
    conversation.subscribe(lambda change: print(change))
    conversation.append(Message(Role.USER, "Hello"))   # Appended(index=0, ...), then TitleChanged

Times are UTC :class:`datetime.datetime` objects (timezone-aware). Listeners run in the thread that
made the change, after the lock is released; an exception in a listener propagates to that caller.
This module imports nothing heavy (no torch, transformers or streamlit).
"""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from workbench.errors import BranchError, EmptyPromptError, TranscriptError
from workbench.messages import Message, Role, new_message_id, valid_message_id

TITLE_CHARS = 60
"""At most this many characters of the first user message make the default title."""


def thread_ids(parents: Mapping[str, str | None], leaf: str | None) -> list[str]:
    """The ids from the root down to ``leaf``, following each id's parent in ``parents``.

    Also reads links loaded from a database: an id missing from ``parents`` or a loop (written by hand)
    ends the walk instead of failing.
    """
    path: list[str] = []
    seen: set[str] = set()
    while leaf is not None and leaf in parents and leaf not in seen:
        seen.add(leaf)
        path.append(leaf)
        leaf = parents[leaf]
    path.reverse()
    return path


class Mode(str, Enum):
    """Which loop a conversation belongs to."""

    CHAT = "chat"
    TOOL = "tool"
    CODE = "code"


@dataclass(frozen=True)
class Appended:
    """A message was added at ``index`` of the thread, under ``parent_id`` (it is complete).

    Streaming text is never appended: see :class:`Drafted`. The message is now the shown leaf.
    """

    index: int
    message: Message
    parent_id: str | None


@dataclass(frozen=True)
class Edited(Appended):
    """A user message was edited: ``message`` is a new sibling of ``original_id``, and is shown."""

    original_id: str


@dataclass(frozen=True)
class Switched:
    """The shown thread changed: it now ends at ``leaf_id`` (None: empty) and holds ``length`` messages."""

    leaf_id: str | None
    length: int


@dataclass(frozen=True)
class Regenerating(Switched):
    """The answer ``message_id`` is to get a sibling: the thread now ends at its parent."""

    message_id: str


@dataclass(frozen=True)
class BranchDeleted:
    """The messages ``ids`` (a message and everything under it) were removed; the thread ends at ``leaf_id``."""

    ids: tuple[str, ...]
    leaf_id: str | None
    length: int


@dataclass(frozen=True)
class Forked:
    """The thread up to ``message_id`` was copied into a new conversation, ``conversation_id``."""

    message_id: str
    conversation_id: str


@dataclass(frozen=True)
class Cleared:
    """Every message was removed."""


@dataclass(frozen=True)
class TitleChanged:
    """The conversation's title changed."""

    title: str


@dataclass(frozen=True)
class Drafted:
    """The answer being written, to be appended at ``index`` under ``parent_id``, reads ``text`` so far.

    Announced as the answer streams, so a store can checkpoint it; the answer itself still joins the
    history with :meth:`Conversation.append` when it ends.
    """

    index: int
    text: str
    parent_id: str | None = None


HistoryChange = (
    Appended | Switched | BranchDeleted | Forked | Cleared | TitleChanged | Drafted
)  # Edited is an Appended, Regenerating a Switched
Listener = Callable[[HistoryChange], None]
Node = tuple[Message, str | None]
"""A message of the tree and its parent's id (None for a first message)."""


def title_from(text: str, limit: int = TITLE_CHARS) -> str:
    """A short one-line title made from a message: its first line, cut to ``limit`` characters."""
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    line = " ".join(line.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def _now() -> datetime:
    return datetime.now(UTC)


def _time(value: Any) -> datetime:
    """Read an ISO 8601 time; one without a zone is taken as UTC."""
    if not isinstance(value, str):
        raise TranscriptError("A conversation's 'created' and 'updated' must be ISO 8601 times.")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise TranscriptError(f"{value!r} is not an ISO 8601 time.") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def order_tree(nodes: Iterable[Node]) -> list[Node]:
    """Return ``nodes`` with every parent before its children (keeping their order otherwise).

    Raises:
        TranscriptError: If two messages share an id, or a parent is missing or the links loop.
    """
    items = list(nodes)
    ids = [message.id for message, _ in items]
    if len(set(ids)) != len(ids):
        twice = next(i for i in ids if ids.count(i) > 1)
        raise TranscriptError(f"Two messages have the id {twice!r}; each message needs its own.")
    placed: set[str] = set()
    for message, parent in items:  # the usual case, in one pass: every parent already came
        if parent is not None and parent not in placed:
            break
        placed.add(message.id)
    else:
        return items
    placed = set()
    ordered: list[Node] = []
    waiting = items
    while waiting:
        left: list[Node] = [(m, p) for m, p in waiting if p is not None and p not in placed]
        ready: list[Node] = [(m, p) for m, p in waiting if p is None or p in placed]
        if not ready:
            stuck, missing = left[0]
            known = missing in ids
            raise TranscriptError(
                f"Message {stuck.id!r} has the parent {missing!r}, which "
                + ("is part of a loop of parents." if known else "is not in the conversation.")
            )
        for message, parent in ready:
            placed.add(message.id)
            ordered.append((message, parent))
        waiting = left
    return ordered


def linear(messages: Iterable[Message]) -> list[Node]:
    """A list of messages as a single-branch tree: each message's parent is the one before it."""
    nodes: list[Node] = []
    parent: str | None = None
    for message in messages:
        nodes.append((message, parent))
        parent = message.id
    return nodes


@dataclass(eq=False)
class Conversation:
    """One conversation: its identity, its mode, its title, its times and its tree of messages.

    ``Conversation(mode, id, title, created, updated, messages)`` takes a list of messages as one
    branch; :meth:`from_tree` takes a whole tree.

    Attributes:
        mode: The loop it belongs to.
        id: A unique id (uuid4 hex).
        title: A short title; made from the first user message unless set.
        created: When it was created (UTC).
        updated: When its history or title last changed (UTC).
    """

    mode: Mode = Mode.CHAT
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    title: str = ""
    created: datetime = field(default_factory=_now)
    updated: datetime = field(default_factory=_now)
    _messages: list[Message] = field(default_factory=list, repr=False)
    _listeners: list[Listener] = field(default_factory=list, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _nodes: dict[str, Message] = field(default_factory=dict, init=False, repr=False)
    _parent: dict[str, str | None] = field(default_factory=dict, init=False, repr=False)
    _children: dict[str | None, list[str]] = field(default_factory=dict, init=False, repr=False)
    _path: list[str] = field(default_factory=list, init=False, repr=False)
    _titled_by: str | None = field(default=None, init=False, repr=False)  # the message the title came from

    def __post_init__(self) -> None:
        self.mode = Mode(self.mode)
        self._load(linear(self._messages), None)
        self._messages = []  # the tree holds them

    @classmethod
    def from_tree(
        cls,
        mode: Mode | str,
        conversation_id: str,
        title: str,
        created: datetime,
        updated: datetime,
        nodes: Iterable[Node],
        current_id: str | None,
    ) -> Conversation:
        """Build a conversation from its tree (any order) and the leaf to show.

        A ``current_id`` that is not in the tree (or None) shows the latest leaf.

        Raises:
            TranscriptError: If the tree is broken (see :func:`order_tree`).
        """
        conversation = cls(Mode(mode), conversation_id, title, created, updated)
        conversation._load(order_tree(nodes), current_id)
        return conversation

    def _load(self, nodes: list[Node], current_id: str | None) -> None:
        self._nodes.clear()
        self._parent.clear()
        self._children.clear()
        for message, parent in nodes:
            self._add(message, parent)
        if current_id is None or current_id not in self._nodes:
            current_id = self._latest_leaf(None)
        self._path = self._path_to(current_id)

    # --- reading --------------------------------------------------------------------------------
    @property
    def messages(self) -> list[Message]:
        """A copy of the shown thread (changing the list changes nothing; use the methods)."""
        return self.snapshot()

    def snapshot(self) -> list[Message]:
        """A copy of the shown thread, root first, taken under the lock."""
        with self._lock:
            return [self._nodes[i] for i in self._path]

    def __len__(self) -> int:
        with self._lock:
            return len(self._path)

    def last(self) -> Message | None:
        """The shown leaf, or None when the thread is empty."""
        with self._lock:
            return self._nodes[self._path[-1]] if self._path else None

    @property
    def current_id(self) -> str | None:
        """The id of the shown leaf (the thread's last message), None when empty."""
        with self._lock:
            return self._path[-1] if self._path else None

    def nodes(self) -> list[Node]:
        """Every message of the tree with its parent's id, in the order they were added."""
        with self._lock:
            return [(message, self._parent[key]) for key, message in self._nodes.items()]

    def node_count(self) -> int:
        """How many messages the whole tree holds."""
        with self._lock:
            return len(self._nodes)

    def get(self, message_id: str) -> Message:
        """The message with this id.

        Raises:
            BranchError: If the conversation has no such message.
        """
        with self._lock:
            return self._nodes[self._require(message_id)]

    def children(self, message_id: str | None) -> list[str]:
        """The ids of the message's children (of the first messages, for None), oldest first."""
        with self._lock:
            return list(self._children.get(message_id, []))

    def siblings(self, message_id: str) -> list[str]:
        """The ids of the message and its siblings (same parent), oldest first."""
        with self._lock:
            return list(self._children[self._parent[self._require(message_id)]])

    def branch_position(self, message_id: str) -> tuple[int, int]:
        """Where the message stands among its siblings, as a pager shows it: ``(n, m)`` for ``n/m``."""
        with self._lock:
            siblings = self._children[self._parent[self._require(message_id)]]
            return siblings.index(message_id) + 1, len(siblings)

    def last_answer_id(self) -> str | None:
        """The first message after the thread's last user message: the answer that Regenerate replaces.

        None when the thread ends with a user message (or holds none).
        """
        with self._lock:
            thread = [self._nodes[i] for i in self._path]
            users = [n for n, message in enumerate(thread) if message.role is Role.USER]
            if users and users[-1] + 1 < len(thread):
                return thread[users[-1] + 1].id
            return None

    def has_user_message(self) -> bool:
        """Whether the shown thread holds a user message (something to answer)."""
        with self._lock:
            return any(self._nodes[i].role is Role.USER for i in self._path)

    def thread_to(self, message_id: str) -> list[Message]:
        """The messages from the root down to ``message_id``, included."""
        with self._lock:
            return [self._nodes[i] for i in self._path_to(self._require(message_id))]

    # --- listening ------------------------------------------------------------------------------
    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(change)`` after every change; returns a function that unsubscribes it."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    # --- changing -------------------------------------------------------------------------------
    def append(self, message: Message) -> int:
        """Add a complete message under the shown leaf; it becomes the shown leaf. Returns its index."""
        changes: list[HistoryChange] = []
        with self._lock:
            message = self._fresh(message)
            parent = self._path[-1] if self._path else None
            self._add(message, parent)
            self._path.append(message.id)
            index = len(self._path) - 1
            changes.append(Appended(index, message, parent))
            self._title_from(message, changes)
            self.updated = _now()
        self._announce(changes)
        return index

    def draft(self, text: str) -> None:
        """Announce the text so far of the answer being written (see :class:`Drafted`); it changes nothing."""
        if self._listeners:
            with self._lock:
                change = Drafted(len(self._path), text, self._path[-1] if self._path else None)
            self._announce([change])

    def edit(self, message_id: str, text: str) -> Message:
        """Add an edited copy of a user message as its sibling, and show it (the mode then answers it).

        The original and everything under it stay, one pager step away (:meth:`switch`).

        Returns:
            The new user message.

        Raises:
            BranchError: If there is no such message, it is not a user message, or ``text`` is blank.
        """
        if not text.strip():
            raise BranchError("The edited message is empty; type something, or keep the original.")
        changes: list[HistoryChange] = []
        with self._lock:
            original = self._nodes[self._require(message_id)]
            if original.role is not Role.USER:
                raise BranchError(
                    f"Only your own messages can be edited, not a {original.role.value} message; "
                    "regenerate an answer instead."
                )
            edited = dataclasses.replace(original, content=text, id=new_message_id())
            parent = self._parent[message_id]
            self._add(edited, parent)
            self._path = [*self._path_to(parent), edited.id] if parent is not None else [edited.id]
            changes.append(Edited(len(self._path) - 1, edited, parent, message_id))
            self.updated = _now()
        self._announce(changes)
        return edited

    def regenerate(self, message_id: str | None = None) -> None:
        """Show the thread up to the answer's parent, so that the next answer becomes its sibling.

        The old answer and everything under it stay, one pager step away.

        Args:
            message_id: The answer; by default the shown thread's last one (:meth:`last_answer_id`).
                When the thread ends with a user message and none is given, nothing moves: that
                message gets its (first) answer.

        Raises:
            EmptyPromptError: If the thread holds no user message to answer.
            BranchError: If there is no such message, or it is not an assistant message.
        """
        if message_id is None:
            if not self.has_user_message():
                raise EmptyPromptError("Nothing to regenerate yet: send a message first.")
            message_id = self.last_answer_id()
            if message_id is None:
                return
        with self._lock:
            message = self._nodes[self._require(message_id)]
            if message.role is not Role.ASSISTANT:
                raise BranchError(
                    f"Only an answer can be regenerated, not a {message.role.value} message; edit "
                    "your message instead."
                )
            parent = self._parent[message_id]
            self._path = self._path_to(parent) if parent is not None else []
            change = Regenerating(parent, len(self._path), message_id)
        self._announce([change])

    def switch(self, message_id: str) -> None:
        """Show the branch that holds ``message_id``, down to its latest leaf.

        Raises:
            BranchError: If there is no such message.
        """
        with self._lock:
            leaf = self._latest_leaf(self._require(message_id))
            if self._path and self._path[-1] == leaf:
                return
            self._path = self._path_to(leaf)
            change = Switched(leaf, len(self._path))
        self._announce([change])

    def fork(self, message_id: str) -> Conversation:
        """A new conversation holding copies of the thread up to ``message_id`` (the ids are kept).

        Raises:
            BranchError: If there is no such message.
        """
        with self._lock:
            thread = [dataclasses.replace(m) for m in self.thread_to(message_id)]
            title = f"{self.title or 'Untitled'} (branch)"
            copy = Conversation(self.mode, title=title, _messages=thread)
            change = Forked(message_id, copy.id)
        self._announce([change])
        return copy

    def delete_branch(self, message_id: str) -> None:
        """Remove the message and everything under it.

        If the shown thread went through it, the latest branch of a remaining sibling is shown,
        else the thread ends at the message's parent.

        Raises:
            BranchError: If there is no such message.
        """
        with self._lock:
            change = self._delete(self._require(message_id))
        self._announce([change])

    def remove_if_last(self, message: Message) -> bool:
        """Remove ``message`` if it is (the same object as) the shown leaf with nothing under it.

        Used to take back a message that could not be answered (the prompt grew too long). A title made
        from it goes too, so the next message kept titles the conversation.
        """
        with self._lock:
            key = message.id
            if not self._path or self._path[-1] != key or self._nodes[key] is not message:
                return False
            if self._children.get(key):
                return False
            changes: list[HistoryChange] = [self._delete(key, follow_siblings=False)]
            if self._titled_by == key:
                self.title, self._titled_by = "", None
                changes.append(TitleChanged(""))
        self._announce(changes)
        return True

    def clear(self) -> None:
        """Remove every message (id, mode and title stay)."""
        with self._lock:
            self._load([], None)
            self.updated = _now()
        self._announce([Cleared()])

    def set_title(self, title: str) -> None:
        """Rename the conversation (one line, as :func:`title_from` makes it)."""
        with self._lock:
            self.title = " ".join(title.split())
            self._titled_by = None  # the user's choice
            self.updated = _now()
            change = TitleChanged(self.title)
        self._announce([change])

    # --- JSON -----------------------------------------------------------------------------------
    def to_dict(self, *, include_images: bool = True) -> dict[str, Any]:
        """The JSON form: id, mode, title, times (ISO 8601, UTC), the shown leaf and every message.

        Each message carries its ``id`` and its ``parent`` (None for a first one), in the order the
        messages were added.
        """
        with self._lock:
            return {
                "id": self.id,
                "mode": self.mode.value,
                "title": self.title,
                "created": self.created.isoformat(),
                "updated": self.updated.isoformat(),
                "current": self.current_id,
                "messages": [
                    {**message.to_dict(include_images=include_images), "id": key, "parent": self._parent[key]}
                    for key, message in self._nodes.items()
                ],
            }

    @classmethod
    def from_dict(cls, data: Any) -> Conversation:
        """Rebuild a conversation from :meth:`to_dict` output (no listeners).

        Messages without ``parent`` fields (older files, a plain list) form one branch.

        Raises:
            TranscriptError: If the data is not a valid conversation.
        """
        if not isinstance(data, dict):
            raise TranscriptError("A conversation must be a JSON object.")
        try:
            mode = Mode(data.get("mode"))
        except ValueError:
            valid = ", ".join(m.value for m in Mode)
            raise TranscriptError(
                f"Unknown conversation mode {data.get('mode')!r}; use one of: {valid}."
            ) from None
        raw_id, title, messages = data.get("id"), data.get("title", ""), data.get("messages", [])
        if (
            not isinstance(raw_id, str)
            or not raw_id
            or not isinstance(title, str)
            or not isinstance(messages, list)
        ):
            raise TranscriptError(
                "A conversation needs a string 'id', a string 'title' and a list of 'messages'."
            )
        current = data.get("current")
        if current is not None and not valid_message_id(current):
            raise TranscriptError("A conversation's 'current' must be a message id.")
        return cls.from_tree(
            mode,
            raw_id,
            title,
            _time(data.get("created")),
            _time(data.get("updated")),
            tree_from_dicts(messages),
            current,
        )

    # --- inside ---------------------------------------------------------------------------------
    def _require(self, message_id: str) -> str:
        if message_id not in self._nodes:
            raise BranchError(
                f"This conversation has no message {message_id!r} (it may have been deleted in another "
                "tab); reload the conversation."
            )
        return message_id

    def _fresh(self, message: Message) -> Message:
        """The message itself, or a copy with a new id if its id is taken (the same object twice)."""
        if message.id in self._nodes:
            return dataclasses.replace(message, id=new_message_id())
        return message

    def _add(self, message: Message, parent: str | None) -> None:
        self._nodes[message.id] = message
        self._parent[message.id] = parent
        self._children.setdefault(parent, []).append(message.id)

    def _path_to(self, leaf: str | None) -> list[str]:
        return thread_ids(self._parent, leaf)

    def _latest_leaf(self, top: str | None) -> str | None:
        """The most recently added leaf under ``top`` (``top`` itself if it has no children)."""
        order = {key: n for n, key in enumerate(self._nodes)}
        best, best_rank = top, -1
        stack = list(self._children.get(top, []))
        while stack:
            key = stack.pop()
            below = self._children.get(key)
            if below:
                stack.extend(below)
            elif order[key] > best_rank:
                best, best_rank = key, order[key]
        return best

    def _subtree(self, top: str) -> list[str]:
        found, stack = [], [top]
        while stack:
            key = stack.pop()
            found.append(key)
            stack.extend(self._children.get(key, []))
        return found

    def _delete(self, message_id: str, *, follow_siblings: bool = True) -> BranchDeleted:
        gone = self._subtree(message_id)
        parent = self._parent[message_id]
        shown = message_id in self._path
        siblings = self._children[parent]
        siblings.remove(message_id)
        if not siblings:
            del self._children[parent]
        for key in gone:
            del self._nodes[key]
            del self._parent[key]
            self._children.pop(key, None)
        if shown:
            if follow_siblings and siblings:
                self._path = self._path_to(self._latest_leaf(siblings[-1]))
            else:
                self._path = self._path_to(parent)
        self.updated = _now()
        leaf = self._path[-1] if self._path else None
        return BranchDeleted(tuple(gone), leaf, len(self._path))

    def _title_from(self, message: Message, changes: list[HistoryChange]) -> None:
        if not self.title and message.role is Role.USER and message.content.strip():
            self.title, self._titled_by = title_from(message.content), message.id
            changes.append(TitleChanged(self.title))

    def _announce(self, changes: list[HistoryChange]) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for change in changes:
            for listener in listeners:
                listener(change)


def tree_from_dicts(items: list[Any]) -> list[Node]:
    """Read the JSON messages of :meth:`Conversation.to_dict` (with or without ids and parents).

    Raises:
        TranscriptError: If a message or the links between them are not valid.
    """
    messages = [Message.from_dict(item) for item in items]
    has_links = any(isinstance(item, dict) and "parent" in item for item in items)
    if not has_links:
        return linear(messages)
    nodes: list[Node] = []
    for item, message in zip(items, messages, strict=True):
        parent = item.get("parent")
        if parent is not None and not valid_message_id(parent):
            raise TranscriptError(f"Message {message.id!r}: 'parent' must be a message id or null.")
        nodes.append((message, parent))
    return order_tree(nodes)
