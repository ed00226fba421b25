"""``python -m workbench mcp``: the official SDK's client connects over stdio, lists and calls the tools.

The ``python`` tool runs in a real sandboxed kernel kept for the session: a variable survives between
calls, a plot comes back as image content, and an endless loop is interrupted at the time limit.
"""

from __future__ import annotations

import asyncio
import base64
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.cli_helpers import ROOT
from tests.mcp.conftest import run_async


def _params(*args: str, extra_env: dict[str, str] | None = None) -> Any:
    from mcp import StdioServerParameters

    env = {"PYTHONPATH": str(ROOT), **(extra_env or {})}
    for name in ("WORKBENCH_CACHE_DIR", "WORKBENCH_TOOLS_PATH", "WORKBENCH_MCP_CONFIG"):
        if name in os.environ:
            env[name] = os.environ[name]
    return StdioServerParameters(
        command=sys.executable, args=["-m", "workbench", "mcp", *args], env=env, cwd=str(ROOT)
    )


async def _session(*args: str, steps: Any, mode: str, extra_env: dict[str, str] | None) -> Any:
    from mcp import Client

    async with Client(_params(*args, extra_env=extra_env), read_timeout_seconds=120, mode=mode) as client:
        return await steps(client)


def _run(*args: str, steps: Any, mode: str = "auto", extra_env: dict[str, str] | None = None) -> Any:
    return run_async(asyncio.wait_for(_session(*args, steps=steps, mode=mode, extra_env=extra_env), 280))


def test_an_older_client_with_the_initialize_handshake() -> None:
    async def steps(client: Any) -> Any:
        listed = [t.name for t in (await client.list_tools()).tools]
        return client.protocol_version, listed, await client.call_tool("calculator", {"expression": "17*23"})

    version, listed, result = _run("--no-tools", steps=steps, mode="legacy")
    assert version < "2026" and listed == []
    version, listed, result = _run(steps=steps, mode="legacy")
    assert "calculator" in listed and result.content[0].text == "391"


def test_tools_are_listed_and_called(tmp_path: Path) -> None:
    folder = tmp_path / "tools"
    folder.mkdir()
    (folder / "shout.py").write_text(
        "from tools import tool\n\n@tool\ndef shout(text: str) -> str:\n"
        '    """Shout.\n\n    Args:\n        text: What to shout.\n    """\n    return text.upper()\n'
    )

    async def steps(client: Any) -> Any:
        listed = {t.name: t for t in (await client.list_tools()).tools}
        calc = await client.call_tool("calculator", {"expression": "17*23"})
        shout = await client.call_tool("shout", {"text": "hi"})
        bad = await client.call_tool("calculator", {"expression": 5, "nope": 1})
        unknown = await client.call_tool("nope", {})
        return listed, calc, shout, bad, unknown

    listed, calc, shout, bad, unknown = _run("--tools-path", str(folder), steps=steps)
    assert {"calculator", "current_time", "shout"} <= set(listed) and "python" not in listed
    assert listed["calculator"].input_schema["required"] == ["expression"]
    assert listed["calculator"].input_schema["additionalProperties"] is False
    assert (calc.is_error, calc.content[0].text) == (False, "391")
    assert (shout.is_error, shout.content[0].text) == (False, "HI")  # ran in the tool host
    assert bad.is_error and "expression" in bad.content[0].text
    assert unknown.is_error and "no tool named 'nope'" in unknown.content[0].text


TYPED_TOOLS = '''
from tools import tool


@tool
def double(x: int) -> int:
    """Double a number.

    Args:
        x: The number.
    """
    return 2 * x


@tool
def summary(values: list[float]) -> dict[str, float]:
    """Summarise numbers.

    Args:
        values: The numbers.
    """
    return {"total": sum(values), "largest": max(values)}


@tool
def untyped(text: str):
    """Echo without a return annotation.

    Args:
        text: Anything.
    """
    return text


@tool
def liar(x: int) -> int:
    """Claim an int, return text.

    Args:
        x: Anything.
    """
    return "not a number"
'''


def test_typed_returns_have_an_output_schema_and_structured_content(tmp_path: Path) -> None:
    folder = tmp_path / "tools"
    folder.mkdir()
    (folder / "typed.py").write_text(TYPED_TOOLS)

    async def steps(client: Any) -> Any:
        listed = {t.name: t for t in (await client.list_tools()).tools}
        calls = {
            "double": await client.call_tool("double", {"x": 21}),
            "summary": await client.call_tool("summary", {"values": [1.5, 4]}),
            "untyped": await client.call_tool("untyped", {"text": "hi"}),
            "calculator": await client.call_tool("calculator", {"expression": "17*23"}),
            "liar": await client.call_tool("liar", {"x": 1}),
        }
        return listed, calls

    # The SDK's client checks every structuredContent against the listed outputSchema itself.
    listed, calls = _run("--tools-path", str(folder), steps=steps)
    assert listed["double"].output_schema == {
        "type": "object",
        "properties": {"result": {"type": "integer"}},
        "required": ["result"],
    }
    assert listed["summary"].output_schema == {"type": "object", "additionalProperties": {"type": "number"}}
    assert listed["untyped"].output_schema is None
    assert listed["calculator"].output_schema["properties"]["result"]["type"] == "string"  # a built-in
    assert (calls["double"].structured_content, calls["double"].content[0].text) == ({"result": 42}, "42")
    assert calls["summary"].structured_content == {"total": 5.5, "largest": 4}
    assert calls["untyped"].structured_content is None and calls["untyped"].content[0].text == "hi"
    assert calls["calculator"].structured_content == {"result": "391"}
    liar = calls["liar"]
    assert liar.is_error and liar.structured_content is None
    assert (
        "'not a number'" in liar.content[0].text
        and "does not fit the declared return type" in liar.content[0].text
    )


