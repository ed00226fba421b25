"""``python -m workbench ask --mode tool``: one prompt answered with tools, in the terminal.

Tools come from the built-ins, every ``--tools-path DIR``, the folders in ``WORKBENCH_TOOLS_PATH`` and
the ``workbench.tools`` entry points. A tool file that fails to load is reported on stderr and the
others still run. The answer streams to stdout; each call and its result is reported on stderr, so
stdout holds only the answer (or, with ``--json``, the transcript printed by :mod:`workbench.cli.ask`).
"""

from __future__ import annotations

import argparse
import json
from typing import TextIO

from tools import ToolRegistry
from workbench.chat_model import ChatModel
from workbench.cli.options import selected_tools, settings_from_args
from workbench.conversation import Conversation
from workbench.messages import Message, Role
from workbench.modes.events import MessageDone, Notice, TextDelta
from workbench.modes.tool import ToolOptions, ToolSession, default_tool_choice


def ask_with_tools(
    model: ChatModel, args: argparse.Namespace, prompt: str, out: TextIO, err: TextIO, history: Conversation
) -> list[Message]:
    """Answer ``prompt`` in Tool mode and return the conversation (calls and observations included).

    Raises:
        WorkbenchError: If the prompt is empty or the conversation does not fit the model.
    """
    registry = load_tools(args.tools_path or [], err, args)
    for problem in registry.errors:
        print(f"[workbench] Tool not loaded from {problem.source}: {problem.message}", file=err)
    enabled = selected_tools(args, registry.names())
    settings = settings_from_args(model, args)
    choice = args.tool_choice or default_tool_choice(model)
    options = ToolOptions(tool_choice=choice, max_rounds=args.max_rounds)
    session = ToolSession(
        model, registry, system_prompt=args.system or "", settings=settings, options=options, history=history
    )
    session.enabled = enabled
    printed = False
    try:
        for event in session.send(prompt):
            if isinstance(event, TextDelta) and not args.json:
                print(event.text, end="", file=out, flush=True)
                printed = True
            elif isinstance(event, MessageDone):
                report_message(event.message, err)
            elif isinstance(event, Notice):
                print(f"[workbench] {event.text}", file=err)
    except KeyboardInterrupt:
        session.stop()
        raise
    finally:
        if registry.mcp is not None:
            registry.mcp.close()  # stdio servers are stopped, not left to notice the closed pipe
    if printed:
        print(file=out)
    return session.conversation()


def load_tools(paths: list[str], err: TextIO, args: argparse.Namespace | None = None) -> ToolRegistry:
    """Load the tools in the background (a tool host imports the files, MCP servers connect), saying so on stderr."""
    registry = ToolRegistry.from_env(
        extra_paths=paths, wait=False, mcp_config=getattr(args, "mcp_config", None)
    )
    if registry.mcp is not None and getattr(args, "yes", False):
        registry.mcp.confirm = lambda server, tool, arguments: True
    for name, server in registry.mcp.servers.items() if registry.mcp is not None else []:
        print(
            f"[workbench] Connecting to MCP server {name}: {server.config.describe()}", file=err, flush=True
        )
    shown: str | None = None
    if registry.loading:
        print("[workbench] Loading tools…", file=err, flush=True)
    while not registry.wait(0.5):
        file = registry.loading_file
        if file is not None and file != shown:
            print(f"[workbench] Loading tools: importing {file}", file=err, flush=True)
            shown = file
    for name, server in registry.mcp.servers.items() if registry.mcp is not None else []:
        print(f"[workbench] MCP server {name}: {server.describe_state()}", file=err, flush=True)
    return registry


def report_message(message: Message, err: TextIO) -> None:
    """One stderr line per call made and per result received."""
    for call in message.tool_calls:
        print(f"[tool] {call.name}({json.dumps(call.arguments, ensure_ascii=False)})", file=err)
    if message.role is Role.OBSERVATION:
        status = "failed" if message.error else "returned"
        text = message.content if len(message.content) <= 300 else message.content[:300] + "..."
        print(f"[tool] {message.name} {status}: {text}", file=err)
