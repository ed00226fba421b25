"""``python -m workbench ask``: answer one prompt (in chat, tool or code mode) and exit."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from workbench.chat_model import ChatModel, text_only_refusal
from workbench.cli.history import discard_empty
from workbench.cli.options import chat_session_from_args, load_chat_model, spec_from_args
from workbench.cli.parser import AskMode
from workbench.conversation import Conversation, Mode
from workbench.errors import WorkbenchError
from workbench.messages import Message, transcript_to_json

if TYPE_CHECKING:  # the store (SQLAlchemy, Alembic) is imported only by --save
    from workbench.store.recorder import ConversationRecorder

AskRunner = Callable[[ChatModel, argparse.Namespace, str, TextIO, TextIO, Conversation], list[Message]]
"""Answers a prompt with a loaded model: ``(model, args, prompt, out, err, history) -> the transcript``.

The runner's session keeps its messages in ``history`` (which ``--save`` records as they come).
"""


def ask_chat(
    model: ChatModel, args: argparse.Namespace, prompt: str, out: TextIO, err: TextIO, history: Conversation
) -> list[Message]:
    """Answer ``prompt`` in a plain chat; without ``--json`` the answer streams to ``out``.

    With ``--kb NAME`` the question goes with the knowledge base's nearest passages, numbered; the
    sources cited are listed after the answer (and kept in the reply's metadata).
    """
    session = chat_session_from_args(model, args)
    session.history = history
    bases = None
    if getattr(args, "kb", None):
        from workbench.knowledge import KnowledgeBases

        bases = KnowledgeBases.open()
        session.documents = bases.retriever(args.kb)
    try:
        with session.send(prompt, getattr(args, "image_data", ())) as turn:
            for chunk in turn.text():
                if not args.json:
                    print(chunk, end="", file=out, flush=True)
    finally:
        if bases is not None:
            bases.close()
    if not args.json:
        print(file=out)
        for source in turn.sources:
            print(f"[{source.number}] {source.label}", file=out)
    return session.conversation()


def record_ask(conversation: Conversation, model: Any) -> ConversationRecorder:
    """Save an ``ask`` conversation as it happens: the question at once, the answer as it streams.

    The store stays open for the recorder; the process ends with the answer.
    """
    from workbench.store import ConversationStore
    from workbench.store.recorder import ConversationRecorder

    return ConversationRecorder.attach(ConversationStore.open(), conversation, model=model)


def report_saved(recorder: ConversationRecorder, err: TextIO) -> None:
    """Say where an ``ask`` conversation was saved, or why it was not."""
    conversation_id = recorder.conversation.id
    if recorder.error is not None:
        print(f"[workbench] Not saved: {recorder.error}", file=err)
    elif recorder.store.exists(conversation_id):
        command = f"python -m workbench history show {conversation_id[:8]}"
        print(f"[workbench] Saved as {conversation_id} ({command}).", file=err)


def ask_tool(
    model: ChatModel, args: argparse.Namespace, prompt: str, out: TextIO, err: TextIO, history: Conversation
) -> list[Message]:
    """Tool mode, imported on use (the tool registry and its host are not needed for a chat turn)."""
    from workbench.cli.ask_tool import ask_with_tools

    return ask_with_tools(model, args, prompt, out, err, history)


def ask_code(
    model: ChatModel, args: argparse.Namespace, prompt: str, out: TextIO, err: TextIO, history: Conversation
) -> list[Message]:
    """Code mode, imported on use (the kernel brings jupyter_client and zmq, which a chat turn never needs)."""
    from workbench.cli.ask_code import ask_with_code

    return ask_with_code(model, args, prompt, out, err, history)


ASK_RUNNERS: dict[AskMode, AskRunner] = {
    AskMode.CHAT: ask_chat,
    AskMode.TOOL: ask_tool,
    AskMode.CODE: ask_code,
}


def run_ask(args: argparse.Namespace, stdin: TextIO, out: TextIO, err: TextIO) -> int:
    """One prompt, one answer (or the transcript as JSON with ``--json``).

    Returns:
        0.

    Raises:
        WorkbenchError: If the prompt is empty, an ``--image`` is unusable, or the model cannot load or answer
            (a text-only model refuses images before generating).
    """
    prompt = stdin.read() if args.prompt == "-" else args.prompt
    if not prompt.strip():
        raise WorkbenchError("The prompt is empty; pass some text (or '-' to read standard input).")
    if getattr(args, "kb", None) and args.mode != AskMode.CHAT.value:
        raise WorkbenchError("--kb answers in chat mode only; leave out --mode, or --kb.")
    if getattr(args, "image", None):
        if args.mode != AskMode.CHAT.value:
            raise WorkbenchError("--image is sent in chat mode only; leave out --mode, or --image.")
        from workbench.images import read_image_file

        args.image_data = [read_image_file(path) for path in args.image]  # checked before the model loads
    runner = ASK_RUNNERS[AskMode(args.mode)]
    model = load_chat_model(args, err)
    if getattr(args, "image_data", None) and not model.capabilities.vision:
        raise text_only_refusal(model.info.label)  # before --save records the question
    history = Conversation(Mode(args.mode))
    recorder = None
    if args.save:  # as the app does: the question at once, the answer checkpointed as it streams
        recorder = record_ask(history, spec_from_args(args))
    try:
        messages = runner(model, args, prompt, out, err, history)
    finally:
        if recorder is not None:
            if not history.node_count():  # refused before answering: the question was taken back
                discard_empty(recorder, err)  # a new conversation: nothing saved before is touched
            report_saved(recorder, err)
    if args.json:
        # The transcript, and which model answered: engine, device, precision, quantization, threads.
        payload = json.loads(transcript_to_json(messages, include_images=False))
        payload["model"] = model.info.to_dict()
        print(json.dumps(payload, indent=2, ensure_ascii=False), file=out)
    return 0
