"""``python -m workbench mcp``: Workbench's tools (and, with ``--code``, sandboxed Python) as an MCP server.

Speaks MCP over stdin/stdout, for Claude Desktop, Cursor or any MCP client (see docs/mcp.md). Messages
for people go to stderr; stdout carries only the protocol.
"""

from __future__ import annotations

import argparse
from typing import TextIO

from workbench.cli.options import positive_number

DEFAULT_CODE_TIMEOUT_S = 30.0
"""As Code mode (``CodeOptions.timeout``) and :data:`workbench.server.mcp.DEFAULT_CODE_TIMEOUT_S`."""


def add_mcp_parser(parser: argparse.ArgumentParser) -> None:
    """The options of ``mcp``."""
    parser.add_argument(
        "--tools-path",
        action="append",
        default=[],
        metavar="DIR",
        help="a folder of tool files to offer (repeatable; adds to WORKBENCH_TOOLS_PATH)",
    )
    parser.add_argument(
        "--no-tools", action="store_true", help="offer no registry tools (only python with --code)"
    )
    parser.add_argument(
        "--code", action="store_true", help="add a 'python' tool: a sandboxed kernel kept per MCP session"
    )
    parser.add_argument(
        "--code-timeout",
        type=positive_number,
        default=DEFAULT_CODE_TIMEOUT_S,
        metavar="S",
        help=f"seconds a python call may run before it is interrupted (default {DEFAULT_CODE_TIMEOUT_S:g})",
    )


def run_mcp(args: argparse.Namespace, stdin: TextIO, out: TextIO, err: TextIO) -> int:
    """Serve until the client closes the connection."""
    import anyio

    from workbench.server.mcp import build_server, serve_stdio

    registry = None
    if not args.no_tools:
        from tools import ToolRegistry

        # MCP servers' tools are never re-exported, so no MCP configuration is read here.
        registry = ToolRegistry.from_env(extra_paths=args.tools_path or [], wait=True, mcp=False)
        for problem in registry.errors:
            print(
                f"[workbench] Tool not loaded from {problem.source}: {problem.message}", file=err, flush=True
            )
    if args.code:
        from kernel import sandbox_available
        from workbench.kernels import gateway_config

        available, reason = sandbox_available()
        gateway = gateway_config()
        if gateway is not None:
            print(
                f"[workbench] python runs on the Kernel Gateway at {gateway.where}: the local sandbox does not "
                "apply; the code is isolated as the gateway isolates it.",
                file=err,
                flush=True,
            )
        elif not available:
            print(f"[workbench] WARNING: python runs NOT sandboxed here: {reason}", file=err, flush=True)
    server = build_server(registry, code=args.code, code_timeout=args.code_timeout)
    try:
        anyio.run(serve_stdio, server)
    finally:
        if registry is not None:
            registry.close()
    return 0
