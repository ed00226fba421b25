"""The Tool page in real Chromium with real MCP servers.

``mcp-server-time`` from PyPI, configured ``"confirm": true``: its tools are listed with the server's
state, a call waits in its status block with Run and Skip, Run lets the server answer, Skip records that
the user skipped it. Our own server on the SDK (tests/mcp/misbehaving_server.py): its progress reports
show in the running call's status block, and Stop cancels the call on the server.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.page_actions import STOP_BUTTON, send, set_sampling, wait_idle
from tests.e2e.streamlit_server import launch_streamlit, open_app
from tests.mcp.conftest import misbehaving, server_venv, write_config

pytestmark = pytest.mark.browser

BUILTINS = ("calculator", "current_time", "random_number", "convert_units")
WAITING = "get_current_time: run this call?"
DONE = re.compile(r"Called get_current_time|get_current_time failed")


@pytest.fixture(scope="module")
def mcp_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server of the app whose MCP configuration holds mcp-server-time, confirming each call."""
    time_server = server_venv("mcp-server-time", "mcp-server-time")
    folder = tmp_path_factory.mktemp("mcp-app")
    entry = {"command": str(time_server), "args": ["--local-timezone", "UTC"], "confirm": True,
             "tools": ["get_current_time"]}  # fmt: skip
    config = write_config(folder / "mcp.json", {"time": entry})
    env = {"WORKBENCH_MODEL": "", "MODEL_PATH": "", "WORKBENCH_MCP_CONFIG": str(config),
           "WORKBENCH_TOOLS_PATH": "", "WORKBENCH_DATA_DIR": str(folder / "data")}  # fmt: skip
    with launch_streamlit(folder / "server.log", env) as url:
        yield url


@pytest.fixture(scope="module")
def progress_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A server of the app with our own MCP server's two slow tools (no arguments, so calls are exact)."""
    folder = tmp_path_factory.mktemp("mcp-progress")
    marker = folder / "cancelled"
    entry = misbehaving(tools=["three_steps", "wait_for_cancel"], env={"CANCEL_MARKER": str(marker)})
    config = write_config(folder / "mcp.json", {"own": entry})
    env = {"WORKBENCH_MODEL": "", "MODEL_PATH": "", "WORKBENCH_MCP_CONFIG": str(config),
           "WORKBENCH_TOOLS_PATH": "", "WORKBENCH_DATA_DIR": str(folder / "data")}  # fmt: skip
    with launch_streamlit(folder / "server.log", env) as url:
        yield url, marker


def _prepare(page: Any, url: str, tools: int, off: tuple[str, ...]) -> None:
    """Open the Tool page, wait for the MCP server, switch tools off, greedy, required, one round."""
    open_app(page, url, "tool")
    ready = f"ready with {tools} tool{'s' if tools > 1 else ''}"
    page.get_by_text(ready).wait_for(state="attached", timeout=120_000)
    wait_idle(page)
    page.locator("summary").filter(has=page.get_by_text("Tools", exact=True)).first.click()
    page.get_by_text(ready).wait_for()
    for name in off:
        _switch_off(page, name)
    set_sampling(page, temperature=0, max_new_tokens=40)
    sidebar = page.locator("[data-testid='stSidebar']")
    sidebar.locator("[data-testid='stSelectbox']").filter(has_text="Tool choice").click()
    page.get_by_role("option", name="required").click()
    wait_idle(page)
    rounds = sidebar.get_by_role("spinbutton", name="Max rounds")
    rounds.fill("1")
    rounds.press("Enter")
    wait_idle(page)


def _switch_off(page: Any, name: str) -> None:
    switch = page.locator(f"input[aria-label='{name}']")
    assert switch.is_checked(), name
    page.get_by_text(name, exact=True).click()  # the toggle's label
    wait_idle(page)
    assert not switch.is_checked(), name


def _ask(page: Any, question: str) -> Any:
    """Send ``question``; return the status block of the call waiting for Run or Skip."""
    send(page, question)
    wait_idle(page)
    block = page.locator("[data-testid='stExpander']").filter(
        has=page.locator("summary").filter(has_text=WAITING)
    )
    block.last.wait_for()
    block.last.get_by_role("button", name="Run").wait_for()  # drawn by the rerun that follows the pause
    assert block.last.get_by_role("button", name="Skip").is_visible()
    return block.last


def _result_of(page: Any, index: int, pattern: re.Pattern[str] = DONE) -> tuple[str, str]:
    """The label and result text of the ``index``-th finished call block."""
    done = page.locator("summary").filter(has_text=pattern)
    block = page.locator("[data-testid='stExpander']").filter(has=done).nth(index)
    block.wait_for()
    label = block.locator("summary").inner_text()
    if block.locator("details").get_attribute("open") is None:
        block.locator("summary").click()
    shown = block.locator("[data-testid='stCode'], [data-testid='stAlert']").last
    return label, shown.inner_text()


def test_run_and_skip_in_the_status_block(page: Any, mcp_app: str) -> None:
    _prepare(page, mcp_app, 1, BUILTINS)
    page.get_by_text("Source: mcp:time").wait_for(state="attached")

    block = _ask(page, "What time is it in Tokyo?")
    block.get_by_role("button", name="Run").click()
    wait_idle(page)
    label, text = _result_of(page, 0)
    # The server's own answer: a time, or its error for a zone the model made up; never a refusal.
    assert "skipped" not in text and "confirmation" not in text, (label, text)
    assert ("timezone" in text) if "Called get_current_time" in label else ("get_current_time" in text), text

    block = _ask(page, "And in Paris?")
    block.get_by_role("button", name="Skip").click()
    wait_idle(page)
    label, text = _result_of(page, 1)
    assert "get_current_time failed" in label
    assert "The user skipped this call to 'get_current_time'" in text
    assert not page.locator("[data-testid='stException']").count()


def test_progress_shows_in_the_block_and_stop_cancels_on_the_server(
    page: Any, progress_app: tuple[str, Path]
) -> None:
    url, marker = progress_app
    _prepare(page, url, 2, (*BUILTINS, "wait_for_cancel"))
    send(page, "Take three steps.")
    running = page.locator("summary").filter(has_text="Calling three_steps")
    running.filter(has_text="step 1 of 3").or_(running.filter(has_text="step 2 of 3")).first.wait_for()
    page.locator("[data-testid='stProgress']").first.wait_for(
        timeout=10_000
    )  # the server gave a total: a bar
    wait_idle(page)
    label, text = _result_of(page, 0, re.compile("Called three_steps"))
    assert text == "three steps taken", (label, text)

    _switch_off(page, "three_steps")
    page.get_by_text("wait_for_cancel", exact=True).click()  # on again
    wait_idle(page)
    send(page, "Wait.")
    page.locator("summary").filter(has_text="Calling wait_for_cancel").filter(has_text="waiting 2").wait_for()
    page.locator(STOP_BUTTON).click()
    wait_idle(page)
    deadline = time.monotonic() + 20
    while not marker.exists():  # the server's handler was cancelled: notifications/cancelled reached it
        assert time.monotonic() < deadline, "the server never heard the cancel"
        time.sleep(0.2)
    assert marker.read_text() == "cancelled"
    page.reload()  # the stopped call's observation is kept (and saved)
    label, text = _result_of(page, 0, re.compile("wait_for_cancel failed"))
    assert "The user stopped the call to 'wait_for_cancel'" in text, text
