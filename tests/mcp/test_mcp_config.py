"""The MCP configuration file: Claude Desktop's shape, ${env:NAME}, per-server options, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.mcp_client import constraint_schema, sanitize_name
from tools.mcp_config import McpConfigError, config_path, load_config, parse_config


def test_claude_desktop_shape_and_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCS_TOKEN", "s3cret")
    servers = parse_config(
        {
            "mcpServers": {
                "time": {"command": "uvx", "args": ["mcp-server-time"], "env": {"TZ": "UTC"}, "cwd": "/tmp"},
                "docs": {
                    "url": "https://example.com/mcp",
                    "headers": {"Authorization": "Bearer ${env:DOCS_TOKEN}"},
                    "disabledTools": ["delete"],
                    "timeout": 5,
                    "confirm": True,
                },
                "old": {"url": "https://example.com/sse", "type": "sse", "tools": ["search"]},
                "off": {"command": "x", "disabled": True},
            }
        }
    )
    by_name = {s.name: s for s in servers}
    assert set(by_name) == {"time", "docs", "old"}
    assert by_name["time"].transport == "stdio" and by_name["time"].args == ("mcp-server-time",)
    assert by_name["time"].env == {"TZ": "UTC"} and by_name["time"].cwd == "/tmp"
    docs = by_name["docs"]
    assert docs.transport == "streamable-http" and docs.headers["Authorization"] == "Bearer s3cret"
    assert docs.timeout == 5 and docs.confirm and not docs.offers("delete") and docs.offers("search")
    assert (
        by_name["old"].transport == "sse"
        and by_name["old"].offers("search")
        and not by_name["old"].offers("x")
    )
    assert by_name["time"].timeout == 60
    assert "s3cret" not in docs.describe()


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ({"command": "x", "url": "http://a"}, "either"),
        ({"args": ["a"]}, "either"),
        ({"command": "x", "timeout": 0}, "timeout"),
        ({"command": "x", "args": "a b"}, "list of strings"),
        ({"command": "x", "colour": "red"}, "unknown keys"),
        ({"url": "http://a", "type": "stdio"}, "does not fit"),
        (
            {"command": "x", "env": {"A": "${env:WORKBENCH_TEST_SURELY_UNSET}"}},
            "WORKBENCH_TEST_SURELY_UNSET is not set",
        ),
    ],
)
def test_bad_entries_are_named(entry: dict[str, object], says: str) -> None:
    with pytest.raises(McpConfigError, match="server 'bad'") as caught:
        parse_config({"mcpServers": {"bad": entry}})
    assert says in str(caught.value)


def test_file_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(McpConfigError, match="cannot be read"):
        load_config(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(McpConfigError, match="not valid JSON"):
        load_config(bad)
    monkeypatch.setenv("WORKBENCH_MCP_CONFIG", str(bad))
    assert config_path() == bad
    assert config_path(tmp_path / "other.json") == tmp_path / "other.json"
    monkeypatch.delenv("WORKBENCH_MCP_CONFIG")
    assert config_path() is None


def test_names_are_sanitised() -> None:
    assert sanitize_name("weird.name with spaces") == "weird_name_with_spaces"
    assert sanitize_name("x" * 100) == "x" * 64
    assert sanitize_name("") == "tool"


def test_constraint_schema_drops_what_the_engines_cannot_hold() -> None:
    schema = {
        "type": "object",
        "properties": {
            "path": {"type": "string", "pattern": "^/", "format": "uri"},
            "node": {"$ref": "#/$defs/node"},
            "count": {"type": "integer", "minimum": 1},
        },
        "required": ["path"],
        "$defs": {"node": {"type": "object"}},
    }
    held = constraint_schema(schema)
    assert held["properties"]["path"] == {"type": "string"}
    assert held["properties"]["node"] == {}
    assert held["properties"]["count"] == {"type": "integer", "minimum": 1}
    assert "$defs" not in held and held["required"] == ["path"]
    assert constraint_schema({"oneOf": []}) == {"type": "object", "properties": {}}
