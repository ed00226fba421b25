"""``python -m workbench history``: list, show, export, import, delete and restore saved conversations.

Also the saving behind ``ask --save`` and ``chat --save`` / ``chat --resume ID``. The store is the one
the app uses (``WORKBENCH_DB_URL``, else the SQLite file in ``WORKBENCH_DATA_DIR``); ``history --db URL``
names another. An id may be given by its first characters, as git takes commit hashes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from workbench.conversation import Conversation, Mode
from workbench.errors import WorkbenchError
from workbench.messages import Message, Role

if TYPE_CHECKING:  # the store (SQLAlchemy, Alembic) is imported when a command uses it, not by the parser
    from workbench.store import ConversationInfo, ConversationStore
    from workbench.store.recorder import ConversationRecorder

MODES = [mode.value for mode in Mode]


def add_history_parser(history: argparse.ArgumentParser) -> None:
    """Add the ``history`` actions and their options to the ``history`` command's parser."""
    history.add_argument(
        "--db", metavar="URL", help="the database (default: WORKBENCH_DB_URL or the data folder)"
    )
    actions = history.add_subparsers(dest="history_action", required=True)
    listing = actions.add_parser("list", help="list conversations, most recently updated first")
    listing.add_argument("--mode", choices=MODES, help="only this mode's conversations")
    listing.add_argument("--search", "-s", metavar="WORDS", help="only those whose title or text matches")
    listing.add_argument("--limit", type=int, default=30, help="at most this many (default 30)")
    listing.add_argument("--deleted", action="store_true", help="list deleted (restorable) conversations")
    listing.add_argument("--json", action="store_true", help="print JSON")
    show = actions.add_parser(
        "show", help="print a conversation's shown branch (Markdown; --json: the whole tree; --tree: drawn)"
    )
    show.add_argument("id")
    show.add_argument("--json", action="store_true", help="print the JSON transcript (every branch)")
    show.add_argument("--tree", action="store_true", help="draw every branch, marking the shown one with *")
    fork = actions.add_parser("fork", help="copy a conversation up to a message into a new conversation")
    fork.add_argument("id")
    fork.add_argument(
        "--at", type=int, required=True, metavar="N", help="the N-th message of the shown branch (1 = first)"
    )
    export = actions.add_parser("export", help="export a conversation, or all of them, as JSON or Markdown")
    export.add_argument("id", nargs="?", help="the conversation (all of them when left out)")
    export.add_argument("-o", "--output", metavar="FILE", help="write FILE (.md: Markdown) instead of stdout")
    export.add_argument("--markdown", action="store_true", help="Markdown instead of JSON")
    importing = actions.add_parser("import", help="import conversations from a JSON export ('-': stdin)")
    importing.add_argument("file")
    delete = actions.add_parser("delete", help="delete a conversation (restorable with 'restore')")
    delete.add_argument("id")
    restore = actions.add_parser("restore", help="bring back a deleted conversation")
    restore.add_argument("id")


def run_history(args: argparse.Namespace, stdin: TextIO, out: TextIO, err: TextIO) -> int:
    """Run one ``history`` action.

    Returns:
        0.

    Raises:
        StoreError: If the database cannot be used or the conversation is not found.
        ImportRefusedError: If an import is refused (nothing was stored).
    """
    from workbench.store import ConversationStore

    with ConversationStore.open(args.db) as store:
        action = args.history_action
        if action == "list":
            _list(store, args, out)
        elif action == "show":
            conversation_id = store.resolve_id(args.id)
            if args.json:
                print(store.export_json(conversation_id), file=out)
            elif args.tree:
                from workbench.store.tree_text import draw_tree

                info, nodes, current = store.get_tree(conversation_id)
                print(f"{info.title or '(untitled)'}  ({info.id}, {len(nodes)} messages; * the shown branch)", file=out)
                out.write(draw_tree(nodes, current))
            else:
                out.write(store.export_markdown(conversation_id))
        elif action == "fork":
            info = store.fork(store.resolve_id(args.id), at=args.at)
            print(f"Forked into {_line(info)}", file=out)
        elif action == "export":
            _export(store, args, out, err)
        elif action == "import":
            _import(store, args.file, stdin, out, err)
        elif action == "delete":
            conversation_id = store.resolve_id(args.id)
            store.delete(conversation_id)
            print(f"Deleted {conversation_id}; undo with: history restore {conversation_id}", file=out)
        else:
            conversation_id = store.resolve_id(args.id)
            store.restore(conversation_id)
            print(f"Restored {_line(store.info(conversation_id))}", file=out)
    return 0


def _line(info: ConversationInfo) -> str:
    when = f"{info.updated:%Y-%m-%d %H:%M}"
    return f"{info.id}  {when}  {info.mode:<4}  {info.message_count:>4} msgs  {info.title or '(untitled)'}"


def _list(store: ConversationStore, args: argparse.Namespace, out: TextIO) -> None:
    found = store.list(mode=args.mode, query=args.search, limit=args.limit, deleted=args.deleted)
    if args.json:
        print(json.dumps([_info_dict(info) for info in found], indent=2, ensure_ascii=False), file=out)
    elif not found:
        print(f"Nothing matches {args.search!r}." if args.search else "No saved conversations.", file=out)
    for info in [] if args.json else found:
        print(_line(info), file=out)


