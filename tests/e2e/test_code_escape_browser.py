"""Issue 24 in Chromium: the attack on the app from a "Your cells" cell, with other browser sessions beside it.

The cell swaps its session's connection file for a FIFO and its log for a link to the app's
``/proc/self/environ``, plants a ``resource.py`` that does the same at the next launch, and kills its
kernel. The app must show none of its environment, other sessions must still get kernels, and
SIGTERM must still end the app within seconds.
"""

from __future__ import annotations

import os
import signal
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.e2e.page_actions import CELL_MS, open_code_page, run_cell, wait_script_done
from tests.e2e.streamlit_server import APP_READY_MS, launch_streamlit

pytestmark = [pytest.mark.browser, pytest.mark.kernel, pytest.mark.timeout(900)]

SWAP = """import os, ipykernel.connect
RUN = os.path.dirname(ipykernel.connect.get_connection_file())
for name, make in (('kernel.json', lambda p: os.mkfifo(p)), ('kernel.log', lambda p: os.symlink('/proc/self/environ', p))):
    path = os.path.join(RUN, name)
    try:
        os.unlink(path)
    except OSError:
        pass
    try:
        make(path)
    except OSError:
        pass
"""
ATTACK = SWAP + f"open('resource.py', 'w').write({SWAP + 'os._exit(3)' + chr(10)!r})\nos._exit(0)\n"


def server_process(url: str) -> psutil.Process:
    """The ``streamlit run`` process this test started."""
    port = url.rsplit(":", 1)[1]
    for process in psutil.Process(os.getpid()).children(recursive=True):
        try:
            if "streamlit" in " ".join(process.cmdline()) and port in process.cmdline():
                return process
        except psutil.Error:
            continue
    raise AssertionError(f"no streamlit server on port {port} among this test's processes")


def new_session(browser: Any, url: str) -> Any:
    page = browser.new_context().new_page()
    page.set_default_timeout(60_000)
    page.set_default_navigation_timeout(APP_READY_MS)  # a busy 2-core machine; health is checked apart
    open_code_page(page, url)
    return page


def test_a_cell_attacking_the_app_leaks_nothing_and_blocks_no_one(browser: Any, tmp_path: Path) -> None:
    secret = "app-secret-" + os.urandom(6).hex()
    # A variable the app itself never shows (its sidebar puts OPENAI_API_KEY in a password field).
    env = {
        "WORKBENCH_MODEL": "",
        "MODEL_PATH": "",
        "WORKBENCH_MAX_KERNELS": "4",
        "WORKBENCH_E2E_SECRET": secret,
    }
    with launch_streamlit(tmp_path / "server.log", env) as url:
        server = server_process(url)
        attacker = new_session(browser, url)
        pages = [attacker]
        try:
            check_attack(browser, url, attacker, pages, secret, tmp_path)
        except BaseException:
            for number, page in enumerate(pages):
                page.screenshot(path=str(tmp_path / f"failure-{number}.png"), full_page=True)
            raise
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)  # psutil raises TimeoutExpired if the app ignores SIGTERM


def check_attack(
    browser: Any, url: str, attacker: Any, pages: list[Any], secret: str, tmp_path: Path
) -> None:
    """Play the attack in ``attacker``'s session, then open two more sessions that must run code."""
    run_cell(attacker, "print('attacker ready')")
    attacker.get_by_text("attacker ready").first.wait_for(timeout=CELL_MS)
    run_cell(attacker, ATTACK)
    wait_script_done(attacker)
    run_cell(attacker, "print('after', 6 * 7)")  # the restart the attack aimed at
    started = time.monotonic()
    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=60) as response:
        assert response.status == 200  # the app still answers (it stalled for 80 s and more before)
    assert time.monotonic() - started < 60
    # Two more sessions: the first may take the warm spare, the second needs a kernel started now.
    for number in (1, 2):
        other = new_session(browser, url)
        pages.append(other)
        run_cell(other, f"print('session', {number}, 6 * 7)")
        other.get_by_text(f"session {number} 42").first.wait_for(timeout=CELL_MS)
    wait_script_done(attacker)
    attacker.get_by_text("after 42").first.wait_for(timeout=CELL_MS)
    assert secret not in attacker.content()
    assert secret not in (tmp_path / "server.log").read_text()
