"""Bad requests get OpenAI's error body with the right 4xx status, and never take the server down."""

from __future__ import annotations

import http.client
import json
import time
from typing import Any
from urllib.parse import urlsplit

import openai
import pytest

from tests.server.helpers import MODEL_ID, http_json, server_thread
from workbench.models.spec import ModelSpec
from workbench.server.app import create_app
from workbench.shared import SharedModel

pytestmark = pytest.mark.model

USER: Any = [{"role": "user", "content": "Hi"}]
TOOL: Any = {
    "type": "function",
    "function": {"name": "f", "parameters": {"type": "object", "properties": {}}},
}


def _chat(**fields: Any) -> dict[str, Any]:
    return {"model": MODEL_ID, "messages": USER, "max_tokens": 1, **fields}


BAD_REQUESTS: list[tuple[str, Any, str | None, str]] = [
    ("not JSON", b"{bad json", None, "not valid JSON"),
    ("not an object", b"[1, 2]", None, "must be a JSON object"),
    ("no model", {"messages": USER}, "model", "'model' is required"),
    ("no messages", {"model": MODEL_ID}, "messages", "'messages' is required"),
    ("messages not a list", _chat(messages="hi"), "messages", "must be a JSON array"),
    ("empty messages", _chat(messages=[]), "messages", "is empty"),
    (
        "unknown role",
        _chat(messages=[{"role": "wizard", "content": "x"}]),
        "messages",
        "unknown role 'wizard'",
    ),
    ("content a number", _chat(messages=[{"role": "user", "content": 7}]), "messages", "'content' must be"),
    (
        "image part",
        _chat(messages=[{"role": "user", "content": [{"type": "audio"}]}]),
        "messages",
        "text",
    ),
    ("n > 1", _chat(n=2), "n", "n = 1"),
    ("temperature too high", _chat(temperature=5), "temperature", "between 0"),
    ("temperature a string", _chat(temperature="hot"), "temperature", "finite number"),
    ("negative max_tokens", _chat(max_tokens=-1), "max_tokens", "at least 1"),
    ("max_tokens a float", _chat(max_tokens=2.5), "max_tokens", "whole number"),
    ("top_p zero", _chat(top_p=0), "top_p", "above 0"),
    ("seed a string", _chat(seed="x"), "seed", "whole number"),
    ("penalty out of range", _chat(presence_penalty=3), "presence_penalty", "between -2 and 2"),
    ("stop not strings", _chat(stop=[1]), "stop", "string or a list"),
    ("stream a string", _chat(stream="yes"), "stream", "true or false"),
    ("tools not a list", _chat(tools={"a": 1}), "tools", "must be a list"),
    ("tool without name", _chat(tools=[{"type": "function", "function": {}}]), "tools", "needs a 'name'"),
    (
        "tool with a broken schema",
        _chat(tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "nonsense"}}}]),
        "tools",
        "not a valid JSON schema",
    ),
    ("unknown tool_choice", _chat(tools=[TOOL], tool_choice="always"), "tool_choice", "must be one of"),
    (
        "tool_choice names an unknown tool",
        _chat(tools=[TOOL], tool_choice={"type": "function", "function": {"name": "g"}}),
        "tool_choice",
        "'g', which is not in 'tools'",
    ),
    ("required without tools", _chat(tool_choice="required"), "tool_choice", "no 'tools'"),
    ("unknown response_format", _chat(response_format={"type": "yaml"}), "response_format", "must be text"),
    (
        "invalid response schema",
        _chat(response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": 5}}}),
        "response_format",
        "not a valid JSON schema",
    ),
    ("logprobs", _chat(logprobs=True), "logprobs", "not supported"),
    (
        "prompt longer than the context",
        _chat(messages=[{"role": "user", "content": "word " * 9000}]),
        "messages",
        "context holds",
    ),
]


