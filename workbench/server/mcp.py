"""Workbench as an MCP server: the registry's tools, and (``--code``) sandboxed Python kept per session.

Built on the official ``mcp`` SDK's low-level :class:`mcp.server.lowlevel.Server`: the tools are listed
with their schemas as they are (``inputSchema`` = the parameters the registry validates against; an
``outputSchema`` where the return type is annotated, with ``structuredContent`` in the results, see
:mod:`workbench.server.mcp_output`) and called through :meth:`tools.ToolRegistry.call`, so tool files
still run in the tool host and every failure is an ``isError`` result with the registry's message.
Tools that came from MCP servers are not offered again (no loops).

With ``code=True`` a ``python`` tool runs code in a sandboxed kernel (:class:`kernel.KernelPool`, as
Code mode uses it), one per MCP session: variables survive between calls, text outputs come back as
text content and figures as image content, a run past ``code_timeout`` is interrupted and the text
says so, and the kernel is shut down when the session ends. ``reset_python`` restarts it;
``upload_file`` and ``download_file`` write and read its work folder.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from tools.mcp_client import is_mcp_spec
from workbench.messages import ToolCall
from workbench.server.mcp_output import output_type

if TYPE_CHECKING:
    from mcp.server.lowlevel import Server

    from kernel import Execution, KernelPool
    from tools import ToolRegistry

STDIO_SESSION = "mcp-stdio"
"""The kernel key of the one session a stdio server has."""
NO_SESSION = (
    "The {tool} tool keeps a Python kernel per MCP session, and this request belongs to none: on the "
    "2026-07-28 protocol, Streamable HTTP has no sessions (no Mcp-Session-Id; each request stands alone). "
    "Connect with the 2025 protocol (the initialize handshake, e.g. the SDK's Client(..., mode='legacy')), "
    "or run `workbench mcp --code` over stdio."
)
PYTHON_TOOL = "python"
RESET_TOOL = "reset_python"
UPLOAD_TOOL = "upload_file"
DOWNLOAD_TOOL = "download_file"
CODE_TOOLS = (PYTHON_TOOL, UPLOAD_TOOL, DOWNLOAD_TOOL, RESET_TOOL)
DEFAULT_CODE_TIMEOUT_S = 30.0
"""As Code mode (``CodeOptions.timeout``)."""
MAX_TEXT_CHARS = 100_000

_PYTHON_SCHEMA = {
    "type": "object",
    "properties": {"code": {"type": "string", "description": "Python (IPython) source to run."}},
    "required": ["code"],
    "additionalProperties": False,
}

_UPLOAD_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "description": "The file's name (or a path inside the work folder)."},
        "content": {
            "type": "string",
            "description": "The file's content: text, or base64 with encoding=base64.",
        },
        "encoding": {"type": "string", "enum": ["text", "base64"], "default": "text"},
    },
    "required": ["name", "content"],
    "additionalProperties": False,
}
_DOWNLOAD_SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string", "description": "The file's name in the work folder."}},
    "required": ["name"],
    "additionalProperties": False,
}


class CodeKernels:
    """One sandboxed kernel per MCP session, from a :class:`kernel.KernelPool`; freed when the session ends.

    Over stdio the session is the connection: its kernel is shut down when the client disconnects
    (the server's lifespan ends). Idle kernels are reaped after the pool's idle timeout.

    Args:
        max_kernels: Sessions with a kernel at once.
        warm_spare: Start a kernel ahead of the first call.
    """

    def __init__(self, max_kernels: int = 4, warm_spare: bool = True) -> None:
        from kernel import KernelPool
        from workbench.kernels import gateway_config

        self.pool: KernelPool = KernelPool(
            max_kernels=max_kernels,
            warm_spare=warm_spare,
            limit_hint="or end another MCP session (each --code session keeps one kernel).",
            gateway=gateway_config(),
        )

    def execute(self, key: str, code: str, timeout: float) -> Execution:
        """Run ``code`` in the session's kernel (started on first use)."""
        return self.pool.get(key).execute(code, timeout=timeout)

    def upload(self, key: str, name: str, data: bytes) -> str:
        """Save ``data`` as ``name`` in the session's work folder; return the path the code sees."""
        return str(self.pool.get(key).save_file(name, data))

    def download(self, key: str, name: str) -> bytes:
        """Read ``name`` from the session's work folder."""
        return self.pool.get(key).read_file(name)

    def reset(self, key: str) -> None:
        """Restart the session's kernel (its variables are lost)."""
        self.pool.get(key).restart()

    def release(self, key: str) -> None:
        """Shut the session's kernel down."""
        self.pool.release(key)

    def close(self) -> None:
        """Shut every kernel down."""
        self.pool.shutdown_all()


def exported_specs(registry: ToolRegistry) -> dict[str, Any]:
    """The registry's tools that are offered over MCP: every one except those from MCP servers."""
    return {spec.name: spec for spec in registry.specs() if not is_mcp_spec(spec)}


def build_server(
    registry: ToolRegistry | None,
    *,
    code: bool = False,
    code_timeout: float = DEFAULT_CODE_TIMEOUT_S,
    kernels: CodeKernels | None = None,
    session_key: Callable[[Any], str | None] = lambda ctx: STDIO_SESSION,
) -> Server[Any]:
    """Return the MCP server (not yet running) for ``registry``'s tools and, with ``code``, Python.

    Args:
        registry: The tools to offer; None offers none.
        code: Offer the ``python`` and ``reset_python`` tools.
        code_timeout: Seconds a ``python`` call may run before it is interrupted.
        kernels: The kernels of the sessions (made here when ``code`` and None).
        session_key: The MCP session a request belongs to, from its context (over stdio the whole
            connection is one session: the SDK's per-request ``ctx.session`` is not, on the 2026 protocol;
            over HTTP, :func:`workbench.server.mcp_http.http_session_key`). None: the request has no session, so the code tools
            are not listed and a call to them is refused, saying why.
    """
    import anyio
    import mcp_types as types
    from mcp.server.lowlevel import Server

    if code and kernels is None:
        kernels = CodeKernels()

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        tools = []
        if registry is not None:
            for spec in exported_specs(registry).values():
                typed = output_type(spec.returns)
                tools.append(
                    types.Tool(
                        name=spec.name,
                        description=spec.description,
                        input_schema=_input_schema(spec.parameters),
                        output_schema=typed.schema if typed is not None else None,
                    )
                )
        if code and session_key(ctx) is not None:
            tools.append(
                types.Tool(
                    name=PYTHON_TOOL,
                    description=(
                        "Run Python in a sandboxed, stateful IPython kernel kept for this session: variables, "
                        "imports and files survive between calls. numpy, pandas and matplotlib are available; "
                        "figures come back as images. No network. "
                        f"A run is interrupted after {code_timeout:g} seconds."
                    ),
                    input_schema=_PYTHON_SCHEMA,
                )
            )
            tools.append(
                types.Tool(
                    name=UPLOAD_TOOL,
                    description="Save a file in the Python session's work folder, where the code can open it by name.",
                    input_schema=_UPLOAD_SCHEMA,
                )
            )
            tools.append(
                types.Tool(
                    name=DOWNLOAD_TOOL,
                    description="Read a file from the Python session's work folder (text as text, other files as a blob).",
                    input_schema=_DOWNLOAD_SCHEMA,
                )
            )
            tools.append(
                types.Tool(
                    name=RESET_TOOL,
                    description="Restart this session's Python kernel: every variable and import is lost.",
                    input_schema={"type": "object", "properties": {}, "additionalProperties": False},
                )
            )
        return types.ListToolsResult(tools=tools)

    async def call_tool(ctx: Any, params: Any) -> types.CallToolResult:
        name, arguments = params.name, dict(params.arguments or {})
        key = session_key(ctx) if code and name in CODE_TOOLS else None
        if code and name in CODE_TOOLS and key is None:
            return _error(NO_SESSION.format(tool=name))
        if kernels is not None and key is not None and name in (UPLOAD_TOOL, DOWNLOAD_TOOL):
            return await _file_tool(kernels, key, name, arguments)
        if kernels is not None and key is not None and name in (PYTHON_TOOL, RESET_TOOL):
            if name == RESET_TOOL:
                await anyio.to_thread.run_sync(kernels.reset, key)
                return types.CallToolResult(
                    content=[types.TextContent(type="text", text="The kernel was restarted.")]
                )
            source = arguments.get("code")
            if not isinstance(source, str):
                return _error('The python tool takes one argument, "code": the Python source to run.')
            try:
                execution = await anyio.to_thread.run_sync(kernels.execute, key, source, code_timeout)
            except Exception as exc:  # a kernel that cannot start, a full pool: say so, do not crash
                return _error(f"The kernel could not run the code: {exc}")
            return execution_result(execution)
        specs = exported_specs(registry) if registry is not None else {}
        if name not in specs:
            listing = ", ".join([*specs, *(CODE_TOOLS if code else [])]) or "(none)"
            return _error(f"There is no tool named {name!r}. The tools are: {listing}.")
        assert registry is not None
        result = await anyio.to_thread.run_sync(
            lambda: registry.call(ToolCall(name, arguments), enabled=set(specs))
        )
        content: list[types.ContentBlock] = [types.TextContent(type="text", text=result.content)]
        typed = output_type(specs[name].returns)
        if result.error or typed is None:
            return types.CallToolResult(content=content, is_error=result.error)
        try:
            structured = typed.structured(result.content)
        except ValueError as exc:
            return _error(
                f"The tool {name!r} returned {result.content[:200]!r}, but {exc}; fix the tool or its annotation."
            )
        return types.CallToolResult(content=content, structured_content=structured)

    @contextlib.asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[dict[str, Any]]:
        try:
            yield {}
        finally:
            if kernels is not None:
                await anyio.to_thread.run_sync(kernels.close)

    return Server(
        "workbench",
        version=_version(),
        instructions="Workbench's tools" + (" and a sandboxed, stateful Python kernel." if code else "."),
        lifespan=lifespan,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


def execution_result(execution: Execution) -> Any:
    """A kernel run as an MCP result: its text (with notes on time-outs and restarts) and its figures."""
    import mcp_types as types

    content: list[Any] = [types.TextContent(type="text", text=execution.for_model(MAX_TEXT_CHARS))]
    for png in execution.images:
        content.append(
            types.ImageContent(type="image", data=base64.b64encode(png).decode(), mime_type="image/png")
        )
    failed = execution.error is not None or execution.timed_out or (execution.restarted and not execution.ok)
    return types.CallToolResult(content=content, is_error=failed)


async def _file_tool(kernels: CodeKernels, key: str, name: str, arguments: dict[str, Any]) -> Any:
    """``upload_file`` and ``download_file``: the session's work folder, with the kernel package's checks."""
    import anyio
    import mcp_types as types

    from workbench.errors import USER_ERRORS

    file_name = arguments.get("name")
    if not isinstance(file_name, str) or not file_name:
        return _error('Give the file\'s "name".')
    try:
        if name == UPLOAD_TOOL:
            content = arguments.get("content")
            if not isinstance(content, str):
                return _error('Give the file\'s "content" as a string.')
            data = base64.b64decode(content) if arguments.get("encoding") == "base64" else content.encode()
            path = await anyio.to_thread.run_sync(kernels.upload, key, file_name, data)
            text = f"Saved {len(data)} bytes as {path}; the code can open it as {file_name!r}."
            return types.CallToolResult(content=[types.TextContent(type="text", text=text)])
        data = await anyio.to_thread.run_sync(kernels.download, key, file_name)
    except Exception as exc:
        if not isinstance(exc, (*USER_ERRORS, ValueError)):
            raise
        return _error(str(exc))
    try:
        return types.CallToolResult(content=[types.TextContent(type="text", text=data.decode("utf-8"))])
    except UnicodeDecodeError:
        blob = types.BlobResourceContents(uri=f"file:///{file_name}", blob=base64.b64encode(data).decode())
        return types.CallToolResult(content=[types.EmbeddedResource(type="resource", resource=blob)])


def _error(text: str) -> Any:
    import mcp_types as types

    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=True)


def _input_schema(parameters: dict[str, Any]) -> dict[str, Any]:
    """Our parameters schema as JSON Schema (``nullable`` spelled as ``anyOf``, extra arguments refused)."""
    from tools.arguments import validation_schema

    return validation_schema(parameters)


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("workbench")
    except metadata.PackageNotFoundError:
        return "0"


async def serve_stdio(server: Server[Any]) -> None:
    """Serve ``server`` over this process's stdin and stdout until the client closes them.

    The streams are read and written on the event loop (:mod:`workbench.server.mcp_stdio`) where they
    are pipes, as MCP clients start servers; else through the SDK's own threaded streams.
    """
    from mcp.server.stdio import stdio_server

    from workbench.server.mcp_stdio import pipe_streams

    async with pipe_streams() as streams:
        reader, writer = streams if streams is not None else (None, None)
        async with stdio_server(reader, writer) as (read_stream, write_stream):  # type: ignore[arg-type]
            await server.run(read_stream, write_stream, server.create_initialization_options())
