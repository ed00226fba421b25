"""Running the API server for tests: in a thread of this process (sharing its model) or as a user does.

Only loopback addresses are used.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette

from tests.e2e.streamlit_server import free_port
from workbench.server.serve import HEADER_TIMEOUT_S, uvicorn_config

ROOT = Path(__file__).resolve().parents[2]
MODEL_ID = "SmolLM2-135M-Instruct"
SERVER_START_S = 240.0


@contextmanager
def server_thread(app: Starlette, *, header_timeout_s: float = HEADER_TIMEOUT_S) -> Iterator[str]:
    """Serve ``app`` with uvicorn as ``serve`` does, in a thread on a free loopback port; yield the base URL (``.../v1``)."""
    port = free_port()
    config = uvicorn_config(app, "127.0.0.1", port, header_timeout_s=header_timeout_s, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="test-api-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test API server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@contextmanager
def server_process(
    command: list[str], ready_url: str, log_path: Path, cwd: Path = ROOT, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command`` in ``cwd`` until ``ready_url`` answers 200; stop it at the end (if it is still alive).

    ``env`` defaults to this process's environment with ``PYTHONPATH`` set to the checkout.
    """
    environment = env if env is not None else {**os.environ, "PYTHONPATH": str(ROOT)}
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=cwd, env=environment, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + SERVER_START_S
            while http_json("GET", ready_url)[0] != 200:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{command[2]} did not become ready:\n{log_path.read_text(errors='replace')}"
                    )
                time.sleep(0.1)  # a server, a gateway: ready a few seconds after the start, seen at once
            yield process
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


@contextmanager
def serve_process(
    log_path: Path, *args: str, env: dict[str, str] | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Run ``python -m workbench.server`` on a free loopback port until ``/health`` is 200; yield its URL and process."""
    port = free_port()
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    for name in ("WORKBENCH_MODEL", "MODEL_PATH", "WORKBENCH_SERVE_API_KEY"):
        environment.pop(name, None)
    environment.update(env or {})
    command = [sys.executable, "-m", "workbench.server", "--host", "127.0.0.1", "--port", str(port), *args]
    base = f"http://127.0.0.1:{port}"
    with server_process(command, f"{base}/health", log_path, env=environment) as process:
        yield f"{base}/v1", process


def http_json(
    method: str, url: str, body: bytes | dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    """Send a raw request (no client-side checks, no retries); return the status and the decoded JSON body.

    The status is 0 when nothing answers.
    """
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            return error.code, json.loads(raw)
        except json.JSONDecodeError:
            return error.code, raw.decode(errors="replace")
    except OSError:
        return 0, None


class MisbehavingServer:
    """A loopback HTTP server that answers like a broken OpenAI server (for the failure cases).

    Args:
        behaviour: ``html`` (a web page for every path), ``dies`` (lists a model, then cuts a streamed
            answer after two pieces), or ``hangs`` (lists a model, then never answers a completion).
    """

    def __init__(self, behaviour: str) -> None:
        import http.server

        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                outer._answer(self)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                outer._answer(self)

        self.behaviour = behaviour
        self.release = threading.Event()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        """Stop serving."""
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def _answer(self, handler: Any) -> None:
        if self.behaviour == "html":
            self._send(handler, 200, b"<html><body>Welcome to nginx!</body></html>", "text/html")
        elif handler.path.endswith("/models"):
            body = {"object": "list", "data": [{"id": "m", "object": "model", "created": 0, "owned_by": "x"}]}
            self._send(handler, 200, json.dumps(body).encode(), "application/json")
        elif self.behaviour == "hangs":
            self.release.wait(60)
        else:  # dies: two pieces of a streamed answer, then the connection is cut
            handler.send_response(200)
            handler.send_header("Content-Type", "text/event-stream")
            handler.end_headers()
            for piece in ("Hello", " there"):
                chunk = {
                    "id": "c",
                    "object": "chat.completion.chunk",
                    "created": 0,
                    "model": "m",
                    "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
                }
                handler.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                handler.wfile.flush()
            handler.wfile.write(b'data: {"id": "c", "choi')  # half an event, then the end
            handler.wfile.flush()
            handler.close_connection = True
            handler.connection.shutdown(2)

    @staticmethod
    def _send(handler: Any, status: int, body: bytes, kind: str) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", kind)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
