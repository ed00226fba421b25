"""What a user does on any page of the app, for the browser tests: send a message, change sampling, wait."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import psutil

from tests.e2e.streamlit_server import CHAT_INPUT, NAV_LINKS, open_app

STOP_BUTTON = "[data-testid='stChatInputStopButton']"


def set_sampling(page: Any, *, temperature: float | None = None, max_new_tokens: int | None = None) -> None:
    """Change the sidebar's sampling controls the way a user does (keyboard on the slider, typing)."""
    sidebar = page.locator("[data-testid='stSidebar']")
    expander = sidebar.locator("[data-testid='stExpander']").filter(has_text="Sampling").locator("details")
    if expander.get_attribute("open") is None:
        sidebar.get_by_text("Sampling", exact=True).click()
    if temperature == 0:
        slider = sidebar.get_by_role("slider", name="Temperature")
        slider.focus()
        slider.press("Home")
        sidebar.locator("[data-testid='stSliderThumbValue']").get_by_text("0.00").wait_for()
    if max_new_tokens is not None:
        box = sidebar.get_by_label("Max new tokens")
        box.fill(str(max_new_tokens))
        box.press("Enter")
    wait_idle(page)


def wait_idle(page: Any, timeout_s: float = 240) -> None:
    """Wait until the script run has finished (no Stop button, the status widget gone)."""
    time.sleep(0.5)  # let the rerun a widget change asked for begin
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        running = page.locator(STOP_BUTTON).count() or page.get_by_text("Running...").count()
        if not running:
            return
        time.sleep(0.1)
    raise AssertionError(f"the app was still running after {timeout_s} s")


def attach(page: Any, path: Any) -> None:
    """Put a file into the chat input (its paperclip) and wait until it shows there, staged."""
    page.locator("[data-testid='stChatInput'] input[type='file']").set_input_files(str(path))
    page.locator("[data-testid='stChatInput']").get_by_text(str(getattr(path, "name", path))).wait_for()


def send(page: Any, text: str) -> None:
    """Type ``text`` into the chat input and press Enter."""
    page.fill(CHAT_INPUT, text)
    page.press(CHAT_INPUT, "Enter")


# --- the Code page ---------------------------------------------------------------------------------
# Kernel start plus the first matplotlib import (its font cache) on a busy two-core machine.
CELL_MS = 90_000
# The embedded model writes the code, the kernel runs it, then the model answers: slow under load.
TURN_S = 240
SCRIPT_STATE = "data-test-script-state"


def wait_script_done(page: Any, timeout_s: float = TURN_S) -> None:
    """Wait until the script run has finished, by the app's own script state.

    The Code page's chat input has no Stop button and the ``minimal`` toolbar shows no "Running..."
    text, so ``wait_idle`` from the chat tests cannot see a run here.
    """
    time.sleep(0.5)  # let the rerun a click or a key asked for begin
    app = page.locator("[data-testid='stApp']")
    deadline, idle_since = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        if app.get_attribute(SCRIPT_STATE) == "notRunning":
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since > 0.5:
                return
        else:
            idle_since = None
        time.sleep(0.1)
    raise AssertionError(f"the script was still running after {timeout_s} s")


def open_code_page(page: Any, url: str) -> None:
    """Open the app and go to the Code interpreter page through the sidebar, as a user does.

    ``test_deep_links.py`` opens ``/code`` directly.
    """
    open_app(page, url)
    page.locator(NAV_LINKS).get_by_text("Code interpreter", exact=True).click()
    page.get_by_role("heading", name="Code interpreter").wait_for()
    page.get_by_role("tab", name="Your cells").wait_for()
    wait_script_done(page)


def server_process(url: str) -> psutil.Process:
    """The ``streamlit run`` process this test started (other tests' servers may still run beside it)."""
    port = url.rsplit(":", 1)[1]
    for process in psutil.Process(os.getpid()).children(recursive=True):
        try:
            command = process.cmdline()
        except psutil.Error:
            continue
        if "streamlit" in " ".join(command) and port in command:
            return process
    raise AssertionError(f"no streamlit server on port {port} among this test's processes")


def kernels(server: psutil.Process) -> int:
    """Sandboxed kernels of one server: its outermost bwrap processes."""
    count = 0
    for process in server.children(recursive=True):
        try:
            if process.name() == "bwrap" and process.parent().name() != "bwrap":
                count += 1
        except psutil.Error:
            continue
    return count


def wait_until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.25)


def run_cell(page: Any, code: str) -> None:
    page.get_by_role("tab", name="Your cells").click()
    editor = page.get_by_role("tabpanel").get_by_label("Python")
    editor.fill(code)
    editor.press("Control+Enter")
    wait_script_done(page)
    page.get_by_role("button", name="Run", exact=True).click()