def _info_dict(info: ConversationInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "title": info.title,
        "mode": info.mode,
        "created": info.created.isoformat(),
        "updated": info.updated.isoformat(),
        "messages": info.message_count,
    }


def _export(store: ConversationStore, args: argparse.Namespace, out: TextIO, err: TextIO) -> None:
    conversation_id = store.resolve_id(args.id) if args.id else None
    markdown = args.markdown or (args.output or "").lower().endswith((".md", ".markdown"))
    text = store.export_markdown(conversation_id) if markdown else store.export_json(conversation_id) + "\n"
    if not args.output:
        out.write(text)
        return
    Path(args.output).write_text(text, encoding="utf-8")
    what = f"conversation {conversation_id}" if conversation_id else f"{store.count()} conversations"
    print(f"Exported {what} to {args.output}.", file=err)


def _import(store: ConversationStore, file: str, stdin: TextIO, out: TextIO, err: TextIO) -> None:
    """Import ``file``; every problem is one line naming the file, the conversation, message and field."""
    from workbench.store import ImportRefusedError

    name = "standard input" if file == "-" else file
    notes: list[str] = []
    try:
        imported = store.import_json(_read_import(file, stdin), notes=notes)
    except ImportRefusedError as exc:
        text = str(exc)
        raise ImportRefusedError(text if text.startswith(name) else f"{name}: {text}") from None
    for note in notes:
        print(f"[workbench] {name}: {note}", file=err)
    for info in imported:
        print(f"Imported {_line(info)}", file=out)


def _read_import(file: str, stdin: TextIO) -> str | bytes:
    from workbench.store import ImportRefusedError
    from workbench.store.transcripts import MAX_IMPORT_BYTES, megabytes

    try:
        if file == "-":
            return stdin.read(MAX_IMPORT_BYTES + 1)  # one more than allowed: the store says it is too large
        path = Path(file)
        if not path.is_file():
            raise ImportRefusedError(f"{file} is not a file; give the path of a JSON export.")
        size = path.stat().st_size
        if size > MAX_IMPORT_BYTES:
            raise ImportRefusedError(
                f"{file} is {megabytes(size)}, over the {megabytes(MAX_IMPORT_BYTES)} limit; "
                "export fewer conversations per file."
            )
        return path.read_bytes()
    except UnicodeDecodeError:
        raise ImportRefusedError("The import is not UTF-8 text; give a JSON transcript.") from None
    except OSError as exc:
        raise ImportRefusedError(f"{file} cannot be read ({exc.strerror}); check its permissions.") from None


def save_transcript(messages: list[Message], mode: str, model: Any, err: TextIO) -> ConversationInfo:
    """Save an ``ask`` transcript as a new conversation and say where.

    The system prompt is a setting, as in the app, so a leading system message is not saved.
    """
    from workbench.store import ConversationStore

    if messages and messages[0].role is Role.SYSTEM:
        messages = messages[1:]
    with ConversationStore.open() as store:
        info = store.create(mode, model=model)
        store.save_all(info.id, messages)
        info = store.info(info.id)
    print(f"[workbench] Saved as {info.id} (python -m workbench history show {info.id[:8]}).", file=err)
    return info


def discard_empty(recorder: ConversationRecorder, err: TextIO) -> None:
    """Stop saving and remove the conversation if it holds no message (its only question was refused).

    For a conversation this command made (``ask --save``, ``chat --save``): one it continues is kept.
    """
    recorder.detach()
    try:
        recorder.store.discard_if_empty(recorder.conversation.id)
    except WorkbenchError as exc:  # the error being raised, if any, is the one to show; this is a note
        print(f"[workbench] An empty conversation may be left in the history: {exc}", file=err)


def open_for_chat(resume: str | None, model: Any, out: TextIO) -> tuple[ConversationRecorder, Conversation]:
    """The conversation ``chat`` continues (``--resume``) or a new one, with a recorder saving it.

    The store stays open for the recorder; the process ends with the chat.

    Raises:
        ConversationNotFoundError: If ``resume`` names no saved conversation.
    """
    from workbench.store import ConversationStore
    from workbench.store.recorder import ConversationRecorder
    from workbench.store.reopen import load_conversation

    store = ConversationStore.open()
    if resume is None:
        conversation = Conversation()
        return ConversationRecorder.attach(store, conversation, model=model), conversation
    conversation = load_conversation(store, store.resolve_id(resume))
    if conversation.mode.value != "chat":
        print(
            f"[note] This is a {conversation.mode.value} conversation; it goes on as a plain chat.", file=out
        )
    print(f"Resuming {conversation.title or conversation.id} ({len(conversation)} messages):", file=out)
    for message in conversation.messages[-6:]:
        print(f"  {message.role.value}: {' '.join(message.content.split())[:200]}", file=out)
    return ConversationRecorder.attach(store, conversation, saved=True), conversation
