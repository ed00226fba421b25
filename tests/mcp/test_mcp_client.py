"""MCP servers as a tool source, against a real stdio server of our own that crashes, hangs and floods.

Every server here is a real process speaking MCP through the official SDK (tests/mcp/misbehaving_server.py);
calls go through the ToolRegistry exactly as the Tool mode loop makes them.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.cli_helpers import run_main
from tests.mcp.conftest import misbehaving, write_config
from tools import ToolRegistry
from tools.mcp_client import McpTools, ServerState
from workbench.messages import ToolCall

Start = Callable[..., McpTools]


def _registry(mcp: McpTools) -> ToolRegistry:
    registry = ToolRegistry()
    registry.load_builtins()

    def echo(text: str) -> str:
        """A Python tool with the same name as one of the server's.

        Args:
            text: Any text.
        """
        return text

    registry.add(echo)
    registry.attach_mcp(mcp)
    assert mcp.wait(60)
    return registry


def _wait_ready(mcp: McpTools, name: str, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while mcp.servers[name].state is not ServerState.READY:
        assert time.monotonic() < deadline, mcp.servers[name].describe_state()
        time.sleep(0.2)


def test_tools_join_the_registry_beside_python_tools(start_servers: Start) -> None:
    mcp = start_servers({"bad": misbehaving()})
    registry = _registry(mcp)
    names = registry.names()
    assert names[:4] == ["calculator", "current_time", "random_number", "convert_units"]
    assert "echo" in names and registry.get("echo").source.endswith(".py")  # type: ignore[union-attr]
    # The server's echo collides with the Python one: it is prefixed; the odd name is sanitised.
    assert {"bad__echo", "crash", "hang", "flood", "fail", "picture", "weird_name_with_spaces"} <= set(names)
    spec = registry.get("bad__echo")
    assert spec is not None and spec.source == "mcp:bad"
    schemas = {s["function"]["name"]: s["function"] for s in registry.schemas()}
    assert schemas["bad__echo"]["parameters"]["properties"]["text"]["type"] == "string"
    result = registry.call(ToolCall("bad__echo", {"text": "héllo"}))
    assert (result.error, result.content) == (False, "héllo")
    assert registry.call(ToolCall("weird_name_with_spaces", {})).content == "weird ok"


def test_results_images_errors_and_floods(start_servers: Start) -> None:
    registry = _registry(start_servers({"bad": misbehaving()}))
    picture = registry.call(ToolCall("picture", {}))
    assert (
        not picture.error and "a red square" in picture.content and "[image 1: image/png]" in picture.content
    )
    assert len(picture.images) == 1 and picture.images[0].startswith(b"\x89PNG")
    assert picture.to_message().images == picture.images
    failed = registry.call(ToolCall("fail", {}))
    assert (
        failed.error
        and failed.error_type == "McpToolError"
        and "'fail' of MCP server 'bad' failed" in failed.content
    )
    flood = registry.call(ToolCall("flood", {"chars": 3_000_000}))
    assert not flood.error and len(flood.content) < 1_100_000 and "more characters cut" in flood.content
    invalid = registry.call(ToolCall("bad__echo", {"text": 5, "extra": 1}))
    assert invalid.error and invalid.error_type == "InvalidArgumentsError"


def test_a_hanging_call_times_out_and_the_server_keeps_working(start_servers: Start) -> None:
    mcp = start_servers({"bad": misbehaving(timeout=2, connectTimeout=60)})
    registry = _registry(mcp)
    started = time.monotonic()
    hung = registry.call(ToolCall("hang", {"seconds": 600}))
    assert hung.error and hung.error_type == "McpTimeoutError"
    assert "did not answer within 2 seconds" in hung.content and "'bad'" in hung.content
    assert time.monotonic() - started < 30
    assert registry.call(ToolCall("bad__echo", {"text": "still here"})).content == "still here"


def test_a_crashed_server_is_named_and_restarted(start_servers: Start) -> None:
    mcp = start_servers({"bad": misbehaving()})
    registry = _registry(mcp)
    crashed = registry.call(ToolCall("crash", {}))
    assert crashed.error and crashed.error_type == "McpServerError"
    assert "MCP server 'bad'" in crashed.content and "crashing now (on purpose)" in crashed.content
    _wait_ready(mcp, "bad")
    assert mcp.servers["bad"].attempts >= 2
    assert registry.call(ToolCall("bad__echo", {"text": "back"})).content == "back"


@pytest.mark.parametrize(
    ("mode", "says"),
    [
        ("exit", "closed the connection"),
        ("garbage", "lines on stdout that are not MCP messages"),
        ("hang", "did not finish connecting within 3 seconds"),
    ],
)
def test_servers_that_fail_to_start_are_named_and_others_keep_working(
    start_servers: Start, mode: str, says: str
) -> None:
    mcp = start_servers({"broken": misbehaving(mode, timeout=3), "good": misbehaving()})
    registry = ToolRegistry()
    registry.attach_mcp(mcp)
    assert registry.wait(60)
    broken = mcp.servers["broken"]
    assert broken.state in (ServerState.FAILED, ServerState.CONNECTING) and says in broken.error
    assert says in broken.describe_state()
    assert f"starting in mode {mode}" in broken.stderr_tail()
    if mode == "exit":
        assert "fatal: cannot start (on purpose)" in broken.stderr_tail()
    assert "echo" in registry.names() and registry.call(ToolCall("echo", {"text": "ok"})).content == "ok"


def test_list_changed_refreshes_the_tools(start_servers: Start) -> None:
    mcp = start_servers({"bad": misbehaving()})
    registry = _registry(mcp)
    assert "late" not in registry.names()
    assert registry.call(ToolCall("add_tool_later", {})).content == "added"
    deadline = time.monotonic() + 30
    while "late" not in registry.names():
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert registry.call(ToolCall("late", {})).content == "late ok"


def test_allow_list_disabled_tools_prefix_and_confirm(start_servers: Start) -> None:
    mcp = start_servers(
        {
            "a": misbehaving(tools=["echo", "fail"], disabledTools=["fail"], prefix=True),
            "b": misbehaving(confirm=True, tools=["echo"]),
        }
    )
    registry = ToolRegistry()
    registry.attach_mcp(mcp)
    assert registry.wait(60)
    assert sorted(registry.names()) == ["a__echo", "b__echo"]
    refused = registry.call(ToolCall("b__echo", {"text": "x"}))
    assert refused.error and refused.error_type == "ConfirmationNeededError" and "--yes" in refused.content
    asked: list[tuple[str, str, dict[str, Any]]] = []

    def yes(server: str, tool: str, arguments: dict[str, Any]) -> bool:
        asked.append((server, tool, arguments))
        return True

    mcp.confirm = yes
    assert registry.call(ToolCall("b__echo", {"text": "x"})).content == "x"
    assert asked == [("b", "echo", {"text": "x"})]
    mcp.confirm = lambda server, tool, arguments: False
    skipped = registry.call(ToolCall("b__echo", {"text": "x"}))
    assert skipped.error and "skipped" in skipped.content


def test_tools_command_lists_sources_and_states(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "mcp.json", {"bad": misbehaving(tools=["echo"]), "gone": misbehaving("exit", timeout=5)}
    )
    status, out, err = run_main("tools", "--json", "--mcp-config", str(config))
    assert status == 0, err
    report = json.loads(out)
    kinds = {t["name"]: t["source_kind"] for t in report["tools"]}
    assert kinds["calculator"] == "built-in" and kinds["echo"] == "MCP server"
    servers = {s["name"]: s for s in report["mcp_servers"]}
    assert servers["bad"]["state"] == "ready" and servers["bad"]["tools"] == ["echo"]
    assert (
        servers["gone"]["state"] in ("failed", "connecting")
        and "closed the connection" in servers["gone"]["detail"]
    )
    assert "fatal: cannot start" in servers["gone"]["stderr_tail"]
    status, out, err = run_main("tools", "--mcp-config", str(config), "--tools", "calculator,nope")
    assert status == 1 and "nope" in err and "calculator" in err


def test_a_bad_config_is_a_load_error(tmp_path: Path) -> None:
    bad = tmp_path / "mcp.json"
    bad.write_text('{"mcpServers": {"x": {"args": []}}}')
    registry = ToolRegistry.from_env(mcp_config=bad, entry_points=False)
    assert any("server 'x'" in e.message for e in registry.errors)
    assert "calculator" in registry.names()


def test_the_tool_loop_keeps_an_mcp_tools_images(start_servers: Start) -> None:
    from tests.scripted import ScriptedBackend, call, hermes
    from workbench.chat_model import ChatModel
    from workbench.modes.tool import ToolChoice, ToolOptions, ToolSession

    registry = _registry(start_servers({"bad": misbehaving()}))
    backend = ScriptedBackend(call("picture"), "Here it is.")
    session = ToolSession(
        ChatModel(backend, dialect=hermes()), registry, options=ToolOptions(tool_choice=ToolChoice.REQUIRED)
    )
    list(session.send("Show me a picture."))
    [observation] = [m for m in session.messages if m.role.value == "observation"]
    assert observation.name == "picture" and not observation.error
    assert len(observation.images) == 1 and observation.images[0].startswith(b"\x89PNG")
    assert "[image 1: image/png]" in observation.content


def test_a_stdio_server_gets_only_path_home_and_its_own_env(
    start_servers: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKBENCH_TEST_SECRET", "s3cret")
    monkeypatch.setenv("SHELL", "/bin/from-our-environment")  # on the SDK's own safe list
    monkeypatch.setenv("USER", "someone")
    mcp = start_servers({"own": misbehaving(tools=["environment"], env={"GIVEN": "by the entry"})})
    registry = ToolRegistry()
    registry.attach_mcp(mcp)
    assert registry.wait(60), mcp.servers["own"].describe_state()

    def seen(name: str) -> str:
        result = registry.call(ToolCall("environment", {"name": name}))
        assert not result.error, result.content
        return result.content

    assert seen("WORKBENCH_TEST_SECRET") == "(unset)"
    assert seen("SHELL") == "(unset)" and seen("USER") == "(unset)"
    assert seen("WORKBENCH_MCP_ENV_KEEP") == "(unset)"  # the launcher's own note is gone too
    assert seen("GIVEN") == "by the entry"
    assert seen("PATH") == os.environ["PATH"] and seen("HOME") == os.environ["HOME"]
