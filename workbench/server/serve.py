"""Running the API server with uvicorn (the ``serve`` command's options live in :mod:`workbench.cli.serve`)."""

from __future__ import annotations

import ipaddress
import logging
import os
import sys
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

from workbench.models.spec import ModelSpec

if TYPE_CHECKING:
    import uvicorn

#: Seconds a client has to send a request's headers once it connected (or once its last answer ended).
HEADER_TIMEOUT_S = 10.0
#: Seconds running requests get to finish when the server is stopped (SIGTERM, Ctrl-C).
SHUTDOWN_GRACE_S = 2


def uvicorn_config(
    app: Any, host: str, port: int, *, header_timeout_s: float = HEADER_TIMEOUT_S, log_level: str = "info"
) -> uvicorn.Config:
    """The uvicorn settings of the API: headers due within ``header_timeout_s``, a short shutdown grace.

    uvicorn itself waits for a request's headers forever (a client sending them byte by byte holds a
    connection, and a slot of the server, as long as it likes); the request body has its own deadline
    in the app (:data:`workbench.server.app.BODY_TIMEOUT_S`).
    """
    import uvicorn

    protocol = type("DeadlineH11Protocol", (_deadline_protocol(),), {"header_timeout_s": header_timeout_s})
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol,
        access_log=False,
        log_level=log_level,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
    )


def _deadline_protocol() -> type:
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class DeadlineProtocol(H11Protocol):
        """uvicorn's HTTP/1.1 protocol, closing a connection whose headers are not complete in time."""

        header_timeout_s = HEADER_TIMEOUT_S

        answered = 0  # responses sent on this connection

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm_header_deadline()

        def on_response_complete(self) -> None:
            self.answered += 1
            super().on_response_complete()
            self._arm_header_deadline()

        def _arm_header_deadline(self) -> None:
            self.loop.call_later(self.header_timeout_s, self._header_deadline, self.answered)

        def _header_deadline(self, answered: int) -> None:
            # Still waiting for the headers of the same request: the client is too slow (or idle).
            waiting = self.conn.their_state is h11.IDLE and self.answered == answered
            if waiting and not self.transport.is_closing():
                self.transport.close()

    return DeadlineProtocol


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
    code: bool = False,
    code_timeout: float = 30.0,
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
    from workbench.server.mcp import CodeKernels, build_server
    from workbench.server.mcp_http import http_session_key, mount_http

    kernels = CodeKernels() if code else None
    mcp_server = build_server(
        registry, code=code, code_timeout=code_timeout, kernels=kernels, session_key=http_session_key
    )
    mount_http(app, mcp_server, host=host, cors_origins=cors_origins, kernels=kernels)
    with_code = " with sandboxed python per MCP session" if code else ""
    print(f"[workbench] MCP (Streamable HTTP) on http://{host}:{port}/mcp{with_code}", file=err, flush=True)
    print(f"[workbench] serving {spec.label} on http://{host}:{port}/v1", file=err, flush=True)
    # On SIGTERM uvicorn gives running requests SHUTDOWN_GRACE_S, then raises the signal again, which
    # ends the process; on Ctrl-C it raises KeyboardInterrupt here.
    server = uvicorn.Server(uvicorn_config(app, host, port))
    try:
        server.run()
    except (OSError, SystemExit) as exc:  # uvicorn exits when it cannot bind
        print(f"[workbench] error: the server could not start: {exc}", file=err, flush=True)
        return 1
    except KeyboardInterrupt:
        _exit_now_if_busy(130, err)
        raise
    # uvicorn reports a port it could not bind by leaving started False.
    status = 0 if server.started else 1
    _exit_now_if_busy(status, err)
    return status


def _exit_now_if_busy(status: int, err: TextIO) -> None:
    """Exit at once if a worker still runs a generation or reads a prompt (it stops at its next token).

    Waiting for it could take long; and exiting normally would free the model under it.
    """
    if any(t.name.startswith("workbench-") and t.is_alive() for t in threading.enumerate()):
        print("[workbench] stopped (a generation was cut short)", file=err, flush=True)
        sys.stdout.flush()
        os._exit(status)
