"""``python -m workbench tools [--json]``: every tool, where it came from, its state and its schema.

Waits until loading is over (tool files imported, MCP servers' first connection attempts done), then
lists the Python tools (built-in, file, entry point) and the MCP servers' tools, then each MCP server's
state (a failed one with its reason and last stderr lines) and the files that did not load.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from tools import ToolRegistry

SOURCE_PREFIX = "mcp:"  # as tools.mcp_client.SOURCE_PREFIX (not imported: the parser imports this module)


def add_tools_parser(parser: argparse.ArgumentParser) -> None:
    """The options of ``tools``."""
    from workbench.cli.options import add_tool_selection_options

    parser.add_argument("--json", action="store_true", help="print everything as one JSON object")
    parser.add_argument(
        "--tools-path",
        action="append",
        default=[],
        metavar="DIR",
        help="a folder of tool files (repeatable; adds to WORKBENCH_TOOLS_PATH)",
    )
    add_tool_selection_options(parser)


def run_tools(args: argparse.Namespace, stdin: TextIO, out: TextIO, err: TextIO) -> int:
    """List the tools; 0 even when some failed to load (they are listed with the reason)."""
    from workbench.cli.ask_tool import load_tools
    from workbench.cli.options import selected_tools

    registry = load_tools(args.tools_path or [], err, args)
    try:
        report = tools_report(registry, selected_tools(args, registry.names()))
        if args.json:
            print(json.dumps(report, indent=2, ensure_ascii=False), file=out)
        else:
            print_report(report, out)
    finally:
        if registry.mcp is not None:
            registry.mcp.close()
        registry.close()
    return 0


def tools_report(registry: ToolRegistry, only: set[str] | None = None) -> dict[str, Any]:
    """Every tool (name, source kind, source, state, schema), the MCP servers and the load errors."""
    tools = []
    for spec in registry.specs():
        if only is not None and spec.name not in only:
            continue
        tools.append(
            {
                "name": spec.name,
                "source_kind": _kind(spec.source),
                "source": spec.source,
                "state": "ready",
                "description": spec.description,
                "parameters": spec.parameters,
            }
        )
    servers = []
    for name, server in registry.mcp.servers.items() if registry.mcp is not None else []:
        servers.append(
            {
                "name": name,
                "target": server.config.describe(),
                "state": server.state.value,
                "detail": server.describe_state(),
                "protocol_version": server.protocol_version,
                "tools": [t.name for t in server.tools] if server.state.value == "ready" else [],
                "stderr_tail": server.stderr_tail(),
                "stderr_log": str(server.log_path) if server.log_path else None,
            }
        )
    errors = [{"source": e.source, "message": e.message} for e in registry.errors]
    return {"tools": tools, "mcp_servers": servers, "errors": errors}


def _kind(source: str) -> str:
    if source == "builtin":
        return "built-in"
    if source.startswith(SOURCE_PREFIX):
        return "MCP server"
    if source.startswith("entry point"):
        return "entry point"
    return "file" if source.endswith(".py") else "module"


def print_report(report: dict[str, Any], out: TextIO) -> None:
    """The report as text, one tool per line."""
    for tool in report["tools"]:
        print(f"{tool['name']:32} {tool['source_kind']:12} {tool['source']}", file=out)
    for server in report["mcp_servers"]:
        print(f"\nMCP server {server['name']} ({server['target']}): {server['detail']}", file=out)
        if server["state"] != "ready" and server["stderr_tail"]:
            print("  last stderr lines:\n    " + server["stderr_tail"].replace("\n", "\n    "), file=out)
    for error in report["errors"]:
        print(f"\nNot loaded: {error['source']}: {error['message']}", file=out)
