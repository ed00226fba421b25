"""``python -m workbench chat``: a chat in the terminal."""

from __future__ import annotations

import argparse
from typing import TextIO

from workbench.cli.options import chat_session_from_args, load_chat_model, spec_from_args
from workbench.errors import USER_ERRORS

BANNER = "Workbench chat. Type 'clear' to empty the history, 'stop' or Ctrl-D to exit."


def run_chat(args: argparse.Namespace, stdin: TextIO, out: TextIO, err: TextIO) -> int:
    """Read messages from ``stdin`` and stream the answers to ``out`` until 'stop' or the end of input.

    ``clear`` empties the history; Ctrl-C stops the answer being written and keeps the chat going.
    A failed turn is reported on ``err`` and the chat goes on.

    Returns:
        0.
    """
    session = chat_session_from_args(load_chat_model(args, err), args)
    print(BANNER, file=out)
    recorder = None
    if args.save or args.resume:
        from workbench.cli.history import open_for_chat

        recorder, session.history = open_for_chat(args.resume, spec_from_args(args), out)
    while True:
        print("\nUser: ", end="", file=out, flush=True)
        line = stdin.readline()
        if not line:
            print(file=out)
            return 0
        text = line.strip()
        if text == "stop":
            return 0
        if text == "clear":
            session.clear()
            print("(history cleared)", file=out)
            continue
        if not text:
            continue
        try:
            turn = session.send(text)
            print("Assistant: ", end="", file=out, flush=True)
            try:
                for chunk in turn.text():
                    print(chunk, end="", file=out, flush=True)
            except KeyboardInterrupt:
                turn.stop()
                print(" [stopped]", end="", file=out)
            finally:
                turn.close()
            print(file=out)
            if recorder is not None and recorder.error is not None:
                print(f"[workbench] Not saved: {recorder.error}", file=err)
        except USER_ERRORS as exc:
            print(f"\nError: {exc}", file=err)
