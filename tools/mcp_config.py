"""MCP servers as a tool source: the configuration file, in the shape Claude Desktop and Cursor use.

::

    {"mcpServers": {
        "time": {"command": "uvx", "args": ["mcp-server-time"], "env": {"TZ": "UTC"}, "cwd": "/tmp"},
        "docs": {"url": "https://example.com/mcp", "headers": {"Authorization": "Bearer ${env:DOCS_TOKEN}"},
                 "type": "streamable-http"}
    }}

Per server, Workbench also reads ``disabledTools`` (names left out), ``tools`` (an allow-list),
``timeout`` (seconds per call, default 60), ``connectTimeout`` (seconds to connect, default the
``timeout``), ``confirm`` (ask before each call),
``prefix`` (always name the tools ``server__tool``) and ``disabled`` (skip the server). Every string
may hold ``${env:NAME}``, replaced by that environment variable. The file comes from ``--mcp-config
FILE`` or ``WORKBENCH_MCP_CONFIG``. This module only reads and checks the file; it imports no MCP code.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.errors import ToolDefinitionError

CONFIG_VARIABLE = "WORKBENCH_MCP_CONFIG"
DEFAULT_TIMEOUT_S = 60.0
TRANSPORTS = ("stdio", "streamable-http", "sse")

_ENV_REFERENCE = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")
_KNOWN_KEYS = {
    "command", "args", "env", "cwd", "url", "headers", "type", "transport",
    "disabledTools", "tools", "timeout", "connectTimeout", "confirm", "prefix", "disabled",
    "description", "autoApprove", "alwaysAllow",
}  # fmt: skip


class McpConfigError(ToolDefinitionError):
    """The MCP configuration file cannot be read or a server entry in it is wrong."""


@dataclass(frozen=True)
class McpServerConfig:
    """One entry of ``mcpServers``.

    Attributes:
        name: The key of the entry (the server's name in tool names and messages).
        transport: ``stdio``, ``streamable-http`` or ``sse``.
        command: For stdio, the program to start.
        args: For stdio, its arguments.
        env: For stdio, the environment given to it (PATH and HOME are added when missing).
        cwd: For stdio, its working folder, or None.
        url: For HTTP transports, the endpoint.
        headers: For HTTP transports, headers sent with every request.
        disabled_tools: Tool names (as the server spells them) left out.
        allowed_tools: If not None, only these tool names are offered.
        timeout: Seconds a call may take.
        connect_timeout: Seconds connecting (start, handshake, listing the tools) may take.
        confirm: Ask the user before each call.
        prefix: Always name the tools ``server__tool``.
    """

    name: str
    transport: str
    command: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    disabled_tools: frozenset[str] = frozenset()
    allowed_tools: frozenset[str] | None = None
    timeout: float = DEFAULT_TIMEOUT_S
    connect_timeout: float = DEFAULT_TIMEOUT_S
    confirm: bool = False
    prefix: bool = False

    def offers(self, tool_name: str) -> bool:
        """Whether the configuration lets the model see the server's tool ``tool_name``."""
        if tool_name in self.disabled_tools:
            return False
        return self.allowed_tools is None or tool_name in self.allowed_tools

    def describe(self) -> str:
        """The command line or the URL, for messages (header values are never shown)."""
        if self.transport == "stdio":
            return " ".join([self.command or "", *self.args]).strip()
        return f"{self.url} ({self.transport})"


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The configuration file to read: ``explicit`` (``--mcp-config``), else ``WORKBENCH_MCP_CONFIG``, else None."""
    if explicit:
        return Path(explicit).expanduser()
    raw = os.environ.get(CONFIG_VARIABLE, "").strip()
    return Path(raw).expanduser() if raw else None


def load_config(path: str | os.PathLike[str]) -> list[McpServerConfig]:
    """Read an MCP configuration file and return its enabled servers.

    Raises:
        McpConfigError: If the file is missing, not JSON or an entry is wrong (the message names it).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise McpConfigError(
            f"The MCP configuration {path} cannot be read ({exc.strerror or exc}); fix --mcp-config or "
            f"{CONFIG_VARIABLE}."
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise McpConfigError(
            f"The MCP configuration {path} is not valid JSON (line {exc.lineno}: {exc.msg}); it should "
            'look like {"mcpServers": {"name": {"command": "...", "args": [...]}}}.'
        ) from None
    return parse_config(data, where=str(path))


def parse_config(data: Any, *, where: str = "the MCP configuration") -> list[McpServerConfig]:
    """Check a configuration already parsed from JSON; see :func:`load_config`."""
    if not isinstance(data, dict) or not isinstance(data.get("mcpServers", {}), dict):
        raise McpConfigError(
            f'{where}: expected an object with "mcpServers": {{"name": {{...}}}}, as Claude Desktop writes it.'
        )
    servers = data.get("mcpServers", {})
    out = []
    for name, entry in servers.items():
        if not isinstance(entry, dict):
            raise McpConfigError(f"{where}: server {name!r} must be an object, not {type(entry).__name__}.")
        if entry.get("disabled") is True:
            continue
        out.append(_server(str(name), entry, where))
    return out


def _server(name: str, entry: dict[str, Any], where: str) -> McpServerConfig:
    here = f"{where}: server {name!r}"
    unknown = sorted(set(entry) - _KNOWN_KEYS)
    if unknown:
        raise McpConfigError(
            f"{here} has unknown keys {unknown}; the keys are command, args, env, cwd (a local server) or url, "
            "headers, type (a remote one), and disabledTools, tools, timeout, confirm, prefix, disabled."
        )
    entry = _expand(entry, here)
    has_command, has_url = "command" in entry, "url" in entry
    if has_command == has_url:
        raise McpConfigError(
            f'{here} needs either "command" (a local server) or "url" (a remote one), not both.'
        )
    kind = str(entry.get("type") or entry.get("transport") or ("stdio" if has_command else "streamable-http"))
    kind = {
        "http": "streamable-http",
        "streamableHttp": "streamable-http",
        "streamable_http": "streamable-http",
    }.get(kind, kind)
    if kind not in TRANSPORTS or (kind == "stdio") != has_command:
        raise McpConfigError(
            f'{here}: "type" {kind!r} does not fit; use "stdio" with "command", and "streamable-http" or "sse" '
            'with "url".'
        )
    timeout = _seconds(entry, "timeout", DEFAULT_TIMEOUT_S, here)
    connect_timeout = _seconds(entry, "connectTimeout", timeout, here)
    allowed = entry.get("tools")
    return McpServerConfig(
        name=name,
        transport=kind,
        command=_string(entry, "command", here) if has_command else None,
        args=tuple(_strings(entry.get("args", []), f'{here}: "args"')),
        env=_string_map(entry.get("env", {}), f'{here}: "env"'),
        cwd=_string(entry, "cwd", here) if entry.get("cwd") is not None else None,
        url=_string(entry, "url", here) if has_url else None,
        headers=_string_map(entry.get("headers", {}), f'{here}: "headers"'),
        disabled_tools=frozenset(_strings(entry.get("disabledTools", []), f'{here}: "disabledTools"')),
        allowed_tools=None if allowed is None else frozenset(_strings(allowed, f'{here}: "tools"')),
        timeout=timeout,
        connect_timeout=connect_timeout,
        confirm=bool(entry.get("confirm", False)),
        prefix=bool(entry.get("prefix", False)),
    )


def _expand(value: Any, here: str) -> Any:
    """Replace ``${env:NAME}`` in every string of ``value``."""
    if isinstance(value, str):

        def one(match: re.Match[str]) -> str:
            variable = match.group(1)
            if variable not in os.environ:
                raise McpConfigError(
                    f"{here} uses ${{env:{variable}}}, but {variable} is not set; export it or edit the file."
                )
            return os.environ[variable]

        return _ENV_REFERENCE.sub(one, value)
    if isinstance(value, list):
        return [_expand(v, here) for v in value]
    if isinstance(value, dict):
        return {k: _expand(v, here) for k, v in value.items()}
    return value


def _seconds(entry: dict[str, Any], key: str, default: float, here: str) -> float:
    value = entry.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise McpConfigError(f'{here}: "{key}" must be a positive number of seconds, not {value!r}.')
    return float(value)


def _string(entry: dict[str, Any], key: str, here: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value:
        raise McpConfigError(f'{here}: "{key}" must be a non-empty string.')
    return value


def _strings(value: Any, here: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise McpConfigError(f"{here} must be a list of strings.")
    return list(value)


def _string_map(value: Any, here: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, str | int | float) for v in value.values()):
        raise McpConfigError(f"{here} must be an object of strings.")
    return {str(k): str(v) for k, v in value.items()}
