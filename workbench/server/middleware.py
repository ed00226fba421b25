"""ASGI middleware of the API: the API key check and one log line per request."""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Sequence
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from workbench.server.errors import error_body

logger = logging.getLogger("workbench.server")


class ApiKeyMiddleware:
    """Refuses requests without ``Authorization: Bearer <key>`` (401), comparing in constant time.

    Args:
        app: The wrapped app.
        api_key: The key clients must send.
        open_paths: Paths reachable without a key (``/health``).
    """

    def __init__(self, app: ASGIApp, api_key: str, open_paths: Sequence[str] = ()) -> None:
        self.app = app
        self._key = api_key.encode()
        self.open_paths = tuple(open_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the key, then pass the request on (or answer 401)."""
        if scope["type"] != "http" or scope["path"] in self.open_paths or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        given = headers.get(b"authorization", b"")
        scheme, _, token = given.partition(b" ")
        if not (scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(), self._key)):
            message = (
                "Missing API key: send 'Authorization: Bearer <key>'."
                if not given
                else "Wrong API key: send the key the server was started with (--api-key)."
            )
            body = json.dumps(error_body(401, message, code="invalid_api_key")).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        (b"www-authenticate", b"Bearer"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


class RequestLogMiddleware:
    """Logs one line per request when its response ends: method, path, status, tokens, seconds.

    Handlers put the usage in ``request.state.usage`` (``scope["state"]["usage"]``).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, then log its line."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: list[int] = []

        async def send_logged(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(int(message["status"]))
            await send(message)

        try:
            await self.app(scope, receive, send_logged)
        finally:
            usage: Any = scope.get("state", {}).get("usage")
            tokens = f" tokens={usage['prompt_tokens']}+{usage['completion_tokens']}" if usage else ""
            code = status[0] if status else "disconnected"
            seconds = time.perf_counter() - started
            logger.info("%s %s %s%s %.2fs", scope["method"], scope["path"], code, tokens, seconds)
