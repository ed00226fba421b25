"""Tools from MCP servers: connections kept in the background, their tools as :class:`ToolSpec` objects.

:class:`McpTools` holds one :class:`McpServer` per configured server (see :mod:`tools.mcp_config`).
Each connects in the background through the official ``mcp`` SDK's ``Client`` (stdio, Streamable
HTTP with headers, legacy SSE as the fallback), on one event loop in a daemon thread; calls from the
loops' threads are handed to that loop. A server that fails to start, dies, hangs or answers garbage
is marked failed with the reason (and, for stdio, its last stderr lines); its calls become error
observations, and it is reconnected with back-off (1, 2, 4 ... 60 s). ``notifications/tools/list_changed``
refreshes its tools. The registry shows the tools of ready servers beside the Python tools
(:meth:`tools.registry.ToolRegistry.attach_mcp`).

A stdio server runs in its own process group (the SDK starts it in a new session) with only PATH and
HOME from our environment plus the ``env`` of its entry (:func:`child_environment`; a short launcher
drops the rest of the SDK's safe list, so LOGNAME, SHELL, TERM and USER do not reach it either); its
stderr goes to a log file. Importing this module does not import the SDK; connecting does.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import io
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, TextIO

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from tools.calling import CallControl
from tools.errors import CallSkippedError, InvalidArgumentsError, ToolCancelledError
from tools.mcp_config import McpConfigError, McpServerConfig, load_config
from tools.spec import ToolSpec
from workbench.errors import ToolCallError, ToolExecutionError

logger = logging.getLogger(__name__)

SOURCE_PREFIX = "mcp:"
"""A ToolSpec's ``source`` for an MCP tool is ``mcp:<server>``."""
MAX_RESULT_CHARS = 1_000_000
"""Text kept of one result; a server flooding its answer is cut here (the loop cuts further for the model)."""
MAX_BACKOFF_S = 60.0
STDERR_TAIL_LINES = 20
_NAME_CHARS = re.compile(r"[^a-zA-Z0-9_-]")
# Keywords our constraint engines (xgrammar, llama.cpp's grammar) are known to hold; the others are
# dropped from the schema that constrains the call and checked after it, against the full schema.
_CONSTRAINABLE = {
    "type", "properties", "required", "items", "enum", "const", "description", "title", "anyOf",
    "additionalProperties", "minimum", "maximum", "minItems", "maxItems", "default", "nullable",
    "minLength", "maxLength",
}  # fmt: skip


INHERITED_ENV = ("PATH", "HOME")
"""What a stdio server gets of our environment (besides its entry's ``env``)."""
_KEEP_VARIABLE = "WORKBENCH_MCP_ENV_KEEP"
# Runs first in the child: keeps only the variables named, then becomes the server (same process and group).
_LAUNCHER = Path(__file__).with_name("mcp_launcher.py")


def child_environment(config: McpServerConfig) -> dict[str, str]:
    """The environment of a stdio server: PATH and HOME from ours, then its entry's ``env`` over them."""
    inherited = {name: os.environ[name] for name in INHERITED_ENV if name in os.environ}
    return {**inherited, **config.env}


def _launch_parameters(config: McpServerConfig) -> tuple[str, list[str], dict[str, str]]:
    """The command, arguments and environment that start a stdio server with only its own environment.

    Raises:
        FileNotFoundError: If the command is not found (on the PATH it will be given, or at its path).
    """
    assert config.command is not None
    env = child_environment(config)
    command = config.command
    if os.sep in command:
        where = Path(config.cwd or ".") / command
        if not (where.is_file() and os.access(where, os.X_OK)):
            raise FileNotFoundError(command)
    elif shutil.which(command, path=env.get("PATH", os.defpath)) is None:
        raise FileNotFoundError(command)
    launcher = ["-I", "-S", str(_LAUNCHER), command, *config.args]
    return sys.executable, launcher, {**env, _KEEP_VARIABLE: json.dumps(list(env))}


