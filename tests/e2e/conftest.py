"""Browser tests: a real ``streamlit run main.py`` server and Chromium driven by Playwright.

Fixtures for every page's browser tests:

- ``streamlit_server``: the base URL of one headless server for the whole session (started on a free
  port, ready once ``/_stcore/health`` answers). ``launch_streamlit`` in ``streamlit_server.py`` starts
  another one, for a test that needs its own environment.
- ``page``: a fresh browser context and page per test; ``new_page()`` opens more (another browser
  session, as a second user). A failing test leaves a screenshot of every page it opened in its
  ``tmp_path`` and prints where.
- ``open_app(page, url, path)`` in ``streamlit_server.py`` opens the app and waits for the chat input.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pluggy
import pytest
from playwright.sync_api import sync_playwright

from tests.e2e.streamlit_server import CHROMIUM, CHROMIUM_ARGS, launch_streamlit


@pytest.fixture(scope="session")
def streamlit_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One headless server of the app for the whole test session; its base URL."""
    env = {name: "" for name in ("WORKBENCH_MODEL", "MODEL_PATH")}
    with launch_streamlit(tmp_path_factory.mktemp("streamlit") / "server.log", env) as url:
        yield url


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Chromium (Debian's package; Playwright cannot download its own here)."""
    if not Path(CHROMIUM).is_file():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: run scripts/run-tests.sh (it installs Debian's chromium) "
            "or set WORKBENCH_CHROMIUM to a Chromium binary."
        )
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pluggy.Result[pytest.TestReport], None]:
    """Keep each phase's report on the test item, so fixtures can tell whether the test failed."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture
def new_page(browser: Any, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Any]]:
    """Open a page in a fresh browser context (a separate Streamlit session) each time it is called."""
    contexts: list[Any] = []

    def open_page() -> Any:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(30_000)
        return page

    yield open_page
    failed = any(
        getattr(getattr(request.node, f"report_{when}", None), "failed", False) for when in ("setup", "call")
    )
    for index, context in enumerate(contexts):
        if failed:
            for number, page in enumerate(context.pages):
                shot = tmp_path / f"failure-{index}-{number}.png"
                try:
                    page.screenshot(path=str(shot), full_page=True)
                    print(f"screenshot of the failed test: {shot}")
                except Exception as exc:  # a crashed page must not hide the test's own failure
                    print(f"no screenshot of page {index}-{number}: {exc}")
        context.close()


@pytest.fixture
def page(new_page: Callable[[], Any]) -> Any:
    """A fresh page in its own browser context."""
    return new_page()
