"""What a hostile try-out of the API broke (issue 25): requests that crashed, hung or got a 500.

Each client mistake must get a 4xx naming the field, in OpenAI's shape, quickly; the server must stay up.
"""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.server.helpers import MODEL_ID, http_json, serve_process, server_thread
from workbench.models.spec import ModelSpec
from workbench.server.app import create_app
from workbench.shared import SharedModel

pytestmark = pytest.mark.model

USER: Any = [{"role": "user", "content": "Hi"}]


def _chat(**fields: Any) -> dict[str, Any]:
    return {"model": MODEL_ID, "messages": USER, "max_tokens": 1, **fields}


def _tool(name: str) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {"name": name, "parameters": {"type": "object", "properties": {}}},
    }


def _deep_schema(levels: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "array", "items": schema}
    return {"type": "json_schema", "json_schema": {"name": "deep", "schema": schema}}


CHAT_MISTAKES: list[tuple[str, Any, str, str]] = [
    ("n true", _chat(n=True), "n", "n = 1"),
    ("n 1.0", _chat(n=1.0), "n", "n = 1"),
    (
        "include_usage a string",
        _chat(stream=True, stream_options={"include_usage": "no"}),
        "stream_options",
        "true or false",
    ),
    ("a seed over 64 bits", _chat(seed=2**70), "seed", "64 bits"),
    ("a huge repetition penalty", _chat(repetition_penalty=1e300), "repetition_penalty", "between 0.1 and 2"),
    (
        "a tiny repetition penalty",
        _chat(repetition_penalty=5e-324),
        "repetition_penalty",
        "between 0.1 and 2",
    ),
    ("five stop strings", _chat(stop=["a", "b", "c", "d", "e"]), "stop", "at most 4"),
    ("a huge stop string", _chat(stop=["x" * 400_000]), "stop", "at most 256 characters"),
    (
        "a quote in a tool name",
        _chat(tools=[_tool('get"weather')], tool_choice="required"),
        "tools",
        "not a valid name",
    ),
    ("a tool name with a newline", _chat(tools=[_tool("f\n")]), "tools", "not a valid name"),
    ("a tool name too long", _chat(tools=[_tool("f" * 65)]), "tools", "not a valid name"),
    ("129 tools", _chat(tools=[_tool(f"f{i}") for i in range(129)]), "tools", "over the limit of 128"),
    (
        "a lone surrogate in content",
        _chat(messages=[{"role": "user", "content": "a\ud800b"}]),
        "messages",
        "lone UTF-16 surrogate",
    ),
    (
        "a schema nested 400 deep",
        _chat(response_format=_deep_schema(400)),
        "response_format",
        "deeper than 64",
    ),
]


@pytest.mark.parametrize(
    ("body", "param", "message"), [c[1:] for c in CHAT_MISTAKES], ids=[c[0] for c in CHAT_MISTAKES]
)
def test_chat_mistakes_are_400s_naming_the_field(api_url: str, body: Any, param: str, message: str) -> None:
    raw = json.dumps(body).encode()  # json.dumps writes "\ud800" as an escape, as a hostile client would
    status, answer = http_json("POST", api_url + "/chat/completions", raw)
    assert status == 400, answer
    assert answer["error"]["param"] == param and message in answer["error"]["message"], answer
    assert answer["error"]["type"] == "invalid_request_error"


def test_nan_is_not_json(api_url: str) -> None:
    body = b'{"model": "m", "messages": [], "temperature": NaN}'
    status, answer = http_json("POST", api_url + "/chat/completions", body)
    assert status == 400 and "NaN is not a JSON value" in answer["error"]["message"], answer


def test_nesting_too_deep_for_python_is_a_400(api_url: str) -> None:
    body = b'{"model": "m", "messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    status, answer = http_json("POST", api_url + "/chat/completions", body)
    assert status == 400 and "deeper than" in answer["error"]["message"], answer


TEXT_MISTAKES: list[tuple[str, Any, str, str]] = [
    ("empty prompt", {"prompt": ""}, "prompt", "'prompt' is empty"),
    ("echo", {"prompt": "Hi", "echo": True}, "echo", "not supported"),
    ("best_of true", {"prompt": "Hi", "best_of": True}, "best_of", "not supported"),
    ("n true", {"prompt": "Hi", "n": True}, "n", "n = 1"),
]