class _CountedElsewhere(logging.Filter):
    """Drops the SDK's traceback for each unreadable stdout line: the server's state counts them instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Failed to parse JSONRPC message")


_GARBAGE_FILTER = _CountedElsewhere()


class ServerState(str, Enum):
    """Where one MCP server stands."""

    CONNECTING = "connecting"
    READY = "ready"
    FAILED = "failed"
    CLOSED = "closed"


class McpToolError(ToolExecutionError):
    """The MCP server answered the call with ``isError`` (the tool itself failed)."""


class McpServerError(ToolExecutionError):
    """The MCP server is not ready, died during the call or answered with a protocol error."""


class McpTimeoutError(ToolExecutionError):
    """The MCP server did not answer the call within its timeout."""


class ConfirmationNeededError(ToolCallError):
    """The server's configuration asks for confirmation before each call, and none was given."""


@dataclass
class CallOutcome:
    """What one call returned: text for the model, images (PNG bytes), and whether the tool failed."""

    text: str
    images: list[bytes] = field(default_factory=list)
    is_error: bool = False


Confirm = Callable[[str, str, dict[str, Any]], bool]
"""Asked before a call to a ``confirm`` server: ``(server, tool, arguments) -> run it?``."""


class _Loop:
    """One asyncio event loop in a daemon thread, shared by the servers of one :class:`McpTools`."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="mcp-client", daemon=True)
        self.thread.start()

    def submit(self, coro: Any) -> concurrent.futures.Future[Any]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def stop(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)


class McpServer:
    """One configured MCP server: its connection, state, tools and stderr log.

    Args:
        config: The server's entry.
        loop: The event loop its connection lives on.
        log_dir: Where a stdio server's stderr is written (``<name>.stderr.log``).
        on_change: Called (from the loop's thread) when its state or tools change.
    """

    def __init__(
        self, config: McpServerConfig, loop: _Loop, log_dir: Path, on_change: Callable[[], None]
    ) -> None:
        self.config = config
        self.name = config.name
        self.state = ServerState.CONNECTING
        #: Why the server failed (or the last failure while it reconnects), else "".
        self.error = ""
        #: The server's tools (``mcp_types.Tool``), as listed and allowed by the configuration.
        self.tools: list[Any] = []
        self.attempts = 0
        #: The protocol version agreed on the last connection ("" before one).
        self.protocol_version = ""
        #: Lines the server wrote on stdout that were not MCP messages, in this attempt.
        self.garbage = 0
        self.log_path: Path | None = (
            log_dir / f"{_safe_name(self.name)}.stderr.log" if config.command else None
        )
        self._loop = loop
        self._on_change = on_change
        self._client: Any = None
        self._wake: asyncio.Event | None = None
        self._lost: asyncio.Event | None = None
        self._closing = False
        self._first_attempt = threading.Event()
        self._task: concurrent.futures.Future[Any] | None = None
        self._log: TextIO | None = None

    # --- public -----------------------------------------------------------------------------------
    def start(self) -> None:
        """Start connecting in the background."""
        self._task = self._loop.submit(self._supervise())

    def wait_first_attempt(self, timeout: float | None = None) -> bool:
        """Wait until the first connection attempt has succeeded or failed."""
        return self._first_attempt.wait(timeout)

    @property
    def settled(self) -> bool:
        """Whether the first connection attempt is over."""
        return self._first_attempt.is_set()

    def reconnect(self) -> None:
        """Drop the connection (if any) and connect again now."""
        self._loop.loop.call_soon_threadsafe(self._reconnect_now)

    def close(self) -> None:
        """Disconnect for good (a stdio server is stopped)."""
        self._closing = True
        self._loop.loop.call_soon_threadsafe(self._reconnect_now)
        if self._task is not None:
            with contextlib.suppress(Exception):
                self._task.result(10)
        self.state = ServerState.CLOSED
        if self._log is not None:
            self._log.close()

    def stderr_tail(self, lines: int = STDERR_TAIL_LINES) -> str:
        """The last lines the server wrote to stderr ("" for remote servers or none)."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as handle:
            handle.seek(0, io.SEEK_END)
            handle.seek(max(0, handle.tell() - 8192))
            text = handle.read().decode("utf-8", "replace")
        return "\n".join(text.splitlines()[-lines:])

    def describe_state(self) -> str:
        """One line: ``ready with 2 tools``, ``connecting``, ``failed: <reason>``."""
        if self.state is ServerState.READY:
            return f"ready with {len(self.tools)} tool{'s' if len(self.tools) != 1 else ''}"
        if self.state is ServerState.FAILED:
            return f"failed: {self.error}"
        if self.state is ServerState.CONNECTING and self.error:
            return f"connecting again (last failure: {self.error})"
        return self.state.value

    def call(
        self, tool: str, arguments: dict[str, Any], timeout: float, control: CallControl | None = None
    ) -> CallOutcome:
        """Call the server's tool ``tool`` (its own spelling) and wait for the result.

        With ``control``, the server's progress reports reach ``control.progress`` and
        ``control.cancel()`` abandons the call, which makes the SDK send ``notifications/cancelled``.

        Raises:
            McpServerError: If the server is not ready or the connection broke during the call.
            McpTimeoutError: If no answer came within ``timeout`` seconds.
            ToolCancelledError: If ``control`` cancelled the call.
        """
        if self.state is not ServerState.READY or self._client is None:
            raise McpServerError(self._unavailable())
        future = self._loop.submit(self._call(tool, arguments, timeout, control))
        if control is not None:
            control.on_cancel(future.cancel)  # cancels the task: the SDK tells the server
        try:
            return future.result(timeout + 10)
        except concurrent.futures.CancelledError:
            raise ToolCancelledError(
                f"The user stopped the call to {tool!r}; MCP server {self.name!r} was told to cancel it."
            ) from None
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise McpTimeoutError(self._timeout_message(tool, timeout)) from None

    # --- the connection ----------------------------------------------------------------------------
    def _unavailable(self) -> str:
        tail = self.stderr_tail(5)
        stderr = f" Its last stderr lines: {tail}" if tail else ""
        if self.state is ServerState.CONNECTING and not self.error:
            return f"The MCP server {self.name!r} is still connecting; try again in a moment."
        return (
            f"The MCP server {self.name!r} ({self.config.describe()}) is not available: "
            f"{self.error or self.state.value}. Workbench keeps trying to reconnect; answer without its tools "
            f"meanwhile.{stderr}"
        )

    def _timeout_message(self, tool: str, timeout: float) -> str:
        return (
            f"The tool {tool!r} of MCP server {self.name!r} did not answer within {timeout:g} seconds, so the "
            "call was cancelled. Try simpler arguments, or answer without this tool."
        )

    def _changed(self) -> None:
        with contextlib.suppress(Exception):
            self._on_change()

    def _reconnect_now(self) -> None:
        if self._lost is not None:
            self._lost.set()
        if self._wake is not None:
            self._wake.set()

    async def _supervise(self) -> None:
        import anyio

        self._wake, self._lost = asyncio.Event(), asyncio.Event()
        delay = 1.0
        while not self._closing:
            self.attempts += 1
            self.garbage = 0
            self.state = ServerState.CONNECTING
            self._lost.clear()
            self._changed()
            started = time.monotonic()
            try:
                await self._connect_and_hold(anyio)
            except Exception as exc:  # any failure of the server is a state, never a crash
                self.error = _describe_failure(exc, self)
                logger.info("MCP server %r failed: %s", self.name, self.error)
            finally:
                self._client = None
            if self._closing:
                break
            self.state = ServerState.FAILED
            self._first_attempt.set()
            self._changed()
            if time.monotonic() - started > 2 * MAX_BACKOFF_S:
                delay = 1.0  # it ran a good while: restart quickly
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
            delay = min(delay * 2, MAX_BACKOFF_S)
        self.state = ServerState.CLOSED
        self._first_attempt.set()
        self._changed()

    async def _connect_and_hold(self, anyio: Any) -> None:
        """Connect, list the tools, then hold the connection until it is lost or closed."""
        assert self._lost is not None
        errors: list[BaseException] = []
        for transport in self._transports():
            connected = False
            with anyio.CancelScope() as scope:
                # Connecting past the timeout cancels the attempt (a server that never answers).
                timer = asyncio.get_running_loop().call_later(self.config.connect_timeout, scope.cancel)
                try:
                    from mcp import Client

                    async with Client(
                        transport,
                        message_handler=self._on_message,
                        read_timeout_seconds=self.config.connect_timeout,
                    ) as client:
                        await self._list_tools(client)
                        self.protocol_version = str(client.protocol_version)
                        connected = True
                        timer.cancel()
                        self._client = client
                        self.error = ""
                        self.state = ServerState.READY
                        self._first_attempt.set()
                        self._changed()
                        async with anyio.create_task_group() as group:
                            group.start_soon(self._listen, client)
                            await self._lost.wait()
                            group.cancel_scope.cancel()
                        self._client = None
                        if not self._closing and not self.error:
                            self.error = "the connection was dropped"
                    if not self._closing:
                        raise ConnectionError(self.error or "the connection ended")
                    return
                except Exception as exc:
                    if connected or self._closing:
                        raise
                    errors.append(exc)
                finally:
                    timer.cancel()
            if scope.cancelled_caught and not connected:
                errors.append(
                    TimeoutError(
                        f"it did not finish connecting within {self.config.connect_timeout:g} seconds"
                    )
                )
        raise errors[0] if errors else ConnectionError("no transport")

    def _transports(self) -> Iterable[Any]:
        """The transports to try, in order: stdio, or Streamable HTTP then legacy SSE (or SSE alone)."""
        config = self.config
        if config.transport == "stdio":
            from mcp.client.stdio import StdioServerParameters, stdio_client

            assert config.command is not None and self.log_path is not None
            command, args, env = _launch_parameters(config)
            params = StdioServerParameters(command=command, args=args, env=env, cwd=config.cwd)
            if self._log is None:
                self._log = self.log_path.open("a", encoding="utf-8")  # the child writes into it directly
            self._log.write(f"--- start {self.attempts}: {config.describe()}\n")
            self._log.flush()
            yield stdio_client(params, errlog=self._log)
            return
        assert config.url is not None
        if config.transport == "streamable-http":
            from mcp.client.streamable_http import streamable_http_client
            from mcp.shared._httpx_utils import create_mcp_http_client

            yield streamable_http_client(
                config.url, http_client=create_mcp_http_client(headers=dict(config.headers))
            )
        from mcp.client.sse import sse_client

        yield sse_client(config.url, headers=dict(config.headers))

    async def _list_tools(self, client: Any) -> None:
        tools: list[Any] = []
        cursor = None
        for _ in range(100):
            page = await client.list_tools(cursor=cursor, cache_mode="refresh")
            tools.extend(page.tools)
            cursor = page.next_cursor
            if not cursor:
                break
        self.tools = [t for t in tools if self.config.offers(t.name)]

    async def _listen(self, client: Any) -> None:
        """On the 2026 protocol, change notifications come on a ``subscriptions/listen`` stream."""
        from mcp_types.version import MODERN_PROTOCOL_VERSIONS

        capability = getattr(client.server_capabilities, "tools", None)
        if client.protocol_version not in MODERN_PROTOCOL_VERSIONS or not getattr(
            capability, "list_changed", False
        ):
            return  # older servers send notifications/tools/list_changed to _on_message
        try:
            async with client.listen(tools_list_changed=True) as subscription:
                async for _event in subscription:
                    await self._list_tools(client)
                    self._changed()
        except Exception as exc:  # the stream is a convenience: the tools stay as listed
            logger.info("MCP server %r: listening for tool changes failed: %s", self.name, exc)

    async def _on_message(self, message: Any) -> None:
        import mcp_types

        if isinstance(message, mcp_types.ToolListChangedNotification) and self._client is not None:
            client = self._client
            try:
                await self._list_tools(client)
            except Exception as exc:
                logger.info("MCP server %r: refreshing its tools failed: %s", self.name, exc)
            self._changed()
        elif isinstance(message, Exception):
            self.garbage += 1
            logger.debug("MCP server %r sent something unreadable: %s", self.name, message)

    async def _call(
        self, tool: str, arguments: dict[str, Any], timeout: float, control: CallControl | None
    ) -> CallOutcome:
        import anyio
        from mcp import MCPError
        from mcp_types import CONNECTION_CLOSED

        client = self._client
        if client is None:
            raise McpServerError(self._unavailable())
        on_progress = None
        if control is not None and control.on_progress is not None:

            async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                control.progress(progress, total, message)

        try:
            with anyio.fail_after(timeout):
                result = await client.call_tool(
                    tool, arguments, read_timeout_seconds=timeout, progress_callback=on_progress
                )
        except TimeoutError:
            raise McpTimeoutError(self._timeout_message(tool, timeout)) from None
        except MCPError as exc:
            if exc.code == CONNECTION_CLOSED:
                self._lose(f"it stopped during a call to {tool!r} ({exc})")
                raise McpServerError(self._unavailable()) from None
            raise McpServerError(
                f"The MCP server {self.name!r} refused the call to {tool!r}: {exc} (code {exc.code})."
            ) from None
        except Exception as exc:  # a broken pipe, a result that does not parse: the connection is suspect
            self._lose(f"the call to {tool!r} failed: {type(exc).__name__}: {exc}")
            raise McpServerError(self._unavailable()) from None
        return render_result(result)

    def _lose(self, why: str) -> None:
        self.error = why
        self.state = ServerState.FAILED  # at once: no call goes to the dead connection meanwhile
        self._client = None
        self._changed()
        if self._lost is not None:
            self._lost.set()


def _describe_failure(exc: BaseException, server: McpServer) -> str:
    """A short reason for a failed connection, looking inside exception groups."""
    while getattr(exc, "exceptions", None):  # an exception group (from anyio's task groups)
        exc = exc.exceptions[0]  # type: ignore[attr-defined]
    if isinstance(exc, FileNotFoundError):
        return f"the command {server.config.command!r} was not found; install it or fix the configuration"
    text = str(exc) or type(exc).__name__
    if text == "Connection closed":
        text = "it closed the connection (the process ended?)"
    elif not isinstance(exc, TimeoutError | ConnectionError):
        text = f"{type(exc).__name__}: {text}"
    if server.garbage:
        text += f"; it wrote {server.garbage} lines on stdout that are not MCP messages"
    return text


# --- results --------------------------------------------------------------------------------------------
def render_result(result: Any) -> CallOutcome:
    """Turn a ``CallToolResult`` into text for the model and images for the page.

    Text content is the text; ``structuredContent`` comes as JSON (unless a text block already holds the
    same JSON); images are kept as PNG and named in the text; resource links and resources are listed.
    """
    parts: list[str] = []
    images: list[bytes] = []
    texts: list[str] = []
    for block in result.content or []:
        kind = getattr(block, "type", None)
        if kind == "text":
            parts.append(block.text)
            texts.append(block.text)
        elif kind == "image":
            png = _as_png(block.data)
            if png is not None:
                images.append(png)
            parts.append(f"[image {len(images) if png else '?'}: {block.mime_type}]")
        elif kind == "audio":
            parts.append(f"[audio: {block.mime_type}]")
        elif kind == "resource_link":
            detail = f" - {block.description}" if block.description else ""
            parts.append(f"[resource link: {block.name} {block.uri}{detail}]")
        elif kind == "resource":
            resource = block.resource
            text = getattr(resource, "text", None)
            if text is not None:
                parts.append(f"[resource {resource.uri}]\n{text}")
            else:
                parts.append(f"[resource {resource.uri}: {getattr(resource, 'mime_type', None) or 'binary'}]")
        else:
            parts.append(f"[{kind or 'unknown'} content]")
    structured = getattr(result, "structured_content", None)
    if structured is not None and not any(_same_json(t, structured) for t in texts):
        # The SDKs wrap a plain return value as {"result": value}, next to the same value as text.
        parts.append(json.dumps(structured, ensure_ascii=False))
    text = "\n".join(parts) if parts else "(no result)"
    if len(text) > MAX_RESULT_CHARS:
        text = f"{text[:MAX_RESULT_CHARS]}\n[... {len(text) - MAX_RESULT_CHARS} more characters cut ...]"
    return CallOutcome(text=text, images=images, is_error=bool(getattr(result, "is_error", False)))


def _same_json(text: str, value: Any) -> bool:
    if isinstance(value, dict) and set(value) == {"result"}:
        inner = value["result"]
        if text == inner or text == str(inner):
            return True
        value = inner
    try:
        return bool(json.loads(text) == value)
    except (ValueError, TypeError):
        return False


def _as_png(data: str) -> bytes | None:
    try:
        raw = base64.b64decode(data, validate=False)
    except (ValueError, TypeError):
        return None
    if raw.startswith(b"\x89PNG\r\n\x1a\n"):
        return raw
    try:
        from PIL import Image

        with Image.open(io.BytesIO(raw)) as image:
            out = io.BytesIO()
            image.save(out, format="PNG")
            return out.getvalue()
    except Exception:
        return None


# --- tools as specs -----------------------------------------------------------------------------------
def sanitize_name(name: str) -> str:
    """A tool name as ``^[a-zA-Z0-9_-]{1,64}$`` allows: other characters become ``_``, cut to 64."""
    clean = _NAME_CHARS.sub("_", name)[:64]
    return clean or "tool"


def _safe_name(name: str) -> str:
    return sanitize_name(name)


def constraint_schema(schema: Any) -> dict[str, Any]:
    """The input schema with only the keywords the constraint engines hold (the rest are checked after)."""
    out = _constrainable(schema)
    if not isinstance(out, dict) or out.get("type") != "object":
        return {"type": "object", "properties": {}}
    out.setdefault("properties", {})
    return out


def _constrainable(schema: Any) -> Any:
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key not in _CONSTRAINABLE:
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {k: _constrainable(v) for k, v in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = _constrainable(value)
        elif key == "anyOf" and isinstance(value, list):
            out[key] = [_constrainable(v) for v in value]
        else:
            out[key] = value
    if "$ref" in schema or "allOf" in schema or "oneOf" in schema:
        # Not held: the value is free for the engine and checked after the call.
        out.pop("type", None)
        out.pop("properties", None)
    return out


class McpTool:
    """The function behind one MCP tool's spec: calling it calls the server.

    ``McpTool(...)(**arguments)`` returns the text (or raises), so the tool stays a callable as the
    registry expects; :meth:`run_call` is what the registry uses, to keep images and error kinds.
    """

    def __init__(self, owner: McpTools, server: McpServer, tool: Any) -> None:
        self.owner = owner
        self.server = server
        self.remote_name: str = tool.name
        self.input_schema: dict[str, Any] = dict(tool.input_schema or {"type": "object"})
        try:
            self._validator: Draft202012Validator | None = Draft202012Validator(self.input_schema)
        except SchemaError:
            self._validator = None
        self.__name__ = sanitize_name(tool.name)
        self.__module__ = f"{SOURCE_PREFIX}{server.name}"
        self.__qualname__ = f"{server.name}.{tool.name}"

    def __call__(self, **arguments: Any) -> str:
        """Call the tool with the server's timeout and return its text."""
        outcome = self.run_call(arguments, self.server.config.timeout)
        return outcome.text

    @property
    def needs_confirmation(self) -> bool:
        """Whether the server's configuration asks the user before each call (``"confirm": true``)."""
        return self.server.config.confirm

    def run_call(
        self, arguments: dict[str, Any], timeout: float, control: CallControl | None = None
    ) -> CallOutcome:
        """Check the arguments against the full input schema, confirm if asked, call the server.

        A call to a ``confirm`` server runs when ``control.confirmed`` (the user chose Run in the app),
        else when :attr:`McpTools.confirm` says yes (``--yes``, a Python callback).

        Raises:
            InvalidArgumentsError: If the arguments break a rule of the schema the constraint did not hold.
            ConfirmationNeededError: If the server wants confirmation and it was not given.
            CallSkippedError: If the confirm callback said no.
            McpToolError: If the server answered with ``isError``.
            McpServerError, McpTimeoutError, ToolCancelledError: See :meth:`McpServer.call`.
        """
        if self._validator is not None:
            problems = sorted(self._validator.iter_errors(arguments), key=lambda e: list(e.path))
            if problems:
                where = "/".join(str(p) for p in problems[0].path) or "the arguments"
                raise InvalidArgumentsError(
                    f"The arguments of {self.remote_name!r} do not fit its schema at {where}: "
                    f"{problems[0].message}. Fix that argument and call again."
                )
        if self.needs_confirmation and not (control is not None and control.confirmed):
            confirm = self.owner.confirm
            if confirm is None:
                raise ConfirmationNeededError(
                    f"The tool {self.remote_name!r} of MCP server {self.server.name!r} needs the user's "
                    "confirmation before each call, and none was given (on the command line, pass --yes). "
                    "Answer without it."
                )
            if not confirm(self.server.name, self.remote_name, arguments):
                raise CallSkippedError(skipped_message(self.remote_name))
        outcome = self.server.call(self.remote_name, arguments, timeout, control)
        if outcome.is_error:
            raise McpToolError(
                f"The tool {self.remote_name!r} of MCP server {self.server.name!r} failed: {outcome.text}"
            )
        return outcome


class McpTools:
    """The MCP servers of one configuration, connecting in the background, and their tools as specs.

    Args:
        configs: The servers.
        log_dir: Where stdio servers' stderr logs go (a fresh temporary folder if None).
        confirm: Asked before each call to a server with ``"confirm": true``; None refuses those calls
            with an observation saying confirmation is needed (the CLI passes an always-yes for ``--yes``).
        errors: Problems met reading the configuration, shown as load errors.
    """

    def __init__(
        self,
        configs: Iterable[McpServerConfig],
        *,
        log_dir: Path | None = None,
        confirm: Confirm | None = None,
        errors: Iterable[tuple[str, str]] = (),
    ) -> None:
        self.confirm = confirm
        self.errors = list(errors)
        logging.getLogger("mcp.client.stdio").addFilter(_GARBAGE_FILTER)  # idempotent
        self.log_dir = log_dir or Path(tempfile.mkdtemp(prefix="workbench-mcp-"))
        self.version = 0
        self._loop: _Loop | None = None
        self._lock = threading.Lock()
        self._cache: tuple[int, frozenset[str], dict[str, ToolSpec]] | None = None
        self._tool_objects: dict[tuple[str, str, int], McpTool] = {}
        configs = list(configs)
        self._loop = _Loop() if configs else None
        self.servers: dict[str, McpServer] = {}
        for config in configs:
            assert self._loop is not None
            self.servers[config.name] = McpServer(config, self._loop, self.log_dir, self._bump)
        for server in self.servers.values():
            server.start()

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: Any) -> McpTools:
        """Start the servers of a configuration file; a bad file becomes one error and no server."""
        try:
            configs = load_config(path)
        except McpConfigError as exc:
            return cls([], errors=[(str(path), str(exc))], **kwargs)
        return cls(configs, **kwargs)

    def _bump(self) -> None:
        with self._lock:
            self.version += 1

    @property
    def connecting(self) -> bool:
        """Whether some server has not finished its first connection attempt."""
        return any(not s.settled for s in self.servers.values())

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every server's first attempt is over (each is bounded by its own timeout)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for server in self.servers.values():
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not server.wait_first_attempt(left):
                return False
        return True

    def specs(self, taken: Collection[str] = ()) -> dict[str, ToolSpec]:
        """The tools of the ready servers by name, named around ``taken`` (the Python tools' names).

        A tool keeps its (sanitised) name unless that name is taken by a Python tool or by another
        server's tool, or its server sets ``prefix``; then it is ``server__tool``.
        """
        key = frozenset(taken)
        with self._lock:
            cached = self._cache
            if cached is not None and cached[0] == self.version and cached[1] == key:
                return cached[2]
            version = self.version
        ready = [(s, list(s.tools)) for s in self.servers.values() if s.state is ServerState.READY]
        counts: dict[str, int] = {}
        for _, tools in ready:
            for tool in tools:
                base = sanitize_name(tool.name)
                counts[base] = counts.get(base, 0) + 1
        out: dict[str, ToolSpec] = {}
        for server, tools in ready:
            for tool in tools:
                name = sanitize_name(tool.name)
                if server.config.prefix or name in key or counts[name] > 1:
                    name = sanitize_name(f"{server.name}__{tool.name}")
                if name in out or name in key:
                    continue  # still taken after prefixing: the first one wins
                function = self._function(server, tool)
                out[name] = ToolSpec(
                    name=name,
                    description=(
                        tool.description or tool.title or f"{tool.name} (from MCP server {server.name})"
                    ),
                    parameters=constraint_schema(function.input_schema),
                    function=function,
                    source=f"{SOURCE_PREFIX}{server.name}",
                    timeout=server.config.timeout,
                )
        with self._lock:
            self._cache = (version, key, out)
        return out

    def _function(self, server: McpServer, tool: Any) -> McpTool:
        key = (server.name, tool.name, id(tool))
        function = self._tool_objects.get(key)
        if function is None:
            function = self._tool_objects[key] = McpTool(self, server, tool)
        return function

    def reconnect(self, name: str) -> None:
        """Reconnect one server now (the page's Reconnect)."""
        self.servers[name].reconnect()

    def close(self) -> None:
        """Disconnect every server (stdio servers are stopped) and end the loop."""
        for server in self.servers.values():
            server.close()
        if self._loop is not None:
            self._loop.stop()


def skipped_message(tool: str) -> str:
    """The observation of a call the user chose not to run."""
    return f"The user skipped this call to {tool!r}, so it did not run. Answer without it."


def is_mcp_spec(spec: ToolSpec) -> bool:
    """Whether a registry tool came from an MCP server (such tools are never re-exported by ``workbench mcp``)."""
    return isinstance(spec.function, McpTool)
