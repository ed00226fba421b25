"""MCP over Streamable HTTP at ``/mcp`` of the API server: the SDK's client, the API key, the Origin check."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.mcp.conftest import run_async
from tests.server.helpers import server_thread
from tools import ToolRegistry
from workbench.models.spec import ModelSpec
from workbench.server.app import create_app
from workbench.server.mcp import CodeKernels, build_server
from workbench.server.mcp_http import allowed_origin, http_session_key, mount_http
from workbench.shared import SharedModel

KEY = "mcp-test-key"


@pytest.fixture(scope="module")
def mcp_url() -> Iterator[str]:
    registry = ToolRegistry()
    registry.load_builtins()
    app = create_app(SharedModel(ModelSpec(device="cpu")), api_key=KEY, registry=registry, load=False)
    mount_http(app, build_server(registry), host="127.0.0.1", cors_origins=["http://localhost:3000"])
    with server_thread(app) as url:
        yield url.removesuffix("/v1") + "/mcp"


async def _with_client(url: str, headers: dict[str, str], steps: Any) -> Any:
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    transport = streamable_http_client(url, http_client=create_mcp_http_client(headers=headers))
    async with Client(transport, read_timeout_seconds=60) as client:
        return await steps(client)


def test_sdk_client_lists_and_calls_over_http(mcp_url: str) -> None:
    async def steps(client: Any) -> Any:
        listed = [t.name for t in (await client.list_tools()).tools]
        return listed, await client.call_tool("calculator", {"expression": "17*23"})

    listed, result = run_async(_with_client(mcp_url, {"Authorization": f"Bearer {KEY}"}, steps))
    assert "calculator" in listed and "python" not in listed
    assert (result.is_error, result.content[0].text) == (False, "391")


def _post(url: str, headers: dict[str, str]) -> int:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
            **headers,
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_api_key_and_origin_are_checked(mcp_url: str) -> None:
    auth = {"Authorization": f"Bearer {KEY}"}
    assert _post(mcp_url, {}) == 401
    assert _post(mcp_url, {"Authorization": "Bearer wrong"}) == 401
    assert _post(mcp_url, {**auth, "Origin": "http://evil.example"}) == 403
    assert _post(mcp_url, {**auth, "Origin": "http://localhost:3000"}) != 403
    assert _post(mcp_url, {**auth, "Origin": "http://127.0.0.1:9999"}) != 403


def test_allowed_origins() -> None:
    assert allowed_origin("http://localhost:8501", set()) and allowed_origin("http://[::1]:80", set())
    assert not allowed_origin("http://localhost.evil.example", set())
    assert not allowed_origin("null", set()) and allowed_origin(
        "https://app.example", {"https://app.example"}
    )


@pytest.fixture(scope="module")
def code_url() -> Iterator[tuple[str, CodeKernels]]:
    """``/mcp`` as ``serve --code`` mounts it: python per MCP session (no key, to keep it short)."""
    kernels = CodeKernels(max_kernels=3, warm_spare=False)
    app = create_app(SharedModel(ModelSpec(device="cpu")), registry=ToolRegistry(), load=False)
    server = build_server(None, code=True, code_timeout=20, kernels=kernels, session_key=http_session_key)
    mount_http(app, server, host="127.0.0.1", kernels=kernels)
    with server_thread(app) as url:
        yield url.removesuffix("/v1") + "/mcp", kernels
    kernels.close()


async def _code_client(url: str, mode: str, steps: Any) -> Any:
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    async with Client(streamable_http_client(url), read_timeout_seconds=120, mode=mode) as client:
        return await steps(client)


@pytest.mark.kernel
def test_python_over_http_keeps_a_kernel_per_session(code_url: tuple[str, CodeKernels]) -> None:
    url, kernels = code_url
    seen: dict[str, Any] = {}

    async def first(client: Any) -> Any:
        seen["listed"] = [t.name for t in (await client.list_tools()).tools]
        await client.call_tool("python", {"code": "x = 41"})
        seen["kernels during"] = list(kernels.pool.sessions)
        return (await client.call_tool("python", {"code": "print(x + 1)"})).content[0].text

    async def second(client: Any) -> Any:
        return (await client.call_tool("python", {"code": "print(x)"})).content[0].text

    assert run_async(_code_client(url, "legacy", first)).strip() == "42"  # one session, one kernel
    assert {"python", "reset_python", "upload_file", "download_file"} <= set(seen["listed"])
    [key] = seen["kernels during"]
    assert key.startswith("mcp-http-") and len(key) > len("mcp-http-") + 16  # the session manager's id
    assert kernels.pool.sessions == []  # the client ended its session (DELETE): its kernel went with it
    assert "NameError" in run_async(_code_client(url, "legacy", second))  # another session: a fresh kernel


def test_python_over_http_without_sessions_says_why(code_url: tuple[str, CodeKernels]) -> None:
    url, kernels = code_url

    async def steps(client: Any) -> Any:
        listed = [t.name for t in (await client.list_tools()).tools]
        return client.protocol_version, listed, await client.call_tool("python", {"code": "1"})

    version, listed, result = run_async(_code_client(url, "auto", steps))
    assert version >= "2026" and "python" not in listed
    assert (
        result.is_error
        and "has no sessions" in result.content[0].text
        and "mode='legacy'" in result.content[0].text
    )
    assert kernels.pool.sessions == []


@pytest.mark.kernel
def test_serve_code_offers_python_per_session(tmp_path: Path) -> None:
    from tests.server.helpers import serve_process

    async def steps(client: Any) -> Any:
        await client.call_tool("python", {"code": "y = 6 * 7"})
        return (await client.call_tool("python", {"code": "print(y)"})).content[0].text

    with serve_process(tmp_path / "serve.log", "--code", "--code-timeout", "20") as (url, _):
        answer = run_async(_code_client(url.removesuffix("/v1") + "/mcp", "legacy", steps))
    assert answer.strip() == "42"
    assert "with sandboxed python per MCP session" in (tmp_path / "serve.log").read_text()
