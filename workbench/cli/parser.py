"""The argument parser of ``python -m workbench`` (and of the ``workbench`` console script)."""

from __future__ import annotations

import argparse
import sys
from enum import Enum
from pathlib import Path

from workbench.cli.history import add_history_parser
from workbench.cli.options import (
    add_generation_options,
    add_model_options,
    add_tool_selection_options,
    positive_int,
    positive_number,
)
from workbench.cli.serve import add_serve_options


class Command(str, Enum):
    """The subcommands."""

    CHAT = "chat"
    ASK = "ask"
    EXEC = "exec"
    HISTORY = "history"
    SERVE = "serve"
    TOOLS = "tools"
    MCP = "mcp"
    MODELS = "models"
    KB = "kb"


class AskMode(str, Enum):
    """What answers ``ask``: the plain chat, the tool loop or the code interpreter."""

    CHAT = "chat"
    TOOL = "tool"
    CODE = "code"


def program_name() -> str:
    """``workbench`` when run as the console script, else ``python -m workbench``."""
    name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    return name if name == "workbench" else "python -m workbench"


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``python -m workbench`` (and of the ``workbench`` command)."""
    parser = argparse.ArgumentParser(prog=program_name(), description="Workbench: a local LLM workbench.")
    sub = parser.add_subparsers(dest="command", required=True)
    chat = sub.add_parser(
        Command.CHAT.value, help="chat in the terminal ('clear' empties the history, 'stop' exits)"
    )
    add_model_options(chat)
    add_generation_options(chat)
    chat.add_argument("--save", action="store_true", help="save the chat in the history as it goes")
    chat.add_argument("--resume", metavar="ID", help="continue a saved conversation (and save what follows)")
    _add_ask(sub.add_parser(Command.ASK.value, help="answer one prompt and exit"))
    _add_exec(
        sub.add_parser(
            Command.EXEC.value, help="run Python in a fresh sandboxed kernel and print its outputs"
        )
    )
    add_history_parser(
        sub.add_parser(Command.HISTORY.value, help="saved conversations: list, show, export, import, delete")
    )
    serve = sub.add_parser(Command.SERVE.value, help="serve the model over an OpenAI-compatible API")
    add_model_options(serve, exclude=("api_key",))
    add_serve_options(serve)
    add_tool_selection_options(serve)
    from workbench.cli.kb import add_kb_parser
    from workbench.cli.mcp import add_mcp_parser
    from workbench.cli.models import add_models_parser
    from workbench.cli.tools import add_tools_parser

    add_tools_parser(sub.add_parser(Command.TOOLS.value, help="list every tool: source, state, schema"))
    add_mcp_parser(
        sub.add_parser(
            Command.MCP.value, help="serve Workbench's tools (and --code: sandboxed Python) over MCP stdio"
        )
    )
    add_models_parser(
        sub.add_parser(Command.MODELS.value, help="models by name in the Hugging Face cache: list, pull, rm")
    )
    add_kb_parser(sub.add_parser(Command.KB.value, help="knowledge bases: add files, list, rm, search"))
    return parser


def _add_ask(ask: argparse.ArgumentParser) -> None:
    add_model_options(ask)
    add_generation_options(ask)
    ask.add_argument("prompt", help="the user's message ('-' reads standard input)")
    ask.add_argument("--json", action="store_true", help='print the transcript as {"messages": [...]}')
    ask.add_argument("--save", action="store_true", help="save the conversation in the history")
    ask.add_argument(
        "--kb", metavar="NAME", help="chat mode: answer from this knowledge base, citing its passages"
    )
    ask.add_argument(
        "--image",
        action="append",
        default=[],
        metavar="FILE",
        help="chat mode: an image sent with the prompt, for a vision model (png, jpg, webp, gif; repeatable)",
    )
    ask.add_argument(
        "--mode",
        choices=sorted(mode.value for mode in AskMode),
        default=AskMode.CHAT.value,
        help="chat (default), tool or code",
    )
    ask.add_argument(
        "--tools-path",
        action="append",
        default=[],
        metavar="DIR",
        help="tool mode: a folder of tool files (repeatable; adds to WORKBENCH_TOOLS_PATH)",
    )
    ask.add_argument(
        "--tool-choice",
        choices=("auto", "required", "none"),
        default=None,
        help="tool mode: whether the model may, must or must not call a tool "
        "(default: required for the embedded model, which never calls on its own; auto for others)",
    )
    add_tool_selection_options(ask)
    ask.add_argument(
        "--max-rounds", type=positive_int, default=5, help="tool/code mode: model turns per message"
    )
    ask.add_argument("--timeout", type=positive_number, default=30.0, help="code mode: seconds per code run")
    ask.add_argument(
        "--force-code",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="code mode: make the first reply open a python block (default: on)",
    )


def _add_exec(run: argparse.ArgumentParser) -> None:
    run.add_argument("file", help="a .py file, or '-' for standard input")
    run.add_argument(
        "--timeout", type=positive_number, default=30.0, help="seconds before the run is interrupted"
    )
    run.add_argument("--json", action="store_true", help="print the execution as JSON")
