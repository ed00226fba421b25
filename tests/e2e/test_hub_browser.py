"""The sidebar's model download in Chromium: a name, Download, a live progress bar, Stop, the cached list.

The app's ``HF_ENDPOINT`` is the loopback Hub of tests/hub_server.py, slowed to a few MB/s so the
progress bar can be watched; its ``HF_HOME`` is empty.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.page_actions import wait_script_done
from tests.e2e.streamlit_server import launch_streamlit, open_app
from tests.hub_server import GGUF_REPO

pytestmark = [pytest.mark.browser, pytest.mark.model]

NAME = f"{GGUF_REPO}:Q4_1"


def _open_model_form(sidebar: Any) -> None:
    if not sidebar.get_by_text("Download by name").is_visible():
        sidebar.get_by_text("Change model").click()
    sidebar.get_by_text("Download by name").wait_for()


def _download(sidebar: Any) -> None:
    _open_model_form(sidebar)
    field = sidebar.get_by_role("textbox", name="Download by name")
    field.fill(NAME)
    field.press("Enter")
    sidebar.get_by_role("button", name="Download", exact=True).click()


@pytest.fixture
def hub_app(fake_hub: Any, tmp_path: Path) -> Iterator[str]:
    """The app with the loopback Hub as its ``HF_ENDPOINT`` and an empty ``HF_HOME`` of this test's.

    One server per test: the two quantizations share one blob, which a shared cache would hold already.
    """
    env = {
        "WORKBENCH_MODEL": "",
        "MODEL_PATH": "",
        "HF_ENDPOINT": fake_hub.url,
        "HF_HOME": str(tmp_path / "hf"),
        "WORKBENCH_CACHE_DIR": str(tmp_path / "workbench"),
        "HF_TOKEN": "",
        "HF_HUB_OFFLINE": "",
    }
    with launch_streamlit(tmp_path / "app.log", env) as url:
        yield url


def test_sidebar_download_with_progress_stop_resume_and_load(
    fake_hub: Any, hub_app: str, new_page: Callable[[], Any]
) -> None:
    fake_hub.rate = 8e6  # 98 MB in about 12 s: long enough to watch and to stop
    fake_hub.requests.clear()
    try:
        page = open_app(new_page(), hub_app)
        sidebar = page.locator("[data-testid='stSidebar']")
        _download(sidebar)
        progress = sidebar.locator("[data-testid='stProgress']")
        progress.get_by_text(
            re.compile(r"test-org/smollm2-GGUF:Q4_1: [\d.]+ MB / 98\.4 MB, [\d.]+ MB/s, \d+ s left")
        ).wait_for(timeout=60_000)
        sidebar.get_by_role("button", name="Stop download").click()
        sidebar.get_by_text(
            f"Stopped the download of {NAME}. Download again to fetch what is missing."
        ).wait_for(timeout=60_000)
        assert progress.count() == 0
        fake_hub.rate = 50e6
        _download(sidebar)
        sidebar.get_by_text(f"Downloaded {NAME}; choose it under Cached models.").wait_for(timeout=120_000)
        cdn_gets = [r for r in fake_hub.requests if r[0] == "GET" and r[1].endswith("Q4_1.gguf")]
        assert len(cdn_gets) == 2, "stopped once, then downloaded"
        wait_script_done(page)
        _open_model_form(sidebar)
        choice = (
            sidebar.locator("[data-testid='stSelectbox']").filter(has_text="Cached models").locator("input")
        )
        choice.click()
        choice.press("ArrowDown")  # opens the list (a click alone may land while the sidebar settles)
        page.get_by_role("option", name=NAME).click()
        sidebar.get_by_role("button", name="Load", exact=True).click()
        page.get_by_text(re.compile(rf"Loaded {re.escape(NAME)} in [\d.]+ s")).wait_for(timeout=180_000)
        sidebar.get_by_text(re.compile(rf"^{re.escape(NAME)} · llama\.cpp · cpu · Q4_1")).wait_for()
        assert not sidebar.get_by_text("Could not load").count()
    finally:
        fake_hub.rate = None


def test_loading_an_uncached_name_downloads_it_with_progress_then_loads_it(
    fake_hub: Any, hub_app: str, new_page: Callable[[], Any]
) -> None:
    name = f"{GGUF_REPO}:Q4_K_M"
    fake_hub.rate = 20e6
    try:
        page = open_app(new_page(), hub_app)
        sidebar = page.locator("[data-testid='stSidebar']")
        _open_model_form(sidebar)
        model = sidebar.get_by_role("textbox", name="Model", exact=True)
        model.fill(name)
        model.press("Enter")
        sidebar.get_by_role("button", name="Load", exact=True).click()
        sidebar.locator("[data-testid='stProgress']").get_by_text(re.compile(r"MB/s, \d+ s left")).wait_for(
            timeout=60_000
        )
        fake_hub.rate = None  # the progress was shown: the rest of the 98 MB needs no throttle
        page.get_by_text(re.compile(rf"Loaded {re.escape(name)} in [\d.]+ s")).wait_for(timeout=180_000)
        sidebar.get_by_text(re.compile(rf"^{re.escape(name)} · llama\.cpp")).wait_for()
    finally:
        fake_hub.rate = None
