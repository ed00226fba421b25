"""The password comes before every page, however many first loads arrive at once and through any URL.

A fresh server is where it can go wrong: Streamlit decides its legacy pages-folder mode once per process,
at the first browser session, and in that mode a page opened by URL runs without main.py. So each case
starts its own server, opens a dozen tabs at once on the three pages (with ``?c=`` of a saved
conversation), and watches every tab from its first byte (see ``watch.LEAK_WATCH``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.streamlit_server import free_port, launch_streamlit
from tests.e2e.watch import LEAK_WATCH, PASSWORD, leaks, seed_conversations

pytestmark = pytest.mark.browser

TABS = 12
LOGIN_MS = 120_000
SETTLE_S = 3.0  # after every tab shows the form, the time a late run would need to draw more


def open_tabs(new_page: Callable[[], Any], url: str, ids: dict[str, str]) -> list[Any]:
    """Open TABS tabs at once (each its own browser session), spread over the pages, ``?c=`` on most."""
    paths = []
    for index in range(TABS):
        mode = ("chat", "tool", "code")[index % 3]
        query = f"?c={ids[mode]}" if index % 4 else ""
        paths.append(f"{mode}{query}")
    pages = []
    for _ in paths:
        page = new_page()
        page.context.add_init_script(LEAK_WATCH)
        pages.append(page)
    for page, path in zip(pages, paths, strict=True):
        page.goto(f"{url}/{path}", wait_until="commit")  # returns at once: the loads run side by side
    return pages


def assert_only_the_login(pages: list[Any]) -> None:
    """Every tab ends on the login form, and none showed anything else on the way."""
    deadline = time.monotonic() + LOGIN_MS / 1000
    waiting = list(pages)
    while waiting and time.monotonic() < deadline:
        waiting = [p for p in waiting if not leaks(p) and not p.get_by_label("Password", exact=True).count()]
        time.sleep(0.25)
    time.sleep(SETTLE_S)
    shown = {f"tab {index} {page.url}": leaks(page) for index, page in enumerate(pages)}
    assert not any(shown.values()), f"shown before the password: {shown}"
    for page in pages:
        assert page.get_by_label("Password", exact=True).is_visible()


def test_concurrent_first_loads_show_only_the_login(new_page: Callable[[], Any], tmp_path: Path) -> None:
    ids = seed_conversations(tmp_path / "data")
    env = {"WORKBENCH_MODEL": "", "MODEL_PATH": "", "WORKBENCH_PASSWORD": PASSWORD}
    env["WORKBENCH_DATA_DIR"] = str(tmp_path / "data")
    port = free_port()
    with launch_streamlit(tmp_path / "first.log", env, port=port) as url:
        first = open_tabs(new_page, url, ids)
        assert_only_the_login(first)
    # A restart: the open tabs reconnect to a fresh process, and new tabs arrive at once as well.
    with launch_streamlit(tmp_path / "second.log", env, port=port) as url:
        second = open_tabs(new_page, url, ids)
        assert_only_the_login(first + second)
        # The gate still lets the right password in, on the page and conversation the URL names.
        page = second[1]
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_text("SECRET-TOOL-7f3a is kept here.").wait_for(timeout=LOGIN_MS)
