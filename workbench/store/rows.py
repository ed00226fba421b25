"""Rows to and from Python: conversation infos, message rows, times, imported conversations."""

from __future__ import annotations

import dataclasses
import json
import logging
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from workbench.conversation import Node
from workbench.errors import TranscriptError
from workbench.messages import Message
from workbench.store.errors import StoreError
from workbench.store.redact import scrub_model
from workbench.store.schema import conversations, messages
from workbench.store.shapes import READ_FATAL, check_message
from workbench.store.transcripts import ImportedConversation

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ConversationInfo:
    """What the store knows of a conversation, without its messages.

    Attributes:
        id: Its id (letters, digits, ``-`` and ``_``).
        title: Its title; empty until the first user message or a rename names it.
        mode: ``chat``, ``tool`` or ``code``.
        model: The model spec it was held with (JSON), or None.
        created: When it was created (UTC).
        updated: When its messages or title last changed (UTC).
        deleted: When it was deleted (UTC), or None for a live one.
        message_count: How many messages it has (in every branch).
        current_id: The id of the message shown last (the end of the shown branch), or None.
    """

    id: str
    title: str
    mode: str
    model: dict[str, Any] | None
    created: datetime
    updated: datetime
    deleted: datetime | None
    message_count: int
    current_id: str | None = None


InfoList = list[ConversationInfo]


def now() -> datetime:
    """The current time, in UTC."""
    return datetime.now(timezone.utc)


