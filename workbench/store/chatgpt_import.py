"""Reading ChatGPT's data export (``conversations.json``) as Workbench conversations, branches included.

ChatGPT exports each conversation as a ``mapping`` of nodes, each with its ``message`` (or null),
its ``parent`` and its ``children``, plus ``current_node``, the leaf that was shown. Every text
message becomes a Workbench message with the node's id; nodes without text (the hidden root, system
messages, browsing displays, images) are left out and their children hang from the nearest kept
ancestor, so no branch is lost. What is left out is said in the import's notes.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from workbench.conversation import Node, order_tree
from workbench.errors import TranscriptError
from workbench.messages import Message, Role, valid_message_id

ROLES = {"user": Role.USER, "assistant": Role.ASSISTANT, "tool": Role.OBSERVATION}
"""ChatGPT's author roles that carry a conversation's text, and the Workbench role of each."""


def is_chatgpt(item: Any) -> bool:
    """Whether an item of an import is one of ChatGPT's exported conversations (it has a ``mapping``)."""
    return isinstance(item, dict) and "mapping" in item and "messages" not in item


def epoch_time(value: Any) -> datetime | None:
    """A ChatGPT time (seconds since 1970, a number) as a UTC time, or None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return datetime.fromtimestamp(float(value), tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


def _text(message: dict[str, Any]) -> str | None:
    """The text of a ChatGPT message, or None when it has none Workbench can show."""
    content = message.get("content")
    if not isinstance(content, dict):
        return None
    kind = content.get("content_type")
    if kind in ("code", "execution_output"):
        text = content.get("text")
        if not isinstance(text, str) or not text.strip():
            return None
        return f"```\n{text}\n```" if kind == "code" else text
    parts = content.get("parts")
    if kind not in ("text", "multimodal_text") or not isinstance(parts, list):
        return None
    text = "\n".join(part for part in parts if isinstance(part, str))
    return text if text.strip() else None


def read_chatgpt(item: dict[str, Any], where: str, notes: list[str], max_messages: int) -> tuple[list[Node], str | None]:
    """Return the messages of one exported ChatGPT conversation as a tree, and its shown leaf.

    Raises:
        TranscriptError: If the mapping is not a ChatGPT export (a field of the wrong type, a parent
            that is missing or a loop of parents).
    """
    mapping = item.get("mapping")
    if not isinstance(mapping, dict):
        raise TranscriptError('"mapping" must be an object of nodes (ChatGPT\'s export).')
    if len(mapping) > max_messages:
        raise TranscriptError(f"it has {len(mapping)} nodes, over {max_messages}.")
    parents: dict[str, str | None] = {}
    kept: dict[str, Message] = {}
    skipped = 0
    for key, node in mapping.items():
        if not valid_message_id(key) or not isinstance(node, dict):
            raise TranscriptError(f"node {str(key)[:40]!r} is not a ChatGPT node (an id and an object).")
        parent = node.get("parent")
        if parent is not None and not valid_message_id(parent):
            raise TranscriptError(f"node {key!r}: 'parent' must be a node id or null.")
        parents[key] = parent
        message = node.get("message")
        if message is None:
            continue
        if not isinstance(message, dict):
            raise TranscriptError(f"node {key!r}: 'message' must be an object or null.")
        author = message.get("author")
        raw_role = author.get("role") if isinstance(author, dict) else None
        role = ROLES.get(raw_role) if isinstance(raw_role, str) else None
        text = _text(message) if role is not None else None
        if role is None or text is None:
            skipped += 1
            continue
        name = author.get("name") if isinstance(author, dict) else None
        kept[key] = Message(
            role,
            text,
            name=(name if isinstance(name, str) else "tool") if role is Role.OBSERVATION else None,
            id=key,
        )
    for key, parent in parents.items():
        if parent is not None and parent not in parents:
            raise TranscriptError(f"node {key!r} has the parent {parent!r}, which is not in the mapping.")
    nodes: list[Node] = []
    for key, message in kept.items():
        nodes.append((message, _kept_ancestor(parents.get(key), parents, kept)))
    if skipped:
        notes.append(
            f"{where}: {skipped} ChatGPT message(s) without text (system prompts, images, browsing) "
            "were left out; the branches under them are kept."
        )
    ordered = order_tree(nodes)
    current = item.get("current_node")
    current = current if isinstance(current, str) else None
    while current is not None and current not in kept:  # the shown leaf may be a left-out node
        current = parents.get(current)
    return ordered, current


def _kept_ancestor(key: str | None, parents: dict[str, str | None], kept: dict[str, Message]) -> str | None:
    seen: set[str] = set()
    while key is not None and key not in kept:
        if key in seen:
            raise TranscriptError(f"node {key!r} is part of a loop of parents.")
        seen.add(key)
        key = parents.get(key)
    return key
