"""A browser message that empties Streamlit's caches leaves the lock-out, the model and the kernels alone.

Any client, signed in or not, can send Streamlit's ``BackMsg`` with ``clear_cache`` over
``/_stcore/stream``: it empties ``st.cache_resource`` for the whole process. Here the message is sent
raw (the protobuf over a websocket, as a script would), three times, while a signed-in user works on
the Code page and a stranger is locked out.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from streamlit.proto.BackMsg_pb2 import BackMsg
from websockets.sync.client import connect
from websockets.typing import Origin, Subprotocol

from tests.e2e.page_actions import CELL_MS, kernels, run_cell, server_process, wait_script_done, wait_until
from tests.e2e.streamlit_server import APP_READY_MS, CHAT_INPUT, launch_streamlit
from tests.e2e.watch import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.kernel]

CLEARS = 3
SLOW_MS = 180_000  # a loaded two-core machine: the browser may show "Connection error" for a while


def send_clear_cache(url: str) -> None:
    """Connect as a new browser session would (no login) and send one ``clear_cache`` BackMsg."""
    message = BackMsg()
    message.clear_cache = True
    stream = url.replace("http://", "ws://") + "/_stcore/stream"
    with connect(
        stream, subprotocols=[Subprotocol("streamlit")], origin=Origin(url), open_timeout=30
    ) as socket:
        socket.send(message.SerializeToString())
        time.sleep(1.0)  # the server handles it before the connection ends


def sign_in(page: Any, url: str, path: str) -> None:
    page.goto(f"{url}/{path}")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def wrong_try(page: Any, shown_before: str = "") -> str:
    """A wrong password; the message it gets (waiting until it replaces the one shown before)."""
    page.get_by_label("Password", exact=True).wait_for(timeout=APP_READY_MS)
    wait_script_done(page)
    page.get_by_label("Password", exact=True).fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    alert = page.locator("[data-testid='stAlertContentError']")
    deadline = time.monotonic() + SLOW_MS / 1000
    while time.monotonic() < deadline:
        text = alert.inner_text() if alert.count() else ""
        if text and text != shown_before:
            return text
        time.sleep(0.2)
    raise AssertionError(f"no new message after the wrong try (still {shown_before!r})")


def test_clear_cache_from_a_stranger_resets_nothing(new_page: Any, tmp_path: Path) -> None:
    env = {"WORKBENCH_MODEL": "", "MODEL_PATH": "", "WORKBENCH_PASSWORD": PASSWORD}
    env.update(WORKBENCH_DATA_DIR=str(tmp_path / "data"), WORKBENCH_MAX_KERNELS="4")
    with launch_streamlit(tmp_path / "server.log", env) as url:
        server = server_process(url)
        user = new_page()
        user.set_default_timeout(SLOW_MS)
        sign_in(user, url, "chat")
        user.wait_for_selector(CHAT_INPUT, state="visible", timeout=APP_READY_MS)  # the model loaded
        user.locator("[data-testid='stSidebar']").get_by_text("Code interpreter", exact=True).click()
        user.get_by_role("tab", name="Your cells").wait_for()
        wait_script_done(user)
        run_cell(user, "x = 41")
        user.get_by_text("In [1]").first.wait_for(timeout=CELL_MS)
        time.sleep(3)  # the warm spare starting beside the session's kernel
        before = kernels(server)
        assert before >= 1

        stranger = new_page()
        stranger.set_default_timeout(SLOW_MS)
        stranger.goto(f"{url}/chat")
        first = wrong_try(stranger)
        assert "next try is possible in 1 s" in first
        time.sleep(1.2)
        second = wrong_try(stranger, first)
        assert "next try is possible in 2 s" in second

        for number in range(1, CLEARS + 1):
            send_clear_cache(url)
            # The user works on: the same kernel (x is still there), the same model (no new load).
            run_cell(user, f"print('x is', x + {number})")
            user.get_by_text(f"x is {41 + number}").first.wait_for(timeout=CELL_MS)
            assert not user.get_by_text(re.compile(r"Load(ing|ed) .* (in|\.\.\.)")).count(), (
                "the model loaded again"
            )

        # The stranger is still locked out: a rebuilt guard would have forgotten the two failures.
        third = wrong_try(stranger, second)
        assert "next try is possible in 1 s" not in third
        assert "Too many wrong passwords" in third or "next try is possible in 4 s" in third
        # No pool beside the first: the same kernels as before the messages.
        wait_until(
            lambda: kernels(server) <= before, 30, f"{kernels(server)} kernels, {before} before the clears"
        )
        time.sleep(3)
        assert kernels(server) == before
