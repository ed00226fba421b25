"""Workbench's MCP server over Streamable HTTP at ``/mcp`` of ``serve``: the Origin guard, kernels per session.

The SDK's :class:`StreamableHTTPSessionManager` serves the server built by
:func:`workbench.server.mcp.build_server`. With ``serve --code`` the ``python`` tool keeps a kernel per
MCP session, keyed by the ``Mcp-Session-Id`` the session manager gives each client at ``initialize``
(the 2025 protocol's stateful mode). The 2026-07-28 protocol has no sessions over HTTP (each request
stands alone, with no session id), so its clients are not offered the code tools, and a call to them
is refused with a message saying why and what to use instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mcp.server.lowlevel import Server

    from workbench.server.mcp import CodeKernels

HTTP_SESSION_PREFIX = "mcp-http-"
"""Kernel keys over HTTP: this, then the ``Mcp-Session-Id`` the SDK's session manager gave the client."""


def http_session_key(ctx: Any) -> str | None:
    """The kernel key of an HTTP request: from its ``Mcp-Session-Id``, or None if it has none.

    Stateful Streamable HTTP (the 2025 protocol) gives every session an id; the 2026-07-28 protocol has
    no sessions over HTTP.

    The id is the session manager's own (a random UUID it gave the client at ``initialize``, and checks
    on every request), so one client cannot reach another's kernel.
    """
    request = getattr(ctx, "request", None)
    headers = getattr(request, "headers", None)
    session = headers.get("mcp-session-id") if headers is not None else None
    return f"{HTTP_SESSION_PREFIX}{session}" if session else None


def mount_http(
    app: Any,
    server: Server[Any],
    *,
    host: str,
    cors_origins: Sequence[str] = (),
    kernels: CodeKernels | None = None,
) -> None:
    """Serve ``server`` over Streamable HTTP at ``/mcp`` of the API app ``app`` (a Starlette app).

    With ``kernels`` (``serve --code``: the server was built with ``session_key=http_session_key``),
    a session's kernel is shut down when its client ends the session (``DELETE /mcp``); a session the
    client leaves without ending it has its kernel stopped after the pool's idle time.

    The route sits behind the app's own middleware, so ``--api-key`` guards it as every other route.
    The ``Origin`` header is checked as the spec asks (against DNS rebinding): a browser page may call
    only from a loopback origin or one given by ``--cors-origin``; clients that send no ``Origin`` (every
    non-browser client) pass. On loopback the SDK also checks the ``Host`` header.
    """
    from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
    from mcp.server.transport_security import TransportSecuritySettings
    from starlette.routing import Route

    origins = {o.rstrip("/") for o in cors_origins if o != "*"}
    loopback = host in ("127.0.0.1", "localhost", "::1")
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=loopback,
        allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost"],
        allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*", *origins],
    )
    manager = StreamableHTTPSessionManager(app=server, security_settings=security)
    inner = StreamableHTTPASGIApp(manager)

    app.router.routes.append(
        Route("/mcp", endpoint=_OriginGuard(inner, origins, kernels), methods=["GET", "POST", "DELETE"])
    )
    previous = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(outer: Any) -> AsyncIterator[Any]:
        async with manager.run(), previous(outer) as state:
            yield state

    app.router.lifespan_context = lifespan


class _OriginGuard:
    """An ASGI app (a class, so Starlette's Route passes it the raw scope) refusing foreign browser origins."""

    def __init__(self, inner: Any, origins: set[str], kernels: CodeKernels | None = None) -> None:
        self.inner, self.origins, self.kernels = inner, origins, kernels

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        import anyio
        from starlette.responses import PlainTextResponse

        headers = dict(scope.get("headers") or [])
        origin = headers.get(b"origin", b"").decode("latin-1")
        if origin and not allowed_origin(origin, self.origins):
            refusal = f"Origin {origin} may not call this MCP server; start serve with --cors-origin {origin} to allow it."
            await PlainTextResponse(refusal, status_code=403)(scope, receive, send)
            return
        statuses: list[int] = []

        async def sent(message: Any) -> None:
            if message.get("type") == "http.response.start":
                statuses.append(int(message["status"]))
            await send(message)

        await self.inner(scope, receive, sent)
        session = headers.get(b"mcp-session-id", b"").decode("latin-1")
        if self.kernels is not None and scope.get("method") == "DELETE" and session and statuses[:1] == [200]:
            # The session manager ended the session (it checked the id and its owner): free its kernel.
            await anyio.to_thread.run_sync(self.kernels.release, f"{HTTP_SESSION_PREFIX}{session}")


def allowed_origin(origin: str, extra: set[str]) -> bool:
    """Whether a browser ``Origin`` may call: a loopback origin (any port) or one of ``extra``."""
    from urllib.parse import urlsplit

    if origin.rstrip("/") in extra:
        return True
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.hostname in ("127.0.0.1", "localhost", "::1")
