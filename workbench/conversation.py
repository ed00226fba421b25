"""A conversation with an identity and one thread-safe way to change its history.

Every mode loop (chat, tool, code) holds a :class:`Conversation` and changes its messages only
through :meth:`Conversation.append`, :meth:`Conversation.truncate` and :meth:`Conversation.clear`.
Each change is announced to the listeners (:meth:`Conversation.subscribe`) as a small typed event,
so a store can save every message as it completes::

    conversation = Conversation(Mode.CHAT)
    conversation.subscribe(lambda change: print(change))
    conversation.append(Message(Role.USER, "Hello"))   # Appended(index=0, ...), then TitleChanged

Times are UTC :class:`datetime.datetime` objects (timezone-aware). Listeners run in the thread that
made the change, after the lock is released; an exception in a listener propagates to that caller.
This module imports nothing heavy (no torch, transformers or streamlit).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from workbench.errors import TranscriptError
from workbench.messages import Message, Role

TITLE_CHARS = 60
"""At most this many characters of the first user message make the default title."""


class Mode(str, Enum):
    """Which loop a conversation belongs to."""

    CHAT = "chat"
    TOOL = "tool"
    CODE = "code"


@dataclass(frozen=True)
class Appended:
    """A message was added at ``index`` (it is complete: streaming text is never appended)."""

    index: int
    message: Message


@dataclass(frozen=True)
class Truncated:
    """Messages from ``length`` on were removed; ``length`` messages remain."""

    length: int


@dataclass(frozen=True)
class Cleared:
    """Every message was removed."""


@dataclass(frozen=True)
class TitleChanged:
    """The conversation's title changed."""

    title: str


@dataclass(frozen=True)
class Drafted:
    """The answer being written, to be appended at ``index``, reads ``text`` so far (not in the history yet).

    Announced as the answer streams, so a store can checkpoint it; the answer itself still joins the
    history with :meth:`Conversation.append` when it ends.
    """

    index: int
    text: str


HistoryChange = Appended | Truncated | Cleared | TitleChanged | Drafted
Listener = Callable[[HistoryChange], None]


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


@dataclass(eq=False)
class Conversation:
    """One conversation: its identity, its mode, its title, its times and its messages.

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

    def __post_init__(self) -> None:
        self.mode = Mode(self.mode)

    @property
    def messages(self) -> list[Message]:
        """A copy of the messages (changing the list changes nothing; use the methods)."""
        return self.snapshot()

    def snapshot(self) -> list[Message]:
        """A copy of the list of messages, taken under the lock."""
        with self._lock:
            return list(self._messages)

    def __len__(self) -> int:
        with self._lock:
            return len(self._messages)

    def last(self) -> Message | None:
        """The last message, or None when the history is empty."""
        with self._lock:
            return self._messages[-1] if self._messages else None

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(change)`` after every change; returns a function that unsubscribes it."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def append(self, message: Message) -> int:
        """Add a complete message at the end; returns its index."""
        changes: list[HistoryChange] = []
        with self._lock:
            self._messages.append(message)
            index = len(self._messages) - 1
            changes.append(Appended(index, message))
            if not self.title and message.role is Role.USER and message.content.strip():
                self.title = title_from(message.content)
                changes.append(TitleChanged(self.title))
            self.updated = _now()
        self._announce(changes)
        return index

    def draft(self, text: str) -> None:
        """Announce the text so far of the answer being written (see :class:`Drafted`); it changes nothing."""
        if self._listeners:
            with self._lock:
                change = Drafted(len(self._messages), text)
            self._announce([change])

    def truncate(self, length: int) -> None:
        """Keep only the first ``length`` messages (nothing happens if there are not more)."""
        with self._lock:
            changed = self._cut(length)
        if changed:
            self._announce([Truncated(max(0, length))])

    def pop(self) -> Message | None:
        """Remove and return the last message (None if empty); announced as :class:`Truncated`."""
        with self._lock:
            message = self._messages[-1] if self._messages else None
            length = len(self._messages) - 1
            if message is not None:
                self._cut(length)
        if message is not None:
            self._announce([Truncated(length)])
        return message

    def remove_if_last(self, message: Message) -> bool:
        """Remove ``message`` if it is (the same object as) the last one; whether it was removed."""
        with self._lock:
            length = len(self._messages) - 1
            removed = bool(self._messages) and self._messages[-1] is message and self._cut(length)
        if removed:
            self._announce([Truncated(length)])
        return removed

    def _cut(self, length: int) -> bool:
        length = max(0, length)
        if length >= len(self._messages):
            return False
        del self._messages[length:]
        self.updated = _now()
        return True

    def clear(self) -> None:
        """Remove every message (id, mode and title stay)."""
        with self._lock:
            self._messages.clear()
            self.updated = _now()
        self._announce([Cleared()])

    def set_title(self, title: str) -> None:
        """Rename the conversation (one line, as :func:`title_from` makes it)."""
        with self._lock:
            self.title = " ".join(title.split())
            self.updated = _now()
            change = TitleChanged(self.title)
        self._announce([change])

    def to_dict(self, *, include_images: bool = True) -> dict[str, Any]:
        """The JSON form: id, mode, title, times (ISO 8601, UTC) and the messages."""
        with self._lock:
            return {
                "id": self.id,
                "mode": self.mode.value,
                "title": self.title,
                "created": self.created.isoformat(),
                "updated": self.updated.isoformat(),
                "messages": [m.to_dict(include_images=include_images) for m in self._messages],
            }

    @classmethod
    def from_dict(cls, data: Any) -> Conversation:
        """Rebuild a conversation from :meth:`to_dict` output (no listeners).

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
        return cls(
            mode,
            raw_id,
            title,
            _time(data.get("created")),
            _time(data.get("updated")),
            [Message.from_dict(item) for item in messages],
        )

    def _announce(self, changes: list[HistoryChange]) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for change in changes:
            for listener in listeners:
                listener(change)
