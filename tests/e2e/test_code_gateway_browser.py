"""The Code page in Chromium with its kernels on a real Jupyter Kernel Gateway (issue 20).

The page says where the code runs and that the local sandbox's limits do not apply; cells, plots, the
files panel, Interrupt and Restart work; and when the gateway goes away the run says so and the page
keeps working.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.page_actions import CELL_MS, kernels, open_code_page, run_cell, server_process
from tests.e2e.streamlit_server import launch_streamlit
from tests.kernel.kernel_gateway import RunningGateway, run_kernel_gateway

pytestmark = [pytest.mark.browser, pytest.mark.kernel]


def test_the_code_page_runs_on_a_kernel_gateway(browser: Any, tmp_path: Path) -> None:
    with run_kernel_gateway(tmp_path / "gateway") as gateway:
        env = {
            "WORKBENCH_MODEL": "",
            "MODEL_PATH": "",
            "WORKBENCH_KERNEL_GATEWAY": gateway.config.url,
            "WORKBENCH_KERNEL_GATEWAY_TOKEN": gateway.config.token,
            "WORKBENCH_KERNEL_GATEWAY_KERNEL": gateway.config.kernel_name,
        }
        with launch_streamlit(tmp_path / "server.log", env) as url:
            page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            page.set_default_timeout(60_000)
            try:
                open_code_page(page, url)
                sidebar = page.locator("[data-testid='stSidebar']")
                sidebar.get_by_text(f"on gateway {gateway.config.url}").first.wait_for()
                sidebar.get_by_text("sandbox limits").first.wait_for()
                assert not sidebar.get_by_text("NOT sandboxed").count()

                run_cell(
                    page,
                    "import os\nprint('limit', os.environ['KERNEL_MEMORY_LIMIT'])\n"
                    "open('result.csv', 'w').write('a,b\\n1,2\\n')\n"
                    "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.show()",
                )
                panel = page.get_by_role("tabpanel")
                panel.get_by_text(f"limit {2 * 1024**3}").wait_for(timeout=CELL_MS)
                panel.locator("img").first.wait_for(timeout=CELL_MS)
                sidebar.get_by_text("result.csv").first.wait_for(timeout=CELL_MS)  # listed through the kernel
                assert kernels(server_process(url)) == 0  # no local sandboxed kernel, not even a spare

                run_cell(page, "import time\ntime.sleep(100)")
                page.get_by_text("Running…").first.wait_for(timeout=CELL_MS)
                page.get_by_role("button", name="Interrupt").click()
                panel.get_by_text("KeyboardInterrupt").or_(panel.get_by_text("In [2]")).first.wait_for(
                    timeout=20_000
                )
                sidebar.get_by_text("Kernel: idle").wait_for(timeout=20_000)

                gateway.process.kill()
                gateway.process.wait()
                run_cell(page, "print('after the gateway went')")
                panel.get_by_text("cannot be reached").first.wait_for(timeout=CELL_MS)
                # The app keeps working: the page answers and says the kernel is gone.
                run_cell(page, "1 + 1")
                panel.get_by_text("cannot be reached").nth(1).wait_for(timeout=CELL_MS)
                # No uncaught exception of the app (the interrupted cell's own KeyboardInterrupt traceback,
                # kernel output shown in its cell, may be there: that is the user's code, not the app).
                assert not page.locator("[data-testid='stException']").count()
            finally:
                page.context.close()


def test_a_wrong_gateway_token_is_shown_on_the_code_page(
    browser: Any, kernel_gateway: RunningGateway, tmp_path: Path
) -> None:
    """A wrong token changes nothing on the gateway: the session's one (tests/conftest.py) serves."""
    gateway = kernel_gateway
    env = {
        "WORKBENCH_MODEL": "",
        "MODEL_PATH": "",
        "WORKBENCH_KERNEL_GATEWAY": gateway.config.url,
        "WORKBENCH_KERNEL_GATEWAY_TOKEN": "not-the-token",
        "WORKBENCH_KERNEL_GATEWAY_KERNEL": gateway.config.kernel_name,
    }
    with launch_streamlit(tmp_path / "server.log", env) as url:
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        page.set_default_timeout(60_000)
        try:
            open_code_page(page, url)
            run_cell(page, "print('never' + ' runs')")  # the page echoes the code, not this text
            page.get_by_text("refused the token").first.wait_for(timeout=CELL_MS)
            page.get_by_text("WORKBENCH_KERNEL_GATEWAY_TOKEN").first.wait_for()
            assert not page.get_by_text("not-the-token").count()
            assert not page.get_by_text("never runs").count()
        finally:
            page.context.close()
