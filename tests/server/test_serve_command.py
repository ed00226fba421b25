"""The ``serve`` command: its options and environment variables, and the warning for a public address."""

from __future__ import annotations

import concurrent.futures
import io
from collections.abc import Callable

import pytest

from workbench.cli import COMMANDS, Command
from workbench.cli.options import spec_from_args
from workbench.cli.parser import build_parser
from workbench.models.spec import ModelSpec
from workbench.server.serve import is_loopback, serve


def test_serve_options() -> None:
    args = build_parser().parse_args(
        [
            "serve",
            "--model",
            "openai:http://127.0.0.1:9/v1#m",
            "--port",
            "9001",
            "--api-key",
            "k",
            "--cors-origin",
            "http://a",
            "--cors-origin",
            "http://b",
            "--served-model-name",
            "mine",
        ]
    )
    assert (args.host, args.port, args.server_api_key) == ("127.0.0.1", 9001, "k")
    assert args.cors_origin == ["http://a", "http://b"] and args.served_model_name == "mine"
    assert spec_from_args(args).source == "openai:http://127.0.0.1:9/v1#m"
    assert Command.SERVE in COMMANDS


def test_serve_options_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_SERVE_PORT", "9002")
    monkeypatch.setenv("WORKBENCH_SERVE_API_KEY", "from-env")
    monkeypatch.setenv("WORKBENCH_SERVE_CORS_ORIGINS", "http://a, http://b")
    monkeypatch.setenv("OPENAI_API_KEY", "remote-key")
    args = build_parser().parse_args(["serve"])
    assert (args.port, args.server_api_key, args.cors_origin) == (9002, "from-env", ["http://a", "http://b"])
    # The server's key is not the remote model's key, and the other way round.
    assert spec_from_args(args).api_key == "remote-key"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("127.0.0.2", True),
        ("0.0.0.0", False),
        ("192.168.1.5", False),
        ("my-host", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def in_fresh_thread(run: Callable[[], int]) -> int:
    """Call ``run`` in a new thread: uvicorn starts its own event loop, and the browser tests' sync
    Playwright may have left one running in this test process's main thread."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result(timeout=120)


def test_public_address_without_key_warns(capfd: pytest.CaptureFixture[str]) -> None:
    err = io.StringIO()
    # 192.0.2.1 (TEST-NET-1) is on no interface here: the warning is printed, then binding fails.
    status = in_fresh_thread(
        lambda: serve(ModelSpec(source="/no/model"), host="192.0.2.1", port=8000, err=err)
    )
    assert status == 1
    assert "WARNING: listening on 192.0.2.1 without --api-key" in err.getvalue()
    quiet = io.StringIO()
    assert (
        in_fresh_thread(
            lambda: serve(ModelSpec(source="/no/model"), host="192.0.2.1", port=8000, api_key="k", err=quiet)
        )
        == 1
    )
    assert "WARNING" not in quiet.getvalue()
