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

ROOT = Path(__file__).resolve().parents[2]
MODEL_ID = "SmolLM2-135M-Instruct"
SERVER_START_S = 240.0


@contextmanager
def server_thread(app: Starlette) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a thread on a free loopback port; yield the base URL (``.../v1``)."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
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
def serve_process(log_path: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Run ``python -m workbench.server`` on a free loopback port until ``/health`` is 200; yield its URL and process."""
    port = free_port()
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    for name in ("WORKBENCH_MODEL", "MODEL_PATH", "WORKBENCH_SERVE_API_KEY"):
        environment.pop(name, None)
    environment.update(env or {})
    command = [sys.executable, "-m", "workbench.server", "--host", "127.0.0.1", "--port", str(port), *args]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + SERVER_START_S
            while http_json("GET", f"{base}/health")[0] != 200:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"serve did not become ready:\n{log_path.read_text(errors='replace')}")
                time.sleep(0.5)
            yield f"{base}/v1", process
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def http_json(
    method: str, url: str, body: bytes | dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    """Send a raw request (no client-side checks, no retries); return the status and the decoded JSON body.

    The status is 0 when nothing answers.
    """
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})})
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