@pytest.mark.kernel
@pytest.mark.parametrize("where", ["local", "gateway"])
def test_python_keeps_its_kernel_for_the_session(where: str, request: pytest.FixtureRequest) -> None:
    extra_env = {}
    if where == "gateway":  # WORKBENCH_KERNEL_GATEWAY: the same tools on a Kernel Gateway's kernel
        config = request.getfixturevalue("kernel_gateway").config
        extra_env = {"WORKBENCH_KERNEL_GATEWAY": config.url, "WORKBENCH_KERNEL_GATEWAY_TOKEN": config.token,
                     "WORKBENCH_KERNEL_GATEWAY_KERNEL": config.kernel_name}  # fmt: skip

    async def steps(client: Any) -> Any:
        listed = [t.name for t in (await client.list_tools()).tools]
        first = await client.call_tool("python", {"code": "x = 41\nprint('set')"})
        second = await client.call_tool("python", {"code": "x + 1"})
        plot = await client.call_tool(
            "python",
            {"code": "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()"},
        )
        loop = await client.call_tool("python", {"code": "while True: pass"})
        after = await client.call_tool("python", {"code": "x"})
        failed = await client.call_tool("python", {"code": "1/0"})
        up = await client.call_tool("upload_file", {"name": "data.csv", "content": "a,b\n1,2\n"})
        read = await client.call_tool(
            "python", {"code": "import pandas as pd\nint(pd.read_csv('data.csv').b.sum())"}
        )
        await client.call_tool("python", {"code": "open('out.bin', 'wb').write(bytes(range(256)))"})
        down = await client.call_tool("download_file", {"name": "out.bin"})
        escape = await client.call_tool("download_file", {"name": "../../etc/passwd"})
        reset = await client.call_tool("reset_python", {})
        gone = await client.call_tool("python", {"code": "x"})
        limit = await client.call_tool("python", {"code": "import os\nos.environ.get('KERNEL_MEMORY_LIMIT')"})
        return listed, first, second, plot, loop, after, failed, reset, gone, (up, read, down, escape), limit

    listed, first, second, plot, loop, after, failed, reset, gone, files, limit = _run(
        "--no-tools", "--code", "--code-timeout", "5", steps=steps, extra_env=extra_env
    )
    # Only the gateway is sent the memory limit as KERNEL_MEMORY_LIMIT (the local sandbox sets rlimits).
    assert limit.content[0].text.strip() == (repr(str(2 * 1024**3)) if where == "gateway" else "[no output]")
    assert listed == ["python", "upload_file", "download_file", "reset_python"]
    assert (first.is_error, first.content[0].text.strip()) == (False, "set")
    assert (second.is_error, second.content[0].text.strip()) == (False, "42")
    kinds = [block.type for block in plot.content]
    assert not plot.is_error and kinds == ["text", "image"], plot.content
    assert plot.content[1].mime_type == "image/png"
    assert base64.b64decode(plot.content[1].data).startswith(b"\x89PNG")
    assert loop.is_error and "interrupted because it exceeded the 5 s time limit" in loop.content[0].text
    assert after.content[0].text.strip() == "41"  # interrupted, not restarted: the variable survives
    assert failed.is_error and "ZeroDivisionError" in failed.content[0].text
    assert not reset.is_error and gone.is_error and "NameError" in gone.content[0].text
    up, read, down, escape = files
    assert not up.is_error and read.content[0].text.strip() == "2"
    assert down.content[0].type == "resource" and base64.b64decode(down.content[0].resource.blob) == bytes(
        range(256)
    )
    assert escape.is_error


def test_mcp_tools_are_not_reexported(tmp_path: Path) -> None:
    from tests.mcp.conftest import misbehaving, write_config

    config = write_config(tmp_path / "mcp.json", {"own": misbehaving()})
    os.environ["WORKBENCH_MCP_CONFIG"] = str(config)
    try:

        async def steps(client: Any) -> Any:
            return [t.name for t in (await client.list_tools()).tools]

        listed = _run(steps=steps)
    finally:
        del os.environ["WORKBENCH_MCP_CONFIG"]
    assert "calculator" in listed and "echo" not in listed and "crash" not in listed


NOISY_SERVER = """
import os, sys, anyio
from tools import ToolRegistry
from workbench.server.mcp import build_server, serve_stdio


def noisy(text: str) -> str:
    '''Print on stdout, in Python and at the descriptor, then answer.

    Args:
        text: Any text.
    '''
    print("stray print")
    sys.stdout.flush()
    os.write(1, b"stray write\\n")
    return text


registry = ToolRegistry()
registry.add(noisy)
anyio.run(serve_stdio, build_server(registry))
"""


def test_stdout_written_by_a_tool_does_not_reach_the_wire(tmp_path: Path) -> None:
    from mcp import Client, StdioServerParameters

    script = tmp_path / "noisy_server.py"
    script.write_text(NOISY_SERVER)
    params = StdioServerParameters(
        command=sys.executable, args=[str(script)], env={"PYTHONPATH": str(ROOT)}, cwd=str(ROOT)
    )

    async def steps() -> Any:
        async with Client(params, read_timeout_seconds=60) as client:
            return [await client.call_tool("noisy", {"text": f"answer {n}"}) for n in range(3)]

    results = run_async(asyncio.wait_for(steps(), 120))
    assert [r.content[0].text for r in results] == ["answer 0", "answer 1", "answer 2"]
