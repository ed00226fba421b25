"""The Tool and Tools pages under Streamlit's AppTest, with the real embedded model (short, greedy replies)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

pytestmark = pytest.mark.model

MAIN = str(Path(__file__).resolve().parent.parent / "main.py")
BUILTINS = ["calculator", "current_time", "random_number", "convert_units"]

EXACT_TOOL = '''
from typing import Literal

from tools import tool


@tool
def add(a: Literal[1234], b: Literal[4321]) -> int:
    """Add two whole numbers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a + b
'''

FAILING_TOOL = '''
from tools import tool


@tool
def always_fails() -> str:
    """Fail on purpose."""
    raise RuntimeError("broken on purpose")
'''


@pytest.fixture
def tool_folder(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "tools"
    folder.mkdir()
    (folder / "failing.py").write_text(FAILING_TOOL)
    (folder / "broken.py").write_text("import not_a_module_anywhere\n")
    for name in ("WORKBENCH_MODEL", "MODEL_PATH", "WORKBENCH_DEVICE", "WORKBENCH_DTYPE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WORKBENCH_TOOLS_PATH", str(folder))
    return folder


def open_page(path: str) -> AppTest:
    at = AppTest.from_file(MAIN, default_timeout=300)
    at.run()
    at.switch_page(path)
    at.run()
    assert not at.exception
    return wait_for_tools(at)


def loading_notes(at: AppTest) -> list[str]:
    return [i.value for i in at.info if i.value.startswith("Loading tools")]


def wait_for_tools(at: AppTest, limit_s: float = 120) -> AppTest:
    """Rerun the page until it no longer says "Loading tools" (they load in the background)."""
    deadline = time.monotonic() + limit_s
    while loading_notes(at):
        assert time.monotonic() < deadline, "the tools never finished loading"
        time.sleep(0.5)
        at.run()
    return at


@pytest.fixture
def app(tool_folder) -> AppTest:
    at = open_page("pages/tool.py")
    at.sidebar.slider(key="tool_temperature").set_value(0.0)
    at.sidebar.number_input(key="tool_max_new").set_value(32)
    at.sidebar.selectbox(key="tool_choice").set_value("required")
    return at.run()


def only(at: AppTest, keep: str) -> AppTest:
    """Switch every tool off except one (a short prompt keeps the test fast)."""
    for toggle in at.toggle:
        toggle.set_value(toggle.label == keep)
    return at.run()


def send(at: AppTest, text: str) -> AppTest:
    at.chat_input(key="tool_input").set_value(text)
    return at.run()


def test_the_panel_lists_every_tool_with_a_switch_and_shows_load_errors(app):
    assert [t.value for t in app.title] == ["Tool"]
    assert [t.label for t in app.toggle] == [*BUILTINS, "always_fails"]
    assert all(t.value for t in app.toggle)
    [error] = app.main.error
    assert "broken.py" in error.value and "not_a_module_anywhere" in error.value
    sources = [c.value for c in app.main.caption if c.value.startswith("Source: ")]
    assert "Source: builtin" in sources and any("failing.py" in s for s in sources)
    assert "5 of 5 tools on" in app.main.caption[0].value
    only(app, "calculator")
    assert "1 of 5 tools on" in app.main.caption[0].value


def test_a_required_call_shows_as_a_completed_status_block_then_the_answer(app, tool_folder):
    # A tool whose schema allows one call only: the arguments are exact on purpose (the calculator's
    # expression is the model's own pick, which changes with the CPU).
    (tool_folder / "add.py").write_text(EXACT_TOOL)
    app.button(key="tool_panel_reload").click().run()
    only(wait_for_tools(app), "add")
    app.sidebar.number_input(key="tool_max_rounds").set_value(2).run()
    send(app, "What is 1234 plus 4321?")
    assert not app.exception
    assert [e.value for e in app.main.error if "broken.py" not in e.value] == []
    block = app.status[0]  # the model may call again after the result: that is its own pick
    assert (block.label, block.state) == ("Called add", "complete")
    assert json.loads(block.json[0].value) == {"a": 1234, "b": 4321}
    assert block.code[0].value == "5555"
    assert [m.name for m in app.chat_message] == ["user", "assistant"]
    # The history renders the same block on the next run, in this page's own session.
    app.run()
    block = app.status[0]
    assert (block.label, block.state) == ("Called add", "complete")
    assert block.code[0].value == "5555"
    session = app.session_state["tool_session"]
    assert [m.role.value for m in session.messages][:3] == ["user", "assistant", "observation"]
    assert app.session_state["chat_session"].messages == []  # the Chat page's history is apart


def test_a_failing_tool_shows_an_error_state_and_the_round_limit_is_said(app):
    only(app, "always_fails")
    app.sidebar.number_input(key="tool_max_rounds").set_value(1).run()
    send(app, "Say hello")
    [block] = app.status
    assert (block.label, block.state) == ("always_fails failed", "error")
    assert "RuntimeError: broken on purpose" in block.error[0].value
    assert any("Stopped after 1 rounds" in w.value for w in app.warning)


def test_reload_picks_up_a_new_tool_file_and_clear_empties_the_history(app, tool_folder):
    (tool_folder / "shout.py").write_text(
        "from tools import tool\n\n\n@tool\ndef shout(text: str) -> str:\n"
        '    """Return the text in capitals.\n\n    Args:\n        text: What to shout.\n    """\n'
        "    return text.upper()\n"
    )
    app.button(key="tool_panel_reload").click().run()
    wait_for_tools(app)
    assert "shout" in [t.label for t in app.toggle]
    app.session_state["tool_session"].history.append(
        __import__("workbench.messages", fromlist=["Message"]).Message("user", "hi")
    )
    app.sidebar.button(key="tool_clear").click().run()
    assert app.session_state["tool_session"].messages == [] and not app.chat_message


def test_a_killer_and_a_sleeper_tool_file_leave_the_page_usable(tmp_path, monkeypatch):
    """Issue 11: os._exit at import killed the server; a sleeper left the page blank for a minute."""
    folder = tmp_path / "hostile"
    folder.mkdir()
    (folder / "killer.py").write_text("import os\nos._exit(1)\n")
    (folder / "sleeper.py").write_text("import time\ntime.sleep(60)\n")
    (folder / "failing.py").write_text(FAILING_TOOL)
    for name in ("WORKBENCH_MODEL", "MODEL_PATH", "WORKBENCH_DEVICE", "WORKBENCH_DTYPE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WORKBENCH_TOOLS_PATH", str(folder))
    monkeypatch.setenv("WORKBENCH_TOOL_IMPORT_TIMEOUT_S", "4")
    at = AppTest.from_file(MAIN, default_timeout=300)
    at.run()
    at.switch_page("pages/tool.py")
    started = time.monotonic()
    # While tools load the page draws itself and then again every second (pages/_tool_ui.py,
    # refresh_while_loading); AppTest follows those reruns, so this run ends once loading is over: far
    # sooner than the sleeper's 60 s (its import is given 4 s), and the page never waited for it.
    at.run()
    assert time.monotonic() - started < 30
    assert not at.exception
    assert not loading_notes(at)
    assert at.chat_input(key="tool_input") is not None
    [warning] = [w.value for w in at.warning if "did not load" in w.value]
    assert "killer.py" in warning and "sleeper.py" in warning
    errors = " ".join(e.value for e in at.main.error)
    assert "killed the tool loader" in errors and "took longer than 4 s" in errors
    assert "always_fails" in [t.label for t in at.toggle]
