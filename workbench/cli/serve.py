"""``python -m workbench serve``: the model behind an OpenAI-compatible API (see docs/serving.md)."""

from __future__ import annotations

import argparse
import os
from typing import TextIO

from workbench.cli.mcp import DEFAULT_CODE_TIMEOUT_S
from workbench.cli.options import positive_number

#: Environment variables of the server's own options (the model's come from ``SPEC_OPTIONS``).
SERVE_ENV = {
    "host": "WORKBENCH_SERVE_HOST",
    "port": "WORKBENCH_SERVE_PORT",
    "api_key": "WORKBENCH_SERVE_API_KEY",
    "cors_origin": "WORKBENCH_SERVE_CORS_ORIGINS",
}


def add_serve_options(parser: argparse.ArgumentParser) -> None:
    """``--host``, ``--port``, ``--api-key``, ``--cors-origin``, ``--served-model-name``, ``--tools-path``.

    In ``serve``, ``--api-key`` is the key clients must send (a remote model's key comes from
    ``WORKBENCH_API_KEY`` / ``OPENAI_API_KEY``).
    """
    env = os.environ
    parser.add_argument(
        "--host",
        default=env.get(SERVE_ENV["host"]) or "127.0.0.1",
        help="address to listen on (default 127.0.0.1; any other without --api-key prints a warning)",
    )
    parser.add_argument(
        "--port", type=int, default=int(env.get(SERVE_ENV["port"]) or 8000), help="port (default 8000)"
    )
    parser.add_argument(
        "--api-key",
        dest="server_api_key",
        metavar="KEY",
        default=env.get(SERVE_ENV["api_key"]) or None,
        help=f"clients must send 'Authorization: Bearer KEY' (env {SERVE_ENV['api_key']}); /health stays open",
    )
    origins = [o.strip() for o in env.get(SERVE_ENV["cors_origin"], "").split(",") if o.strip()]
    parser.add_argument(
        "--cors-origin",
        action="append",
        default=origins,
        metavar="ORIGIN",
        help=f"a browser origin allowed to call the API, '*' for any (repeatable; env {SERVE_ENV['cors_origin']})",
    )
    parser.add_argument("--served-model-name", help="the model id clients send (default: the model's name)")
    parser.add_argument(
        "--tools-path",
        action="append",
        default=[],
        metavar="DIR",
        help="a folder of tool files whose schemas GET /v1/tools lists (repeatable; adds to WORKBENCH_TOOLS_PATH)",
    )
    parser.add_argument(
        "--code",
        action="store_true",
        help="offer a 'python' tool at /mcp: a sandboxed kernel per MCP session (2025 protocol clients)",
    )
    parser.add_argument(
        "--code-timeout",
        type=positive_number,
        default=DEFAULT_CODE_TIMEOUT_S,
        metavar="S",
        help=f"seconds a python call may run before it is interrupted (default {DEFAULT_CODE_TIMEOUT_S:g})",
    )


def run_serve(args: argparse.Namespace, stdin: TextIO, out: TextIO, err: TextIO) -> int:
    """Serve until stopped; 1 if the server could not start."""
    from workbench.cli.options import spec_from_args
    from workbench.server.serve import serve

    return serve(
        spec_from_args(args),
        host=args.host,
        port=args.port,
        api_key=args.server_api_key,
        cors_origins=args.cors_origin,
        model_id=args.served_model_name,
        tools_paths=args.tools_path,
        mcp_config=args.mcp_config,
        only_tools=args.only_tools,
        code=args.code,
        code_timeout=args.code_timeout,
        err=err,
    )