def utc(value: datetime | None) -> datetime | None:
    """Mark a time read back without a zone as UTC (SQLite keeps none; the store writes only UTC)."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=timezone.utc)  # SQLite keeps no zone; we only ever write UTC


def model_json(model: Any) -> str | None:
    """Serialise a model spec (a mapping, an object with ``to_dict`` or a dataclass) as JSON.

    Secrets (a remote model's API key, a password in its URL) are left out: see :mod:`.redact`.
    """
    if model is None:
        return None
    if hasattr(model, "to_dict"):  # ModelSpec.to_dict leaves its API key out
        model = model.to_dict()
    elif dataclasses.is_dataclass(model) and not isinstance(model, type):
        model = dataclasses.asdict(model)
    if not isinstance(model, Mapping):
        raise TypeError(f"model must be a mapping or a dataclass, got {type(model).__name__}")
    return json.dumps(scrub_model(model), default=str, ensure_ascii=False)


def read_model(text: str | None) -> dict[str, Any] | None:
    """The model record of a ``conversations`` row (None when absent or unreadable), without secrets."""
    try:
        model = json.loads(text) if text else None
    except ValueError:
        return None
    return scrub_model(model) if isinstance(model, dict) else None


def message_row(
    conversation_id: str, position: int, message: Message, when: datetime, parent_id: str | None
) -> dict[str, Any]:
    """Return the ``messages`` row for a message: role and content in columns, the rest as JSON."""
    data = message.to_dict()
    role, content = data.pop("role"), data.pop("content", "")
    return {
        "conversation_id": conversation_id,
        "message_id": message.id,
        "parent_id": parent_id,
        "position": position,
        "role": role,
        "content": content,
        "extra": json.dumps(data, ensure_ascii=False),
        "created_at": when,
    }


def info(row: Any) -> ConversationInfo:
    """Build a :class:`ConversationInfo` from a ``conversations`` row."""
    return ConversationInfo(
        id=row.id,
        title=row.title,
        mode=row.mode,
        model=read_model(row.model),
        created=utc(row.created_at) or now(),
        updated=utc(row.updated_at) or now(),
        deleted=utc(row.deleted_at),
        message_count=row.message_count,
        current_id=row.current_id,
    )


class RowView:
    """Attribute access to a dict, so a freshly written row reads like a fetched one."""

    def __init__(self, row: dict[str, Any]) -> None:
        self.__dict__.update(row)


def message(conversation_id: str, row: Any) -> Message:
    """Rebuild a message from its ``messages`` row, tolerating what another writer may have left.

    Fields of the wrong type (written by an older release, another program or an import of old)
    are left out, so the message shows them as missing (see :mod:`.shapes`); they are logged.

    Raises:
        StoreError: If the row does not hold a message at all (an unknown role).
    """
    text = row.extra or "{}"
    checked = json.loads(text) if (row.role, text) in _clean_extras else _check_row(conversation_id, row, text)
    try:
        message = Message.from_dict({**checked, "role": row.role, "content": row.content, "id": row.message_id})
    except (TranscriptError, ValueError) as exc:
        raise StoreError(
            f"Message {row.position} of conversation {conversation_id} cannot be read back ({exc}); "
            "export the conversation and check it."
        ) from None
    return message


# Extra fields already checked and found sound, by (role, JSON text): a conversation opened again, and
# the many messages whose extras are alike, are not checked twice (only parsed again, so that no two
# messages share a dict). Bounded; only clean ones are kept.
_clean_extras: set[tuple[str, str]] = set()
_CLEAN_MAX = 4096


def _check_row(conversation_id: str, row: Any, text: str) -> dict[str, Any]:
    """Check a row's extra fields (see :mod:`.shapes`); return those that are sound (wrong ones logged)."""
    try:
        extra = json.loads(text)
    except ValueError:
        extra = None
    if not isinstance(extra, dict):
        logger.warning("Message %s of conversation %s: its extra fields are unreadable; left out.",
                       row.position, conversation_id)  # fmt: skip
        extra = {}
    checked, problems = check_message({**extra, "role": row.role, "content": row.content}, READ_FATAL)
    for problem in problems:
        logger.warning("Message %s of conversation %s, %s: left out.", row.position, conversation_id, problem)
    if any(problem.fatal for problem in problems):
        raise StoreError(
            f"Message {row.position} of conversation {conversation_id} cannot be read back "
            f"({problems[-1]}); export the conversation and check it."
        )
    checked = {k: v for k, v in checked.items() if k not in ("role", "content")}
    if not problems and len(text) < 65_536:  # images and long outputs are not worth keeping twice
        if len(_clean_extras) >= _CLEAN_MAX:
            _clean_extras.clear()
        _clean_extras.add((row.role, text))
    return checked


def insert_imported(connection: Connection, item: ImportedConversation) -> str:
    """Insert an imported conversation (its id if free, else a new one) and return its id."""
    conversation_id = item.conversation_id
    taken = (
        conversation_id is not None
        and connection.execute(
            sa.select(conversations.c.id).where(conversations.c.id == conversation_id)
        ).first()
    )
    if conversation_id is None or taken:
        conversation_id = uuid.uuid4().hex
    when = now()
    nodes = item.nodes
    current = item.current_id if item.current_id in {m.id for m, _ in nodes} else None
    connection.execute(
        conversations.insert().values(
            id=conversation_id,
            title=item.title,
            mode=item.mode,
            model=model_json(item.model),
            created_at=item.created or when,
            updated_at=item.updated or when,
            message_count=len(nodes),
            current_id=current or latest_leaf([(m.id, parent) for m, parent in nodes]),
        )
    )
    if nodes:
        connection.execute(messages.insert(), tree_rows(conversation_id, nodes, when))
    return conversation_id


def tree_rows(conversation_id: str, nodes: list[Node], when: datetime) -> list[dict[str, Any]]:
    """The ``messages`` rows of a tree (parents before children), numbered in that order."""
    return [message_row(conversation_id, i, m, when, parent) for i, (m, parent) in enumerate(nodes)]


def latest_leaf(links: list[tuple[str, str | None]]) -> str | None:
    """The id of the last-added message that has no children (None for an empty tree).

    Args:
        links: Each message's id and its parent's, in the order they were added.
    """
    parents = {parent for _, parent in links}
    return next((key for key, _ in reversed(links) if key not in parents), None)


def thread_ids(links: dict[str, str | None], leaf: str | None) -> list[str]:
    """The ids from the root down to ``leaf`` (``links`` maps each id to its parent's)."""
    path: list[str] = []
    seen: set[str] = set()
    while leaf is not None and leaf in links and leaf not in seen:  # a loop written by hand stops here
        seen.add(leaf)
        path.append(leaf)
        leaf = links[leaf]
    path.reverse()
    return path
