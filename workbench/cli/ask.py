"""``python -m workbench ask``: answer one prompt (in chat, tool or code mode) and exit."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import TextIO

from workbench.chat_model import ChatModel
from workbench.cli.ask_code import ask_with_code
from workbench.cli.ask_tool import ask_with_tools
from workbench.cli.options import chat_session_from_args, load_chat_model, spec_from_args
from workbench.cli.parser import AskMode
from workbench.conversation import Message, transcript_to_json
from workbench.errors import WorkbenchError

AskRunner = Callable[[ChatModel, argparse.Namespace, str, TextIO, TextIO], list[Message]]
"""Answers a prompt with a loaded model: ``(model, args, prompt, out, err) -> the transcript``."""


def ask_chat(
    model: ChatModel, args: argparse.Namespace, prompt: str, out: TextIO, err: TextIO
) -> list[Message]:
    """Answer ``prompt`` in a plain chat; without ``--json`` the answer streams to ``out``."""
    session = chat_session_from_args(model, args)
    with session.send(prompt) as turn:
        for chunk in turn.text():
            if not args.json:
                print(chunk, end="", file=out, flush=True)
    if not args.json:
        print(file=out)
    return session.conversation()


ASK_RUNNERS: dict[AskMode, AskRunner] = {
    AskMode.CHAT: ask_chat,
    AskMode.TOOL: ask_with_tools,
    AskMode.CODE: ask_with_code,
}


def run_ask(args: argparse.Namespace, stdin: TextIO, out: TextIO, err: TextIO) -> int:
    """One prompt, one answer (or the transcript as JSON with ``--json``).

    Returns:
        0.

    Raises:
        WorkbenchError: If the prompt is empty, or the model cannot load or answer.
    """
    prompt = stdin.read() if args.prompt == "-" else args.prompt
    if not prompt.strip():
        raise WorkbenchError("The prompt is empty; pass some text (or '-' to read standard input).")
    runner = ASK_RUNNERS[AskMode(args.mode)]
    model = load_chat_model(args, err)
    messages = runner(model, args, prompt, out, err)
    if args.save:
        from workbench.cli.history import save_transcript

        save_transcript(messages, args.mode, spec_from_args(args), err)
    if args.json:
        # The transcript, and which model answered: engine, device, precision, quantization, threads.
        payload = json.loads(transcript_to_json(messages, include_images=False))
        payload["model"] = model.info.to_dict()
        print(json.dumps(payload, indent=2, ensure_ascii=False), file=out)
    return 0
