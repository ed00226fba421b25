"""MCP figures: the overhead of a tool call through ``workbench mcp`` over stdio against a direct call
to the same tool in the tool host, and the ``python`` tool's round trip against ``KernelSession.execute``.

Both sides run the same file tool (``echo``) in a tool host; the MCP side adds the official SDK's client,
the stdio pipe, the server's dispatch and a worker thread. Each round times the direct call, the MCP call
and the same call to the SDK's own bare server in turn, so a busy machine weighs on all three alike; the
load average is printed with the figures. Target: median overhead <= 5 ms on a warm connection.

Run: .venv/bin/python bench/bench_mcp.py [--runs 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mcp import Client, StdioServerParameters  # noqa: E402

from kernel import KernelSession  # noqa: E402
from tools import ToolRegistry  # noqa: E402
from workbench.messages import ToolCall  # noqa: E402

TOOL_FILE = '''from tools import tool


@tool
def echo(text: str) -> str:
    """Return the text.

    Args:
        text: Any text.
    """
    return text
'''


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.2f} ms"


async def calls(folder: Path, runs: int, code_runs: int) -> tuple[dict[str, list[float]], list[float]]:
    """Time the same call three ways, taking turns each round, so the machine's load weighs on all alike:
    straight to the tool host, through ``workbench mcp`` over stdio, and to the SDK's own bare server."""
    registry = ToolRegistry()
    registry.load_path(folder)
    ours = StdioServerParameters(
        command=sys.executable,
        args=["-m", "workbench", "mcp", "--tools-path", str(folder), "--code"],
        env={"PYTHONPATH": str(ROOT)},
        cwd=str(ROOT),
    )
    bare = StdioServerParameters(
        command=sys.executable, args=[str(ROOT / "tests" / "mcp" / "misbehaving_server.py")], cwd=str(ROOT)
    )
    times: dict[str, list[float]] = {"direct": [], "mcp": [], "sdk": []}
    async with (
        Client(ours, read_timeout_seconds=120) as client,
        Client(bare, read_timeout_seconds=120) as sdk,
    ):
        for round_ in range(runs + 10):
            started = time.perf_counter()
            result = registry.call(ToolCall("echo", {"text": "hi"}))
            direct = time.perf_counter() - started
            assert result.content == "hi", result.content
            started = time.perf_counter()
            answer = await client.call_tool("echo", {"text": "hi"})
            through = time.perf_counter() - started
            assert answer.content[0].text == "hi"
            started = time.perf_counter()
            await sdk.call_tool("echo", {"text": "hi"})
            floor = time.perf_counter() - started
            if round_ >= 10:  # the first ones warm up
                for key, value in (("direct", direct), ("mcp", through), ("sdk", floor)):
                    times[key].append(value)
        await client.call_tool("python", {"code": "1"})  # starts (or takes) the session's kernel
        code = []
        for _ in range(code_runs):
            started = time.perf_counter()
            await client.call_tool("python", {"code": "1"})
            code.append(time.perf_counter() - started)
    registry.close()
    return times, code


def kernel_execute(runs: int) -> list[float]:
    with KernelSession() as session:
        for _ in range(5):
            session.execute("1")
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            session.execute("1")
            times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--code-runs", type=int, default=50)
    args = parser.parse_args()
    load = f"{os.getloadavg()[0]:.1f}"
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "echo_tool.py").write_text(TOOL_FILE)
        times, code = asyncio.run(calls(folder, args.runs, args.code_runs))
    execute = kernel_execute(args.code_runs)
    h, m = statistics.median(times["direct"]), statistics.median(times["mcp"])
    print(f"load average before / after: {load} / {os.getloadavg()[0]:.1f} (2 cores here)")
    print(f"direct call, tool host (median of {args.runs}):      {ms(h)}")
    print(f"call through MCP stdio (median of {args.runs}):      {ms(m)}")
    print(f"MCP overhead (median difference):              {ms(m - h)}   target <= 5 ms")
    print(f"the SDK's own bare server, same call:          {ms(statistics.median(times['sdk']))}")
    print(f"python tool round trip (median of {args.code_runs}):     {ms(statistics.median(code))}")
    print(f"KernelSession.execute('1') (median of {args.code_runs}):  {ms(statistics.median(execute))}")


if __name__ == "__main__":
    main()
