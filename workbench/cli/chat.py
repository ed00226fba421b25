"""``python -m workbench chat``: a chat in the terminal."""

from __future__ import annotations

import argparse
import contextlib
import logging
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, TextIO

from workbench.cli.options import chat_session_from_args, load_chat_model, spec_from_args
from workbench.errors import USER_ERRORS

if TYPE_CHECKING:
    from workbench.modes.chat import ChatSession
    from workbench.store.recorder import ConversationRecorder

BANNER = "Workbench chat. Type 'clear' to empty the history, 'stop' or Ctrl-D to exit."


def run_chat(args: argparse.Namespace, stdin: TextIO, out: TextIO, err: TextIO) -> int:
    """Read messages from ``stdin`` and stream the answers to ``out`` until 'stop' or the end of input.

    ``clear`` empties the history; Ctrl-C stops the answer being written and keeps the chat going.
    A failed turn is reported on ``err`` and the chat goes on. Log records and warnings (a failed
    save, a library's warning) go to ``err`` as whole lines, held while an answer is being written
    and written after its newline, so they never land inside the answer on a terminal.

    Returns:
        0.
    """
    log = HeldLog(err)
    root = logging.getLogger()
    root.addHandler(log)
    logging.captureWarnings(True)
    try:
        return _chat_loop(args, stdin, out, err, log)
    finally:
        root.removeHandler(log)
        logging.captureWarnings(False)
        log.write_held()


def _chat_loop(args: argparse.Namespace, stdin: TextIO, out: TextIO, err: TextIO, log: HeldLog) -> int:
    session = chat_session_from_args(load_chat_model(args, err), args)
    print(BANNER, file=out)
    recorder = None
    if args.save or args.resume:
        from workbench.cli.history import open_for_chat

        recorder, session.history = open_for_chat(args.resume, spec_from_args(args), out)
    try:
        return _turns(session, recorder, stdin, out, err, log)
    finally:
        if recorder is not None and not args.resume and not session.history.node_count():
            from workbench.cli.history import discard_empty

            discard_empty(recorder, err)  # a new chat whose messages were all refused (or cleared)


def _turns(
    session: ChatSession,
    recorder: ConversationRecorder | None,
    stdin: TextIO,
    out: TextIO,
    err: TextIO,
    log: HeldLog,
) -> int:
    """The chat's read-answer loop, until 'stop' or the end of input."""
    copied_from = None
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
            with log.held():
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
                print(file=out, flush=True)
        except USER_ERRORS as exc:
            print(f"\nError: {exc}", file=err)
        if recorder is not None and recorder.forked_from is not None and recorder.forked_from != copied_from:
            copied_from = recorder.forked_from
            print(
                f"[workbench] Conversation {copied_from} was changed by another tab or program since this chat "
                f"opened it; this chat goes on as a copy: {session.history.id} "
                f"(python -m workbench history show {session.history.id[:8]}). Both are kept.",
                file=err,
                flush=True,
            )


class HeldLog(logging.Handler):
    """Writes log records (warnings and worse) to a stream as whole ``[workbench] ...`` lines.

    Inside :meth:`held` the lines are kept and written when it ends (after an answer's newline).
    """

    def __init__(self, stream: TextIO) -> None:
        """Write to ``stream`` (the command's standard error)."""
        super().__init__(logging.WARNING)
        self.setFormatter(logging.Formatter("[workbench] %(message)s"))
        self._stream = stream
        self._held: list[str] | None = None
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        """Write the record's line now, or keep it while an answer is being written."""
        try:
            line = self.format(record)
        except Exception:  # logging's contract: a bad record is reported, never raised
            self.handleError(record)
            return
        with self._guard:
            if self._held is not None:
                self._held.append(line)
                return
        print(line, file=self._stream, flush=True)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Keep the lines logged inside the block; write them when it ends."""
        with self._guard:
            self._held = []
        try:
            yield
        finally:
            self.write_held()

    def write_held(self) -> None:
        """Write the kept lines and stop keeping them."""
        with self._guard:
            lines, self._held = self._held or [], None
        for line in lines:
            print(line, file=self._stream, flush=True)
