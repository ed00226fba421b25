"""The command line: ``python -m workbench chat | ask | exec | history | serve | tools | mcp | models | kb`` (also installed as ``workbench``).

One module per command (``chat``, ``ask`` with ``ask_tool`` and ``ask_code``, ``exec``, ``history``, ``serve``); the parser and
the options they share live in ``parser`` and ``options``. A command's module is imported only when it
runs, so ``exec`` does not load the model stack.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TextIO

from workbench.cli.options import SAMPLING_FIELDS, check_generation_options
from workbench.cli.parser import Command, build_parser
from workbench.errors import USER_ERRORS, SettingsError

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
"""Exit statuses: done; a failure while running; a bad option or setting (nothing ran); Ctrl-C.
``exec`` adds 1 (the code raised), 124 (it timed out) and 125 (its kernel died)."""

CommandRunner = Callable[[argparse.Namespace, TextIO, TextIO, TextIO], int]
"""Runs a command: ``(args, stdin, out, err) -> exit status``."""


def _chat(args: argparse.Namespace, stdin: TextIO, out: TextIO, err: TextIO) -> int:
    from workbench.cli.chat import run_chat

    return run_chat(args, stdin, out, err)


def _ask(args: argparse.Namespace, stdin: TextIO, out: TextIO, err: TextIO) -> int:
    from workbench.cli.ask import run_ask

    return run_ask(args, stdin, out, err)


def _exec(args: argparse.Namespace, stdin: TextIO, out: TextIO, err: TextIO) -> int:
    from workbench.cli.exec import run_exec

    return run_exec(args, stdin, out, err)


def _history(args: argparse.Namespace, stdin: TextIO, out: TextIO, err: TextIO) -> int:
    from workbench.cli.history import run_history

    return run_history(args, stdin, out, err)


def _serve(args: argparse.Namespace, stdin: TextIO, out: TextIO, err: TextIO) -> int:
    from workbench.cli.serve import run_serve

    return run_serve(args, stdin, out, err)


def _tools(args: argparse.Namespace, stdin: TextIO, out: TextIO, err: TextIO) -> int:
    from workbench.cli.tools import run_tools

    return run_tools(args, stdin, out, err)


def _models(args: argparse.Namespace, stdin: TextIO, out: TextIO, err: TextIO) -> int:
    from workbench.cli.models import run_models

    return run_models(args, stdin, out, err)


def _mcp(args: argparse.Namespace, stdin: TextIO, out: TextIO, err: TextIO) -> int:
    from workbench.cli.mcp import run_mcp

    return run_mcp(args, stdin, out, err)


def _kb(args: argparse.Namespace, stdin: TextIO, out: TextIO, err: TextIO) -> int:
    from workbench.cli.kb import run_kb

    return run_kb(args, stdin, out, err)


COMMANDS: dict[Command, CommandRunner] = {
    Command.CHAT: _chat,
    Command.ASK: _ask,
    Command.EXEC: _exec,
    Command.HISTORY: _history,
    Command.SERVE: _serve,
    Command.TOOLS: _tools,
    Command.MCP: _mcp,
    Command.MODELS: _models,
    Command.KB: _kb,
}


def main(
    argv: list[str] | None = None,
    stdin: TextIO | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Entry point; returns the exit status (see :data:`EXIT_USAGE` and the others; the README lists them).

    Bad options exit with status 2 and argparse's message (``SystemExit``), as ``--help`` exits with 0;
    so does a sampling setting out of range (``--temperature -1``), checked before a model loads.
    An error while running (a model that cannot load, an empty prompt, no kernel) exits with 1.

    The streams default to ``sys.stdin``/``sys.stdout``/``sys.stderr`` as they are at call time, so a
    caller that redirects them (``contextlib.redirect_stdout``, pytest's capsys) gets the output.
    """
    stdin, out, err = stdin or sys.stdin, out or sys.stdout, err or sys.stderr
    args = build_parser().parse_args(argv)
    try:
        check_generation_options(args)
        return COMMANDS[Command(args.command)](args, stdin, out, err)
    except SettingsError as exc:
        print(f"Error: {_option_of(exc)}{exc} Fix the option and run again.", file=err)
        return EXIT_USAGE
    except USER_ERRORS as exc:
        print(f"Error: {exc}", file=err)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("\nInterrupted.", file=err)
        return EXIT_INTERRUPTED


def _option_of(exc: SettingsError) -> str:
    """``"--top-p: "`` for an error about top_p, so the user sees which option to fix."""
    field = next((name for name in SAMPLING_FIELDS if str(exc).startswith(f"{name} ")), None)
    return f"--{field.replace('_', '-')}: " if field else ""


__all__ = [
    "COMMANDS",
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "Command",
    "build_parser",
    "main",
]
