"""The Code page in Chromium: kernels follow their browser sessions, and Interrupt shows its outcome at once."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.page_actions import CELL_MS, kernels, open_code_page, run_cell, server_process, wait_until
from tests.e2e.streamlit_server import launch_streamlit

pytestmark = [pytest.mark.browser, pytest.mark.kernel]


def test_closed_tabs_free_their_kernels(browser: Any, tmp_path: Path) -> None:
    """Issue 11: closed tabs' kernels ran on for minutes and a fifth session was refused."""
    env = {
        "WORKBENCH_MODEL": "",
        "MODEL_PATH": "",
        "WORKBENCH_MAX_KERNELS": "2",
        "STREAMLIT_SERVER_DISCONNECTED_SESSION_TTL": "2",  # Streamlit's default is 120 s
    }
    with launch_streamlit(tmp_path / "server.log", env) as url:
        server = server_process(url)
        folders = []
        for number in range(3):  # one more session than the limit, one after another
            context = browser.new_context()
            page = context.new_page()
            page.set_default_timeout(60_000)
            open_code_page(page, url)
            run_cell(page, "import os\nprint('folder', os.getcwd())")
            output = page.get_by_text("folder /").first
            output.wait_for(timeout=CELL_MS)
            folders.append(Path(output.inner_text().split("folder ", 1)[1].strip()))
            assert folders[-1].is_dir()
            assert not page.get_by_text("kernels are in use").count()
            context.close()
            # Streamlit ends the session after its TTL; the session-scoped cache's hook frees the kernel.
            wait_until(lambda: not folders[-1].exists(), 60, f"session {number}'s work folder is still there")
            wait_until(
                lambda: kernels(server) <= 1, 60, f"{kernels(server)} kernels after session {number} closed"
            )
        assert kernels(server) <= 1  # at most the warm spare


def test_interrupt_shows_the_stopped_run_and_an_idle_kernel_at_once(page: Any, streamlit_server: str) -> None:
    """Issue 11: after Interrupt the page said "busy" and lacked the run until the next action."""
    open_code_page(page, streamlit_server)
    run_cell(page, "import time\ntime.sleep(100)")
    page.get_by_text("Running…").first.wait_for(timeout=CELL_MS)
    page.get_by_role("button", name="Interrupt").click()
    clicked = time.monotonic()
    sidebar = page.locator("[data-testid='stSidebar']")
    sidebar.get_by_text("Kernel: idle").wait_for(timeout=10_000)
    # The interrupted run is drawn (its traceback, or, when the interrupt landed before the sleep began,
    # its "In [n]" line: a loaded machine shows both) in the same rerun, not at the next action.
    panel = page.get_by_role("tabpanel")
    panel.get_by_text("KeyboardInterrupt").or_(panel.get_by_text("In [1]")).first.wait_for(timeout=10_000)
    assert time.monotonic() - clicked < 10
    assert not sidebar.get_by_text("Kernel: busy").count()
