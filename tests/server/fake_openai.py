"""A small scripted OpenAI-compatible server for the unit tests of the remote backend's adaptation.

It answers ``GET /v1/models`` with one model and each ``POST /v1/chat/completions`` with what a rule
function returns for the request's body, streamed as server-sent events; every body is kept in
:attr:`FakeOpenAI.requests`. The real servers (llama-cpp-python's, the workbench's own) are tested in
``test_remote_servers.py``; this one plays the deviations of servers that cannot be installed here.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


def sse_chunk(choice: dict[str, Any]) -> bytes:
    """One ``chat.completion.chunk`` holding ``choice``, as a server-sent event."""
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m", "choices": [choice]}
    return f"data: {json.dumps(chunk)}\n\n".encode()


@dataclass
class Reply:
    """One answer: an error (``status`` >= 400 with ``error``), or streamed text and calls.

    Attributes:
        text: Content pieces, streamed one per event.
        calls: ``(name, arguments)`` of each tool call; ``arguments`` is sent as it is (OpenAI sends a string
            of JSON; some servers send an object or a number).
        status: The HTTP status.
        error: The error message of a 4xx/5xx answer.
        finish_reason: Sent with the last event.
    """

    text: list[str] = field(default_factory=list)
    calls: list[tuple[str, Any]] = field(default_factory=list)
    status: int = 200
    error: str = ""
    finish_reason: str = "stop"


Rule = Callable[[dict[str, Any]], Reply]


class FakeOpenAI:
    """Serve ``rule`` on a loopback port (see the module's notes); ``url`` ends in ``/v1``."""

    def __init__(self, rule: Rule) -> None:
        outer = self
        self.rule = rule
        self.requests: list[dict[str, Any]] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                body = {
                    "object": "list",
                    "data": [{"id": "m", "object": "model", "created": 0, "owned_by": "x"}],
                }
                outer._send(self, 200, body)

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = json.loads(raw)
                outer.requests.append(body)
                outer._answer(self, outer.rule(body))

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> FakeOpenAI:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _send(handler: Any, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _answer(self, handler: Any, reply: Reply) -> None:
        if reply.status >= 400:
            self._send(
                handler, reply.status, {"error": {"message": reply.error, "type": "invalid_request_error"}}
            )
            return
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.end_headers()
        deltas: list[dict[str, Any]] = [{"content": piece} for piece in reply.text]
        for index, (name, arguments) in enumerate(reply.calls):
            deltas.append(
                {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": f"call_{index}",
                            "type": "function",
                            "function": {"name": name, "arguments": arguments},
                        }
                    ]
                }
            )
        events: list[dict[str, Any]] = [{"index": 0, "delta": d, "finish_reason": None} for d in deltas]
        events.append({"index": 0, "delta": {}, "finish_reason": reply.finish_reason})
        for choice in events:
            handler.wfile.write(sse_chunk(choice))
        handler.wfile.write(b"data: [DONE]\n\n")
        handler.wfile.flush()


class SlowStory(FakeOpenAI):
    """A server that streams ``words`` one every ``delay_s`` seconds, whatever is asked (a long answer)."""

    def __init__(self, words: list[str], delay_s: float = 0.05) -> None:
        self.words = words
        self.delay_s = delay_s
        super().__init__(lambda body: Reply())

    def _answer(self, handler: Any, reply: Reply) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.end_headers()
        try:
            for word in self.words:
                choice = {"index": 0, "delta": {"content": word}, "finish_reason": None}
                handler.wfile.write(sse_chunk(choice))
                handler.wfile.flush()
                time.sleep(self.delay_s)
            end = {"index": 0, "delta": {}, "finish_reason": "stop"}
            handler.wfile.write(sse_chunk(end) + b"data: [DONE]\n\n")
        except OSError:  # the client went away (killed)
            pass