@pytest.mark.parametrize(
    ("body", "param", "message"), [case[1:] for case in BAD_REQUESTS], ids=[case[0] for case in BAD_REQUESTS]
)
def test_bad_request_is_a_400_naming_the_field(
    api_url: str, body: Any, param: str | None, message: str
) -> None:
    status, answer = http_json("POST", api_url + "/chat/completions", body)
    assert status == 400, answer
    error = answer["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert message in error["message"]
    assert set(error) == {"message", "type", "param", "code"}


def test_prompt_too_long_has_its_code(api_url: str) -> None:
    body = _chat(messages=[{"role": "user", "content": "word " * 9000}], stream=True)
    status, answer = http_json("POST", api_url + "/chat/completions", body)
    assert status == 400 and answer["error"]["code"] == "context_length_exceeded"


def test_unknown_model_is_a_404(api_url: str) -> None:
    status, answer = http_json("POST", api_url + "/chat/completions", _chat(model="gpt-4o"))
    assert status == 404 and answer["error"]["code"] == "model_not_found"
    client = openai.OpenAI(base_url=api_url, api_key="x", max_retries=0)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-4o", messages=USER, max_tokens=1)


@pytest.mark.parametrize(
    ("method", "path", "status"), [("GET", "/nowhere", 404), ("GET", "/chat/completions", 405)]
)
def test_unknown_routes_answer_in_openai_shape(api_url: str, method: str, path: str, status: int) -> None:
    code, answer = http_json(method, api_url + path)
    assert code == status and answer["error"]["message"]


def test_text_completion_refuses_several_prompts(api_url: str) -> None:
    body = {"model": MODEL_ID, "prompt": ["a", "b"], "max_tokens": 1}
    status, answer = http_json("POST", api_url + "/completions", body)
    assert status == 400 and answer["error"]["param"] == "prompt"


def test_huge_body_is_refused_before_it_is_read_and_the_server_stays_up(api_url: str) -> None:
    parts = urlsplit(api_url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    connection.putrequest("POST", "/v1/chat/completions")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(9 * 1024 * 1024))
    connection.endheaders()
    response = connection.getresponse()  # answered from the headers alone
    assert response.status == 413 and "MB" in json.loads(response.read())["error"]["message"]
    connection.close()
    assert http_json("GET", api_url.removesuffix("/v1") + "/health")[0] == 200


def test_official_client_sees_bad_requests_as_bad_request_errors(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="n = 1"):
        client.chat.completions.create(model=MODEL_ID, messages=USER, n=3, max_tokens=1)


def test_health_and_completions_are_503_while_the_model_loads() -> None:
    slot = SharedModel(ModelSpec(source="/no/such/model/folder"))
    with server_thread(create_app(slot, model_id="m", load=False)) as url:
        assert http_json("GET", url.removesuffix("/v1") + "/health") == (503, {"status": "loading"})
        status, answer = http_json("POST", url + "/chat/completions", {"model": "m", "messages": USER})
        assert status == 503 and answer["error"]["code"] == "model_loading"


def test_a_failed_load_is_reported(tmp_path: Any) -> None:
    slot = SharedModel(ModelSpec(source=str(tmp_path / "missing")))
    with server_thread(create_app(slot, model_id="m")) as url:
        deadline = time.monotonic() + 60
        while (health := http_json("GET", url.removesuffix("/v1") + "/health"))[1] == {"status": "loading"}:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert health[0] == 503 and health[1]["status"] == "error" and "missing" in health[1]["error"]
        status, answer = http_json("POST", url + "/chat/completions", {"model": "m", "messages": USER})
        assert status == 503 and answer["error"]["code"] == "model_load_failed"


def test_cors_preflight_from_an_allowed_origin(keyed_api_url: str) -> None:
    import urllib.request

    request = urllib.request.Request(
        keyed_api_url + "/chat/completions",
        method="OPTIONS",
        headers={
            "Origin": "http://localhost:3000",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        assert response.headers["access-control-allow-origin"] == "http://localhost:3000"
