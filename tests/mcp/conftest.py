"""Fixtures for the MCP tests: real MCP servers from PyPI in venvs of their own, and our misbehaving one.

A server from PyPI (``mcp-server-time``, ``mcp-server-git``) may pin another ``mcp`` than ours, so each
gets a virtual environment of its own (:func:`tests.cached_venvs.server_venv`), cached under
``~/.cache/workbench/test-mcp-servers/``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.cached_venvs import server_venv
from tools.mcp_client import McpTools
from tools.mcp_config import parse_config

HERE = Path(__file__).resolve().parent
MISBEHAVING = HERE / "misbehaving_server.py"
#: The venvs of the MCP servers from PyPI, under ~/.cache/workbench.
MCP_CACHE = "test-mcp-servers"


T = TypeVar("T")


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` in a thread of its own: sync Playwright (the browser tests) leaves a running event
    loop in the main thread of the test process, where ``asyncio.run`` refuses to start."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


@pytest.fixture(scope="session")
def time_server() -> Path:
    """``mcp-server-time`` from PyPI, in its own venv."""
    return server_venv("mcp-server-time", "mcp-server-time", MCP_CACHE)


@pytest.fixture(scope="session")
def legacy_time_server() -> Path:
    """An older ``mcp-server-time`` on the 1.x SDK, which knows only the ``initialize`` handshake."""
    return server_venv("mcp-server-time==2025.9.25 mcp<2", "mcp-server-time", MCP_CACHE)


@pytest.fixture(scope="session")
def git_server() -> Path:
    """``mcp-server-git`` from PyPI, in its own venv."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    return server_venv("mcp-server-git", "mcp-server-git", MCP_CACHE)


@pytest.fixture
def scratch_repo(tmp_path: Path) -> Path:
    """A git repository with one commit and one uncommitted change."""
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}  # fmt: skip
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True, env=env)
    (repo / "hello.txt").write_text("hello\n")
    subprocess.run(["git", "add", "hello.txt"], cwd=repo, check=True, env=env)
    subprocess.run(["git", "commit", "-q", "-m", "first commit"], cwd=repo, check=True, env=env)
    (repo / "hello.txt").write_text("hello\nworld\n")
    return repo


def misbehaving(mode: str = "normal", **extra: object) -> dict[str, object]:
    """A config entry that starts our misbehaving server in ``mode``."""
    return {"command": sys.executable, "args": [str(MISBEHAVING), mode], "timeout": 20, **extra}


@pytest.fixture
def start_servers() -> Iterator[object]:
    """``start_servers({"name": entry, ...})`` starts those servers; all are closed after the test."""
    started: list[McpTools] = []

    def start(servers: dict[str, object], **kwargs: object) -> McpTools:
        tools = McpTools(parse_config({"mcpServers": servers}), **kwargs)  # type: ignore[arg-type]
        started.append(tools)
        return tools

    yield start
    for tools in started:
        tools.close()


def write_config(path: Path, servers: dict[str, object]) -> Path:
    """Write an MCP configuration file."""
    path.write_text(json.dumps({"mcpServers": servers}))
    return path
