"""The Tool page with MCP servers configured (AppTest, the real embedded model): the panel shows each
server's state, a failed one's stderr and Reconnect, and a call to an MCP tool completes as a status block."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.mcp.conftest import misbehaving, write_config

pytestmark = pytest.mark.model

MAIN = str(Path(__file__).resolve().parents[2] / "main.py")


def _server_lines(at: AppTest) -> list[str]:
    return [m.value for m in at.main.markdown if "MCP server" in m.value]


def test_the_panel_groups_mcp_servers_and_a_call_completes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("WORKBENCH_MODEL", "MODEL_PATH", "WORKBENCH_DEVICE", "WORKBENCH_DTYPE"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "tools").mkdir()
    monkeypatch.setenv("WORKBENCH_TOOLS_PATH", str(tmp_path / "tools"))  # a cache key of its own
    config = write_config(
        tmp_path / "mcp.json", {"own": misbehaving(tools=["echo"]), "gone": misbehaving("exit", timeout=5)}
    )
    monkeypatch.setenv("WORKBENCH_MCP_CONFIG", str(config))
    at = AppTest.from_file(MAIN, default_timeout=300)
    at.run()
    at.switch_page("pages/tool.py")
    at.run()
    deadline = time.monotonic() + 120
    while not any("ready with 1 tool" in line for line in _server_lines(at)) or any(
        i.value.startswith("Loading tools") for i in at.info
    ):
        assert time.monotonic() < deadline, _server_lines(at)
        time.sleep(0.5)
        at.run()
    lines = _server_lines(at)
    assert any("**own**: ready with 1 tool" in line for line in lines)
    assert any("**gone**" in line and "closed the connection" in line for line in lines)
    assert any("fatal: cannot start (on purpose)" in c.value for c in at.main.code)
    assert [b.label for b in at.main.button if b.label == "Reconnect"] == ["Reconnect", "Reconnect"]
    assert "echo" in [t.label for t in at.toggle]
    sources = [c.value for c in at.main.caption if c.value.startswith("Source: ")]
    assert "Source: mcp:own" in sources
    for toggle in at.toggle:
        toggle.set_value(toggle.label == "echo")
    at.sidebar.slider(key="tool_temperature").set_value(0.0)
    at.sidebar.number_input(key="tool_max_new").set_value(32)
    at.sidebar.selectbox(key="tool_choice").set_value("required")
    at.sidebar.number_input(key="tool_max_rounds").set_value(1)
    at.run()
    at.chat_input(key="tool_input").set_value("Say hello with the echo tool.").run()
    assert not at.exception
    [block] = at.status
    assert (block.label, block.state) == ("Called echo", "complete")
    session = at.session_state["tool_session"]
    observation = next(m for m in session.messages if m.role.value == "observation")
    call = next(c for m in session.messages for c in m.tool_calls)
    assert observation.name == "echo" and not observation.error
    assert observation.content == call.arguments["text"]  # the MCP server's answer


def _confirm_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, time_server: Path, tag: str) -> AppTest:
    """The Tool page with mcp-server-time configured ``confirm``, only get_current_time on, one round."""
    for name in ("WORKBENCH_MODEL", "MODEL_PATH", "WORKBENCH_DEVICE", "WORKBENCH_DTYPE"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / tag).mkdir()
    monkeypatch.setenv("WORKBENCH_TOOLS_PATH", str(tmp_path / tag))  # a registry of its own
    entry = {"command": str(time_server), "args": ["--local-timezone", "UTC"], "confirm": True,
             "tools": ["get_current_time"]}  # fmt: skip
    monkeypatch.setenv("WORKBENCH_MCP_CONFIG", str(write_config(tmp_path / "mcp.json", {"time": entry})))
    at = AppTest.from_file(MAIN, default_timeout=300)
    at.run()
    at.switch_page("pages/tool.py")
    at.run()
    deadline = time.monotonic() + 120
    while not any("ready with 1 tool" in line for line in _server_lines(at)):
        assert time.monotonic() < deadline, _server_lines(at)
        time.sleep(0.5)
        at.run()
    for toggle in at.toggle:
        toggle.set_value(toggle.label == "get_current_time")
    at.sidebar.slider(key="tool_temperature").set_value(0.0)
    at.sidebar.number_input(key="tool_max_new").set_value(32)
    at.sidebar.selectbox(key="tool_choice").set_value("required")
    at.sidebar.number_input(key="tool_max_rounds").set_value(1)
    at.run()
    at.chat_input(key="tool_input").set_value("What time is it in Tokyo?").run()
    assert not at.exception
    return at


@pytest.mark.parametrize("choice", ["Run", "Skip"])
def test_a_confirm_server_shows_run_and_skip_before_the_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, time_server: Path, choice: str
) -> None:
    at = _confirm_page(tmp_path, monkeypatch, time_server, choice)
    session = at.session_state["tool_session"]
    [block] = at.status
    assert (block.label, block.state) == ("get_current_time: run this call?", "running")
    assert [b.label for b in at.main.button if b.label in ("Run", "Skip")] == ["Run", "Skip"]
    assert session.pending is not None and not any(m.role.value == "observation" for m in session.messages)
    assert any("asks you to confirm" in c.value for c in at.main.caption)

    at.main.button(key=f"tool_{choice.lower()}_{session.pending.call.id}").click().run()
    assert not at.exception
    observation = next(m for m in session.messages if m.role.value == "observation")
    [block] = at.status
    assert not [b for b in at.main.button if b.label in ("Run", "Skip")]
    assert session.pending is None
    if choice == "Skip":
        assert observation.metadata["error_type"] == "CallSkippedError" and "skipped" in observation.content
        assert (block.label, block.state) == ("get_current_time failed", "error")
        return
    # Run: the server answered (a time, or its own error for a zone it does not know), never a refusal.
    assert observation.metadata.get("error_type") in (None, "McpToolError"), observation.content
    assert "confirm" not in observation.content and "skipped" not in observation.content
    assert block.label in ("Called get_current_time", "get_current_time failed")
