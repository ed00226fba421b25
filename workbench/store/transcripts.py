"""Saved conversations as files: the JSON transcript and Markdown out, checked JSON in.

Export writes the transcript the CLI already writes, ``{"messages": [...]}``, plus ``title``, ``mode``
and the conversation's times and model; several conversations are ``{"conversations": [...]}``.
Import takes those, a bare list of messages, OpenAI-style messages (``tool`` role, ``tool_calls``
with JSON-string arguments, content as a list of text parts) and ChatGPT's data export
(``conversations.json``, see :mod:`.chatgpt_import`). Conversations are trees: each exported message
has its ``id`` and ``parent``, and ``current`` names the shown leaf; messages without parents form one
branch. Everything is checked before anything is
written, and one bad conversation refuses the whole file (see :func:`parse_import`).

Scripts: content is stored as the text it is, and the app renders it as Markdown with raw HTML off
(Streamlit escapes it), so a ``<script>`` in a message is shown, never run. Import refuses active HTML
outside code anyway (``<script>``, ``<iframe>``, ``on...=`` handlers, ``javascript:`` links; see
:mod:`.active_html`): a transcript carrying it was not written by Workbench, and another viewer of the
export might render it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from workbench.conversation import Node, linear, order_tree, title_from
from workbench.errors import TranscriptError
from workbench.messages import Message, valid_message_id
from workbench.modes.code_format import drop_unshowable_images
from workbench.openai_messages import from_openai
from workbench.store.active_html import find_active_html
from workbench.store.chatgpt_import import epoch_time, is_chatgpt, read_chatgpt
from workbench.store.errors import ImportRefusedError
from workbench.store.shapes import IMPORT_FATAL, check_message, find_surrogate

MODES = ("chat", "tool", "code")
Notes = list[str]
"""Lines about what an import left out (a wrong-typed optional field), one per field."""
#: The largest import file: 64 MB, counted (and shown by :func:`megabytes`) in MB of 2**20 bytes.
MAX_IMPORT_BYTES = 64 * 1024 * 1024
MAX_MESSAGE_CHARS = 2_000_000
MAX_MESSAGES = 20_000
MAX_CONVERSATIONS = 10_000
MAX_TITLE_CHARS = 200
_OPENAI_ROLES = ("tool", "developer", "function")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass
class ImportedConversation:
    """One conversation read from an import, checked and ready to store."""

    title: str
    mode: str
    nodes: list[Node]
    model: dict[str, Any] | None = None
    conversation_id: str | None = None
    created: datetime | None = None
    updated: datetime | None = None
    current_id: str | None = None

    @property
    def messages(self) -> list[Message]:
        """Every message of the tree, parents first."""
        return [message for message, _ in self.nodes]


def make_title(text: str) -> str:
    """Make a title from a message's text as a :class:`~workbench.conversation.Conversation` does."""
    return title_from(_CONTROL.sub(" ", text))


def clean_title(title: str) -> str:
    """Return ``title`` on one line, without control characters, at most ``MAX_TITLE_CHARS`` long."""
    return " ".join(_CONTROL.sub(" ", title).split())[:MAX_TITLE_CHARS]


def conversation_to_dict(info: Any, nodes: list[Node], current_id: str | None) -> dict[str, Any]:
    """Return the export form of one conversation (``info`` is a ``ConversationInfo``): the whole tree.

    Each message carries its ``id`` and its ``parent`` (null for a first message), parents first;
    ``current`` is the shown leaf.
    """
    return {
        "id": info.id,
        "title": info.title,
        "mode": info.mode,
        "model": info.model,
        "created": info.created.isoformat(),
        "updated": info.updated.isoformat(),
        "current": current_id,
        "messages": [{**message.to_dict(), "id": message.id, "parent": parent} for message, parent in nodes],
    }


def conversation_to_markdown(info: Any, messages: list[Message]) -> str:
    """Render one conversation as Markdown: a heading per message, calls and results as code."""
    lines = [f"# {info.title or 'Untitled conversation'}", ""]
    lines += [f"*{info.mode} · {info.created:%Y-%m-%d %H:%M} UTC · id `{info.id}`*", ""]
    for message in messages:
        heading = message.role.value.capitalize()
        if message.name:
            heading += f" ({message.name})"
        if message.error:
            heading += " (error)"
        lines += [f"## {heading}", ""]
        if message.content:
            if message.role.value == "observation":
                lines += ["```", message.content, "```", ""]
            else:
                lines += [message.content, ""]
        for call in message.tool_calls:
            lines += [f"Call `{call.name}`:", "", "```json", json.dumps(call.arguments, indent=2), "```", ""]
        for number, _image in enumerate(message.images, 1):
            lines += [f"*(image {number} of {len(message.images)}: in the JSON export)*", ""]
    return "\n".join(lines).rstrip() + "\n"


