"""A stdio MCP server of our own that misbehaves on request: crashes, hangs, floods, fails, shows images.

Run as ``python misbehaving_server.py [MODE]``. MODE ``normal`` (default) serves the tools below;
``garbage`` writes junk on stdout and never answers; ``hang`` never answers; ``exit`` exits at once
with a message on stderr; ``slow-start`` sleeps 3 s first. The tool ``add_tool_later`` changes the
tool list and sends ``notifications/tools/list_changed``; ``count`` reports progress and notes a
cancellation; ``environment`` tells what the process's environment holds.
"""

from __future__ import annotations

import base64
import os
import struct
import sys
import time
import zlib

MODE = sys.argv[1] if len(sys.argv) > 1 else "normal"
print(f"misbehaving server starting in mode {MODE}", file=sys.stderr, flush=True)
if MODE == "exit":
    print("fatal: cannot start (on purpose)", file=sys.stderr, flush=True)
    sys.exit(3)
if MODE == "garbage":
    while True:
        sys.stdout.write("this is not JSON-RPC at all {{{\n")
        sys.stdout.flush()
        time.sleep(0.05)
if MODE == "hang":
    time.sleep(3600)
if MODE == "slow-start":
    time.sleep(3)

from mcp.server.mcpserver import Context, MCPServer  # noqa: E402
from mcp_types import ImageContent, TextContent  # noqa: E402

server = MCPServer("misbehaving")


def _png(width: int = 2, height: int = 2) -> bytes:
    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


@server.tool()
def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


@server.tool()
def crash() -> str:
    """Kill the server process at once."""
    print("crashing now (on purpose)", file=sys.stderr, flush=True)
    os._exit(1)


@server.tool()
def hang(seconds: float = 3600) -> str:
    """Sleep for a long time before answering."""
    time.sleep(seconds)
    return "woke up"


@server.tool()
def flood(chars: int = 5_000_000) -> str:
    """Answer with a huge text."""
    return "x" * chars


@server.tool()
def fail() -> str:
    """Raise an error (the result has isError)."""
    raise ValueError("failing on purpose")


@server.tool()
def picture() -> list[TextContent | ImageContent]:
    """Return a small picture and a caption."""
    data = base64.b64encode(_png()).decode()
    return [
        TextContent(type="text", text="a red square"),
        ImageContent(type="image", data=data, mime_type="image/png"),
    ]


@server.tool(name="weird.name with spaces")
def weird() -> str:
    """A tool whose name needs sanitising."""
    return "weird ok"


@server.tool()
async def count(ctx: Context, steps: int = 5, delay: float = 0.2, marker: str = "") -> str:
    """Count slowly, reporting progress after each step; writes 'cancelled' to ``marker`` when cancelled."""
    import anyio

    try:
        for step in range(1, steps + 1):
            await ctx.report_progress(step, steps, f"step {step} of {steps}")
            await anyio.sleep(delay)
    except anyio.get_cancelled_exc_class():
        if marker:
            with open(marker, "w") as handle:
                handle.write("cancelled")
        raise
    return f"counted to {steps}"


@server.tool()
async def three_steps(ctx: Context) -> str:
    """Take three slow steps, reporting progress after each (no arguments: a model's call is exact)."""
    import anyio

    for step in range(1, 4):
        await ctx.report_progress(step, 3, f"step {step} of 3")
        await anyio.sleep(1.5)
    return "three steps taken"


@server.tool()
async def wait_for_cancel(ctx: Context) -> str:
    """Report progress for a minute; when cancelled, write 'cancelled' to the file $CANCEL_MARKER."""
    import anyio

    try:
        for second in range(1, 121):
            await ctx.report_progress(second, None, f"waiting {second}")
            await anyio.sleep(0.5)
    except anyio.get_cancelled_exc_class():
        with open(os.environ["CANCEL_MARKER"], "w") as handle:
            handle.write("cancelled")
        raise
    return "never cancelled"


@server.tool()
def environment(name: str) -> str:
    """Return an environment variable of this server's process, or '(unset)'."""
    return os.environ.get(name, "(unset)")


@server.tool()
async def add_tool_later(ctx: Context) -> str:
    """Add a tool named 'late' and tell the client the list changed."""

    def late() -> str:
        """A tool that appeared later."""
        return "late ok"

    server.add_tool(late)
    await ctx.notify_tools_changed()  # 2026-07-28 clients hear it on their subscriptions/listen stream
    await ctx.session.send_tool_list_changed()  # older ones as notifications/tools/list_changed
    return "added"


if __name__ == "__main__":
    server.run()
