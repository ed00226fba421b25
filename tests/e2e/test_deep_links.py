"""A page opened by its URL on a freshly started server gets main.py's frame (navigation, titles).

A fresh server matters: Streamlit decides its legacy pages-folder mode once per process, at the first
browser session (``leave_pages_folder_mode`` in ``pages/_login.py``). Each case starts its own server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.streamlit_server import NAV_LINKS, launch_streamlit, open_app

pytestmark = pytest.mark.browser

# The titles main.py gives its pages; Streamlit's pages-folder mode would list file names (chat, tool,
# code, _common) instead, were its list not hidden (client.showSidebarNavigation = false).
NAVIGATION = ["Chat", "Tool", "Code interpreter"]


def label(link_text: str) -> str:
    """A navigation link's title, without the name of its Material icon (a line of its own)."""
    return link_text.strip().splitlines()[-1].strip()


@pytest.mark.parametrize(("path", "title"), [("tool", "Tool"), ("code", "Code interpreter")])
def test_a_page_opened_by_url_on_a_fresh_server_is_that_page_in_the_frame(
    page: Any, tmp_path: Path, path: str, title: str
) -> None:
    env = {name: "" for name in ("WORKBENCH_MODEL", "MODEL_PATH")}
    with launch_streamlit(tmp_path / "server.log", env) as url:
        open_app(page, url, path)
        page.get_by_role("heading", name=title).wait_for()
        assert page.url.split("?")[0] == f"{url}/{path}"  # the query holds the open conversation (?c=)
        links = page.locator(NAV_LINKS)
        assert [label(text) for text in links.all_inner_texts()] == NAVIGATION
        assert not page.locator("[data-testid='stSidebarNavLink']").count()  # no list of the page files
        assert page.title() == "Workbench"
        assert not page.get_by_text("Page not found").count()
        assert not page.locator("[data-testid='stException']").count()
