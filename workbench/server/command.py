"""The ``serve`` command: options (and their environment variables) and running the server with uvicorn."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import sys
from typing import TextIO

from workbench.models.spec import SPEC_OPTIONS, ModelSpec

#: Environment variables of the server's own options (the model's come from ``SPEC_OPTIONS``).
SERVE_ENV = {
    "host": "WORKBENCH_SERVE_HOST",
    "port": "WORKBENCH_SERVE_PORT",
    "api_key": "WORKBENCH_SERVE_API_KEY",
    "cors_origin": "WORKBENCH_SERVE_CORS_ORIGINS",
}


def add_model_spec_options(parser: argparse.ArgumentParser) -> None:
    """The model options from :data:`SPEC_OPTIONS` (``--api-key`` left out: in ``serve`` it is the server's)."""
    for option in SPEC_OPTIONS:
        if option.field == "api_key":
            continue
        if option.choices is None and isinstance(getattr(ModelSpec(), option.field), bool):
            parser.add_argument(option.flag, action="store_true", default=None, help=option.help)
        else:
            parser.add_argument(option.flag, dest=option.field, choices=option.choices, help=option.help)


def add_server_options(parser: argparse.ArgumentParser) -> None:
    """``--host``, ``--port``, ``--api-key``, ``--cors-origin``, ``--served-model-name``, ``--tools-path``."""
    env = os.environ
    parser.add_argument(
        "--host",
        default=env.get(SERVE_ENV["host"], "127.0.0.1"),
        help="address to listen on (default 127.0.0.1; anything else without --api-key prints a warning)",
    )
    parser.add_argument(
        "--port", type=int, default=int(env.get(SERVE_ENV["port"], "8000")), help="default 8000"
    )
    parser.add_argument(
        "--api-key",
        dest="server_api_key",
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


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m workbench.server``."""
    parser = argparse.ArgumentParser(
        prog="python -m workbench serve", description="Serve the model over an OpenAI-compatible API."
    )
    add_model_spec_options(parser)
    add_server_options(parser)
    return parser


def is_loopback(host: str) -> bool:
    """Whether an address to listen on is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run_serve(args: argparse.Namespace, err: TextIO | None = None) -> int:
    """Start the server and block until it is stopped (Ctrl-C).

    Returns:
        The exit status: 0 after a clean stop, 1 if the server could not start.
    """
    import uvicorn

    from workbench.server.app import create_app
    from workbench.shared import shared_model

    err = err or sys.stderr
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    fields = {
        o.field: getattr(args, o.field, None) for o in SPEC_OPTIONS if o.field not in ("source", "api_key")
    }
    spec = ModelSpec.from_env(getattr(args, "source", None) or getattr(args, "model", None), **fields)
    if not args.server_api_key and not is_loopback(args.host):
        print(
            f"[workbench] WARNING: listening on {args.host} without --api-key: anyone who can reach this "
            "machine can use the model. Pass --api-key KEY (or set WORKBENCH_SERVE_API_KEY).",
            file=err,
            flush=True,
        )
    registry = None
    if args.tools_path:
        from tools import default_registry

        registry = default_registry(args.tools_path)
    app = create_app(
        shared_model(spec),
        model_id=args.served_model_name,
        api_key=args.server_api_key,
        cors_origins=args.cors_origin,
        registry=registry,
    )
    print(f"[workbench] serving {spec.label} on http://{args.host}:{args.port}/v1", file=err, flush=True)
    try:
        uvicorn.run(app, host=args.host, port=args.port, access_log=False, log_level="info")
    except (OSError, SystemExit) as exc:
        print(f"[workbench] error: the server could not start: {exc}", file=err, flush=True)
        return 1
    return 0