@pytest.mark.parametrize(
    ("fields", "param", "message"), [c[1:] for c in TEXT_MISTAKES], ids=[c[0] for c in TEXT_MISTAKES]
)
def test_text_completion_mistakes_are_400s(api_url: str, fields: Any, param: str, message: str) -> None:
    body = {"model": MODEL_ID, "max_tokens": 1, **fields}
    status, answer = http_json("POST", api_url + "/completions", body)
    assert status == 400, answer
    assert answer["error"]["param"] == param and message in answer["error"]["message"], answer


def test_fifty_thousand_messages_are_refused_within_seconds(api_url: str) -> None:
    messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": "hi"} for i in range(50_000)]
    started = time.monotonic()
    status, answer = http_json("POST", api_url + "/chat/completions", _chat(messages=messages))
    assert status == 400 and answer["error"]["param"] == "messages", answer
    assert "over the limit of 2048" in answer["error"]["message"]
    assert time.monotonic() - started < 20
    assert http_json("GET", api_url.removesuffix("/v1") + "/health")[0] == 200


# --- slow clients -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def impatient_url() -> Iterator[str]:
    """An API (no model needed) that gives headers 1 s and bodies 1 s."""
    slot = SharedModel(ModelSpec(source="/no/such/model/folder"))
    with server_thread(
        create_app(slot, model_id="m", load=False, body_timeout_s=1), header_timeout_s=1
    ) as url:
        yield url


def _connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    return socket.create_connection((parts.hostname or "", parts.port or 80), timeout=15)


def _drip(sock: socket.socket, data: bytes, seconds: float) -> bytes:
    """Send ``data`` a byte at a time for up to ``seconds``; return what the server answered (b"" if closed)."""
    sock.settimeout(0.25)
    deadline = time.monotonic() + seconds
    for byte in data:
        try:
            sock.sendall(bytes([byte]))
            answer = sock.recv(65536)
            return answer  # the server answered or closed (b"")
        except TimeoutError:
            pass
        except OSError:
            return b""
        if time.monotonic() > deadline:
            break
    sock.settimeout(15)
    try:
        return sock.recv(65536)
    except OSError:
        return b""


def test_headers_sent_slowly_are_cut_off(impatient_url: str) -> None:
    sock = _connect(impatient_url)
    started = time.monotonic()
    answer = _drip(sock, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 200, 30)
    assert answer == b"" and time.monotonic() - started < 10  # closed long before the drip ended
    sock.close()


def test_a_body_sent_slowly_gets_a_408(impatient_url: str) -> None:
    sock = _connect(impatient_url)
    head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    sock.sendall(head + b"Content-Length: 1000\r\n\r\n")
    started = time.monotonic()
    answer = _drip(sock, b'{"model": "m", "messages": [' + b" " * 900, 30)
    sock.settimeout(5)
    try:  # the head and the body of the answer may come in two segments
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            more = sock.recv(65536)
            if not more:
                break
            answer += more
    except OSError:
        pass
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b"did not arrive within 1 s" in answer and time.monotonic() - started < 10
    sock.close()
    assert http_json("GET", impatient_url.removesuffix("/v1") + "/health")[0] == 503  # still serving


# --- stopping -----------------------------------------------------------------------------------
def test_sigterm_ends_serve_within_seconds_mid_generation(tmp_path: Path) -> None:
    # Not streamed: a streamed answer is ended by sse-starlette at shutdown, a plain one was waited for.
    with serve_process(tmp_path / "serve.log", "--device", "cpu") as (url, process):
        body = {
            "model": MODEL_ID,
            "prompt": "1, 2, 3, 4, 5, 6, 7, 8, 9, 10,",
            "max_tokens": 4000,
            "temperature": 0,
        }
        answers: list[tuple[int, Any]] = []
        client = threading.Thread(
            target=lambda: answers.append(http_json("POST", url + "/completions", body))
        )
        client.start()
        time.sleep(3)  # the prompt is read and the generation under way
        assert not answers, answers
        process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        process.wait(timeout=120)
        assert time.monotonic() - started < 10
        assert process.returncode in (0, -signal.SIGTERM)  # uvicorn ends by raising the signal again
        client.join(timeout=30)