def megabytes(size: int) -> str:
    """A size in bytes as the messages show it: MB of 2**20 bytes (``64 MB`` for :data:`MAX_IMPORT_BYTES`)."""
    return f"{size / 2**20:.1f}".removesuffix(".0") + " MB"


def parse_import(
    data: bytes | str, *, max_bytes: int = MAX_IMPORT_BYTES, notes: list[str] | None = None
) -> list[ImportedConversation]:
    """Read and check an import; return its conversations or refuse it whole.

    Args:
        data: The file's bytes or text.
        max_bytes: The largest file accepted.
        notes: Receives one line per optional field that was dropped for its wrong type (it is then
            shown as missing), naming the conversation, the message and the field.

    Raises:
        ImportRefusedError: With what is wrong (and where) and what to do; nothing is stored.
    """
    size = len(data) if isinstance(data, bytes) else len(data.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise ImportRefusedError(
            f"The import is {megabytes(size)}, over the {megabytes(max_bytes)} limit; "
            "export fewer conversations per file."
        )
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        payload = json.loads(text)
    except UnicodeDecodeError:
        raise ImportRefusedError("The import is not UTF-8 text; give a JSON transcript.") from None
    except ValueError as exc:  # JSONDecodeError, and Python's limit on the digits of an integer
        raise ImportRefusedError(f"The import is not valid JSON ({exc}); check the file.") from None
    except RecursionError:
        raise ImportRefusedError("The import is nested too deeply to be a transcript.") from None
    if isinstance(payload, list) and payload and all(is_chatgpt(item) for item in payload):
        items = payload  # ChatGPT's conversations.json: a list of conversations with a "mapping"
    elif isinstance(payload, dict) and "conversations" in payload:
        items = payload["conversations"]
        if not isinstance(items, list):
            raise ImportRefusedError('"conversations" must be a list of conversations.')
    elif isinstance(payload, (dict, list)):
        items = [payload]
    else:
        raise ImportRefusedError(
            'An import must be {"messages": [...]}, {"conversations": [...]} or a list of messages.'
        )
    notes = [] if notes is None else notes
    if len(items) > MAX_CONVERSATIONS:
        raise ImportRefusedError(f"The import holds {len(items)} conversations, over {MAX_CONVERSATIONS}.")
    return [_parse_conversation(item, number, notes) for number, item in enumerate(items, 1)]


_SURROGATE = (
    "it holds a lone surrogate (such as \\ud800), which is not text and cannot be stored; "
    "fix the program that wrote the file, or remove it, and import again."
)


def _field_place(path: str) -> str:
    """``messages[1].stats.x`` as people count: ``message 2, field stats.x``."""
    if path.startswith("messages["):
        index, _, rest = path.removeprefix("messages[").partition("]")
        if index.isdigit():
            return f"message {int(index) + 1}, field {rest.lstrip('.') or 'itself'}"
    return f"field {path}"


def _parse_conversation(item: Any, number: int, notes: list[str]) -> ImportedConversation:
    where = f"Conversation {number}"
    if isinstance(item, list):
        item = {"messages": item}
    if not isinstance(item, dict):
        raise ImportRefusedError(f"{where} must be a JSON object, got {type(item).__name__}.")
    chatgpt = is_chatgpt(item)
    raw_messages = item.get("messages")
    if not chatgpt and not isinstance(raw_messages, list):
        raise ImportRefusedError(f'{where} needs "messages": a list of messages.')
    if isinstance(raw_messages, list) and len(raw_messages) > MAX_MESSAGES:
        raise ImportRefusedError(f"{where} has {len(raw_messages)} messages, over {MAX_MESSAGES}.")
    title, mode, model = item.get("title", ""), item.get("mode", "chat"), item.get("model")
    if title is None and chatgpt:
        title = ""
    if not isinstance(title, str):
        raise ImportRefusedError(f'{where}: "title" must be a string.')
    if mode not in MODES:
        raise ImportRefusedError(f'{where}: "mode" must be one of {", ".join(MODES)}, got {mode!r}.')
    if model is not None and not isinstance(model, dict):
        raise ImportRefusedError(f'{where}: "model" must be an object.')
    conversation_id = item.get("id", item.get("conversation_id") if chatgpt else None)
    if not (isinstance(conversation_id, str) and valid_id(conversation_id)):
        conversation_id = None
    surrogate = find_surrogate(item)
    if surrogate is not None:
        raise ImportRefusedError(f"{where}, {_field_place(surrogate)}: {_SURROGATE}")
    if chatgpt:
        try:
            nodes, current = read_chatgpt(item, where, notes, MAX_MESSAGES)
        except TranscriptError as exc:
            text = str(exc)
            raise ImportRefusedError(f"{where} (a ChatGPT export), {text[0].lower() + text[1:]}") from None
        created, updated = epoch_time(item.get("create_time")), epoch_time(item.get("update_time"))
    else:
        nodes = _parse_tree(raw_messages if isinstance(raw_messages, list) else [], where, notes)
        current = item.get("current") if isinstance(item.get("current"), str) else None
        created, updated = parse_time(item.get("created")), parse_time(item.get("updated"))
    messages = drop_unshowable_images([m for m, _ in nodes])  # issue 24: image bombs
    for label, text in [("title", title)] + [(f"message {i}", m.content) for i, m in enumerate(messages, 1)]:
        found = find_active_html(text)
        if found:
            raise ImportRefusedError(
                f"{where}, {label} holds active HTML ({found!r}) outside a code block; Workbench does "
                "not import it. Remove it, or put it in a ``` code block, and import again."
            )
    if not title:
        first_user = next((m.content for m in messages if m.role.value == "user"), "")
        title = make_title(first_user)
    return ImportedConversation(
        clean_title(title), mode, nodes, model, conversation_id, created, updated, current
    )


def _parse_tree(raw_messages: list[Any], where: str, notes: list[str]) -> list[Node]:
    """The messages of an import as a tree: by their ``parent`` fields, else as one branch."""
    messages = _parse_messages(raw_messages, where, notes)
    linked = len(messages) == len(raw_messages) and any(
        isinstance(raw, dict) and "parent" in raw for raw in raw_messages
    )
    try:
        if not linked:
            return order_tree(linear(messages))  # checks that the ids are distinct
        nodes: list[Node] = []
        for index, (raw, message) in enumerate(zip(raw_messages, messages, strict=True), 1):
            parent = raw.get("parent")
            if parent is not None and not valid_message_id(parent):
                raise TranscriptError(f"message {index}: 'parent' must be a message id or null.")
            nodes.append((message, parent))
        return order_tree(nodes)
    except TranscriptError as exc:
        text = str(exc)
        raise ImportRefusedError(f"{where}, {text[0].lower() + text[1:]} Fix the file and import again.") from None


def _parse_messages(raw_messages: list[Any], where: str, notes: list[str]) -> list[Message]:
    for index, raw in enumerate(raw_messages, 1):
        content = raw.get("content") if isinstance(raw, dict) else None
        if isinstance(content, str) and len(content) > MAX_MESSAGE_CHARS:
            raise ImportRefusedError(
                f"{where}, message {index} is {len(content):,} characters long, over {MAX_MESSAGE_CHARS:,}."
            )
    try:
        if any(_is_openai(raw) for raw in raw_messages):
            return from_openai(raw_messages)
        messages = []
        for index, raw in enumerate(raw_messages, 1):
            if not isinstance(raw, dict):
                raise TranscriptError(f"message {index}: a message must be a JSON object.")
            checked, problems = check_message(raw, IMPORT_FATAL)
            for problem in problems:
                if problem.fatal:
                    raise ImportRefusedError(
                        f"{where}, message {index}, {problem}; fix it in the file and import again."
                    )
                notes.append(f"{where}, message {index}, {problem}: imported without it.")
            try:
                messages.append(Message.from_dict(checked))
            except TranscriptError as exc:
                raise TranscriptError(f"message {index}: {exc}") from None
        return messages
    except ImportRefusedError:
        raise
    except TranscriptError as exc:
        text = str(exc)
        raise ImportRefusedError(f"{where}, {text[0].lower() + text[1:]}") from None


def _is_openai(raw: Any) -> bool:
    """Whether a message is in OpenAI's form rather than Workbench's (which it may then not parse)."""
    if not isinstance(raw, dict):
        return False
    calls = raw.get("tool_calls")
    openai_calls = isinstance(calls, list) and any(isinstance(c, dict) and "function" in c for c in calls)
    return raw.get("role") in _OPENAI_ROLES or isinstance(raw.get("content"), list) or openai_calls


_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def valid_id(conversation_id: str) -> bool:
    """Whether ``conversation_id`` has the form of a conversation id (1-64 of ``A-Za-z0-9_-``)."""
    return bool(_ID.fullmatch(conversation_id))


def parse_time(value: Any) -> datetime | None:
    """Parse an exported ISO time (UTC when it names no zone), or return None."""
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None
    if parsed is not None and parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed
