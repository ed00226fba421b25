"""The login gate under AppTest: with a password, every page shows the form and nothing else.

AppTest runs a page opened with ``switch_page`` as Streamlit's pages-folder mode does, without main.py:
the way concurrent first loads of a fresh server reached the pages without a login (issue 25).
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

MAIN = str(Path(__file__).resolve().parent.parent / "main.py")
PAGES = [None, "pages/chat.py", "pages/tool.py", "pages/code.py"]


@pytest.fixture
def password(monkeypatch: pytest.MonkeyPatch) -> str:
    """A password of this test alone (the process keeps one lock-out guard per password)."""
    secret = f"test secret {uuid.uuid4().hex}"
    monkeypatch.setenv("WORKBENCH_PASSWORD", secret)
    monkeypatch.delenv("WORKBENCH_NO_AUTH", raising=False)
    return secret


def opened(page: str | None) -> AppTest:
    at = AppTest.from_file(MAIN, default_timeout=120)
    at.run()
    if page is not None:
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def only_the_form(at: AppTest) -> None:
    assert [t.value for t in at.title] == ["Workbench"]
    assert [w.label for w in at.text_input] == ["Password"]
    assert not at.chat_input and not at.chat_message and not at.status
    assert not at.sidebar.children, "the sidebar shows nothing before the password"


@pytest.mark.parametrize("page", PAGES)
def test_every_page_shows_only_the_login_form(password: str, page: str | None) -> None:
    only_the_form(opened(page))


def sign_in_with(at: AppTest, attempt: str) -> str:
    at.text_input(key="login_password").set_value(attempt)
    at.button[0].click().run()
    return " ".join(e.value for e in at.error)


def test_a_lock_out_holds_when_the_caches_are_cleared(password: str) -> None:
    at = opened("pages/chat.py")
    assert sign_in_with(at, "wrong") == "Wrong password. The next try is possible in 1 s."
    st.cache_resource.clear()  # what any browser's clear_cache message does
    st.cache_data.clear()
    time.sleep(1.1)
    # The second failure in a row: the guard remembers the first one.
    assert sign_in_with(at, "wrong again") == "Wrong password. The next try is possible in 2 s."
    only_the_form(at)
