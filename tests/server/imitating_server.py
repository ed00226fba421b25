"""``python -m tests.server.imitating_server --port P --imitate RULES``: the workbench's own server, playing another.

The real ``serve`` app on the embedded model, behind a thin ASGI front that bends each chat request the
way another server would (a test switch; the server itself is unchanged):

- ``ignore-tool-choice``: ``tool_choice`` is dropped, as Ollama ignores it;
- ``refuse-json-schema``: ``response_format: json_schema`` is answered with a 500 naming it, as
  llama-cpp-python's server does;
- ``refuse-null-content``: a message whose ``content`` is null is answered with a 500 naming it, as
  llama-cpp-python's server does.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

IMITATIONS = ("ignore-tool-choice", "refuse-json-schema", "refuse-null-content")

Scope = dict[str, Any]


class Imitation:
    """An ASGI front that applies the ``rules`` to ``POST .../chat/completions`` before ``app`` sees it."""

    def __init__(self, app: Any, rules: set[str]) -> None:
        unknown = rules - set(IMITATIONS)
        if unknown:
            raise SystemExit(f"unknown imitation(s) {sorted(unknown)}; use {', '.join(IMITATIONS)}")
        self.app = app
        self.rules = rules

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or not scope["path"].endswith("/chat/completions")
        ):
            await self.app(scope, receive, send)
            return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        try:
            body = json.loads(raw)
        except json.JSONDecodeError:
            body = None
        refusal = self._refusal(body) if isinstance(body, dict) else None
        if refusal is not None:
            await _send_json(send, 500, {"error": {"message": refusal, "type": "internal_server_error"}})
            return
        if isinstance(body, dict) and "ignore-tool-choice" in self.rules:
            body.pop("tool_choice", None)
            raw = json.dumps(body).encode()
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return await receive()  # the client's disconnect, when it comes
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}

        await self.app(scope, replay, send)

    def _refusal(self, body: dict[str, Any]) -> str | None:
        response_format = body.get("response_format")
        if (
            "refuse-json-schema" in self.rules
            and isinstance(response_format, dict)
            and response_format.get("type") == "json_schema"
        ):
            return (
                "1 validation error for CreateChatCompletionRequest\nresponse_format.type\n  Input should be "
                "'text' or 'json_object'"
            )
        if "refuse-null-content" in self.rules:
            for number, message in enumerate(body.get("messages") or []):
                if isinstance(message, dict) and "content" in message and message["content"] is None:
                    return (
                        f"1 validation error for CreateChatCompletionRequest\nmessages.{number}.content\n  "
                        "Input should be a valid string"
                    )
        return None


async def _send_json(send: Any, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


def main() -> None:
    """Serve the embedded model on loopback with the imitations asked for."""
    import uvicorn

    from workbench.models.spec import ModelSpec
    from workbench.server.app import create_app
    from workbench.shared import shared_model

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--imitate", default=",".join(IMITATIONS), help="comma-separated: " + ", ".join(IMITATIONS)
    )
    args = parser.parse_args()
    rules = {rule.strip() for rule in args.imitate.split(",") if rule.strip()}
    app = Imitation(create_app(shared_model(ModelSpec(device="cpu"))), rules)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
