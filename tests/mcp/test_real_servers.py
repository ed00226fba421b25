"""Tools from real MCP servers of the reference set (from PyPI, each in its own venv), called by the model.

The embedded 135M model is forced by the schema (``--tool-choice required``, ``--tools NAME``): the test
asserts the plumbing (the call reached the server, its answer is the observation), never the model's text.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from tests.mcp.conftest import misbehaving, write_config
from tools import ToolRegistry
from tools.mcp_client import McpTools
from workbench.chat_model import ChatModel
from workbench.cli.ask_tool import ask_with_tools
from workbench.cli.parser import build_parser
from workbench.conversation import Conversation, Mode
from workbench.messages import Message, Role, ToolCall


def _registry(config: Path) -> ToolRegistry:
    registry = ToolRegistry.from_env(mcp_config=config, entry_points=False)
    assert registry.mcp is not None and registry.wait(120)
    return registry


def _close(registry: ToolRegistry) -> None:
    if registry.mcp is not None:
        registry.mcp.close()


def test_time_server(time_server: Path, tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "mcp.json", {"time": {"command": str(time_server), "args": ["--local-timezone", "UTC"]}}
    )
    registry = _registry(config)
    try:
        assert registry.mcp is not None
        assert registry.mcp.servers["time"].describe_state() == "ready with 2 tools"
        assert registry.mcp.servers["time"].protocol_version >= "2026"
        assert {"get_current_time", "convert_time"} <= set(registry.names())
        schema = registry.get("get_current_time").parameters  # type: ignore[union-attr]
        assert schema["properties"]["timezone"]["type"] == "string" and schema["required"] == ["timezone"]
        result = registry.call(ToolCall("get_current_time", {"timezone": "Europe/Paris"}))
        assert not result.error, result.content
        assert json.loads(result.content)["timezone"] == "Europe/Paris"
        converted = registry.call(
            ToolCall(
                "convert_time", {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"}
            )
        )
        assert not converted.error, converted.content
        assert json.loads(converted.content)["target"]["timezone"] == "Asia/Tokyo"
        bad = registry.call(ToolCall("get_current_time", {"timezone": "Nowhere/Atlantis"}))
        assert bad.error and bad.error_type == "McpToolError" and "Nowhere/Atlantis" in bad.content
    finally:
        _close(registry)


def test_an_older_server_on_the_initialize_handshake(legacy_time_server: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path / "mcp.json", {"old": {"command": str(legacy_time_server)}})
    registry = _registry(config)
    try:
        assert registry.mcp is not None
        server = registry.mcp.servers["old"]
        assert server.describe_state() == "ready with 2 tools", server.describe_state()
        assert server.protocol_version < "2026"  # the SDK 1.x server: the initialize handshake
        result = registry.call(ToolCall("get_current_time", {"timezone": "UTC"}))
        assert not result.error and json.loads(result.content)["timezone"] == "UTC"
    finally:
        _close(registry)


def test_git_server_on_a_scratch_repository(git_server: Path, scratch_repo: Path, tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "mcp.json",
        {"git": {"command": str(git_server), "args": ["--repository", str(scratch_repo)]}},
    )
    registry = _registry(config)
    try:
        assert {"git_status", "git_log", "git_diff_unstaged"} <= set(registry.names())
        status = registry.call(ToolCall("git_status", {"repo_path": str(scratch_repo)}))
        assert not status.error and "hello.txt" in status.content
        log = registry.call(ToolCall("git_log", {"repo_path": str(scratch_repo)}))
        assert not log.error and "first commit" in log.content
        diff = registry.call(ToolCall("git_diff_unstaged", {"repo_path": str(scratch_repo)}))
        assert not diff.error and "+world" in diff.content
    finally:
        _close(registry)


def _ask(model: ChatModel, config: Path, tool: str) -> list[Message]:
    args = build_parser().parse_args(
        [
            "ask",
            "--mode",
            "tool",
            "--tool-choice",
            "required",
            "--max-rounds",
            "1",
            "--max-new-tokens",
            "48",
            "--temperature",
            "0",
            "--mcp-config",
            str(config),
            "--tools",
            tool,
            "question",
        ]
    )
    return ask_with_tools(
        model,
        args,
        "What time is it in Paris? Use the tool.",
        io.StringIO(),
        io.StringIO(),
        Conversation(Mode.TOOL),
    )


@pytest.mark.model
def test_ask_calls_the_time_server(chat_model: ChatModel, time_server: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path / "mcp.json", {"time": {"command": str(time_server)}})
    messages = _ask(chat_model, config, "get_current_time")
    calls = [c for m in messages for c in m.tool_calls]
    observations = [m for m in messages if m.role is Role.OBSERVATION]
    assert (
        calls and calls[0].name == "get_current_time" and isinstance(calls[0].arguments.get("timezone"), str)
    )
    assert observations and observations[0].name == "get_current_time"
    zone = calls[0].arguments["timezone"]
    if observations[0].error:  # the model may name a zone that does not exist: the server says so
        assert zone in observations[0].content and "MCP server 'time'" in observations[0].content
    else:
        assert json.loads(observations[0].content)["timezone"] == zone


@pytest.mark.model
def test_ask_calls_our_own_server_and_sees_its_answer(chat_model: ChatModel, tmp_path: Path) -> None:
    config = write_config(tmp_path / "mcp.json", {"own": misbehaving(tools=["echo"])})
    messages = _ask(chat_model, config, "echo")
    calls = [c for m in messages for c in m.tool_calls]
    observations = [m for m in messages if m.role is Role.OBSERVATION]
    assert calls and calls[0].name == "echo"
    assert observations and not observations[0].error
    assert observations[0].content == calls[0].arguments["text"]  # the server's answer, as the observation


def test_garbage_config_entry_does_not_stop_the_others(tmp_path: Path) -> None:
    registry = ToolRegistry.from_env(
        mcp_config=write_config(
            tmp_path / "m.json", {"nope": {"command": "/no/such/server"}, "own": misbehaving()}
        ),
        entry_points=False,
    )
    try:
        assert registry.wait(120)
        mcp: McpTools | None = registry.mcp
        assert mcp is not None and "was not found" in mcp.servers["nope"].error
        assert registry.call(ToolCall("echo", {"text": "fine"})).content == "fine"
    finally:
        _close(registry)
