"""Starting the app as a user does (``streamlit run main.py``) and opening it in a browser page.

Used by the fixtures in ``conftest.py`` and importable by browser tests of every page.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("WORKBENCH_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SERVER_START_S = 120.0
# Long enough for the model to load in a fresh server on a busy two-core machine.
APP_READY_MS = 180_000
CHAT_INPUT = "textarea[data-testid='stChatInputTextArea']"
# The app's navigation: page links the login gate draws at the top of the sidebar (pages/_login.py).
NAV_LINKS = "[data-testid='stSidebar'] [data-testid='stPageLink']"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@contextmanager
def launch_streamlit(
    log_path: Path, env: dict[str, str] | None = None, port: int | None = None
) -> Iterator[str]:
    """Run ``streamlit run main.py`` headless on a free port; yield its URL, stop it afterwards.

    Args:
        log_path: Where the server's output goes (shown if it fails to start).
        env: Extra environment variables for the server (``WORKBENCH_MODEL`` and the like).
        port: The port to listen on (a restart on the same one lets open tabs reconnect); a free one by default.
    """
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable, "-m", "streamlit", "run", "main.py",
        "--server.headless", "true",
        "--server.port", str(port),
        "--server.address", "127.0.0.1",
        "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    with log_path.open("w") as log:
        server = subprocess.Popen(
            command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
    try:
        deadline = time.monotonic() + SERVER_START_S
        while not _healthy(url):
            if server.poll() is not None or time.monotonic() > deadline:
                output = log_path.read_text()[-3000:]
                pytest.fail(f"streamlit did not start (exit code {server.poll()}):\n{output}")
            time.sleep(0.25)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def open_app(page: Any, url: str, path: str = "", ready: str = CHAT_INPUT) -> Any:
    """Open the app and wait until the page is usable (the model loaded).

    Args:
        page: A Playwright page.
        url: The server's base URL.
        path: A page's URL path (``""`` for Chat, or as ``st.Page`` names it, e.g. ``tool``).
        ready: A CSS selector that is visible once the page is ready; the chat input by default.
    """
    page.goto(f"{url}/{path}")
    page.wait_for_selector(ready, state="visible", timeout=APP_READY_MS)
    return page
