"""Running the API server with uvicorn (the ``serve`` command's options live in :mod:`workbench.cli.serve`)."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence
from typing import TextIO

from workbench.models.spec import ModelSpec


def is_loopback(host: str) -> bool:
    """Whether an address to listen on is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    spec: ModelSpec,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    api_key: str | None = None,
    cors_origins: Sequence[str] = (),
    model_id: str | None = None,
    tools_paths: Sequence[str] = (),
    mcp_config: str | None = None,
    only_tools: str | None = None,
    err: TextIO,
) -> int:
    """Serve the shared model of ``spec`` until stopped (Ctrl-C); the model loads in the background.

    Returns:
        The exit status: 0 after a clean stop, 1 if the server could not start (the port is taken).
    """
    import uvicorn

    from workbench.server.app import create_app
    from workbench.shared import shared_model

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    if not api_key and not is_loopback(host):
        print(
            f"[workbench] WARNING: listening on {host} without --api-key: anyone who can reach this machine "
            "can use the model. Pass --api-key KEY (or set WORKBENCH_SERVE_API_KEY).",
            file=err,
            flush=True,
        )
    from workbench.server.mcp_serve import serve_registry

    registry = serve_registry(tools_paths, mcp_config, only_tools, err)
    app = create_app(
        shared_model(spec), model_id=model_id, api_key=api_key, cors_origins=cors_origins, registry=registry
    )
    from workbench.server.mcp import build_server, mount_http

    mount_http(app, build_server(registry), host=host, cors_origins=cors_origins)
    print(f"[workbench] MCP (Streamable HTTP) on http://{host}:{port}/mcp", file=err, flush=True)
    print(f"[workbench] serving {spec.label} on http://{host}:{port}/v1", file=err, flush=True)
    config = uvicorn.Config(app, host=host, port=port, access_log=False, log_level="info")
    server = uvicorn.Server(config)
    try:
        server.run()
    except (OSError, SystemExit) as exc:  # uvicorn exits when it cannot bind
        print(f"[workbench] error: the server could not start: {exc}", file=err, flush=True)
        return 1
    # uvicorn reports a port it could not bind by leaving started False.
    return 0 if server.started else 1
