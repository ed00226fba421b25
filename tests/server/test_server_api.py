"""The API under the official ``openai`` client, on the real embedded model (greedy, short answers)."""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import openai
import pytest

from tests.server.conftest import API_KEY
from tests.server.helpers import MODEL_ID, http_json, server_thread
from workbench.server.app import create_app
from workbench.shared import SharedModel

pytestmark = pytest.mark.model

MESSAGES: Any = [{"role": "user", "content": "Name three colors."}]
GREEDY: Any = {"temperature": 0, "max_tokens": 8}
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "The city name."}},
            "required": ["city"],
        },
    },
}
TIME_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "Get the time in a time zone.",
        "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]},
    },
}


@pytest.fixture(scope="module")
def plain_answer(client: openai.OpenAI) -> Any:
    """One non-streamed greedy answer, the reference the streamed and concurrent ones must equal."""
    return client.chat.completions.create(model=MODEL_ID, messages=MESSAGES, **GREEDY)


def test_models_lists_and_retrieves_the_served_model(client: openai.OpenAI) -> None:
    models = client.models.list().data
    assert [m.id for m in models] == [MODEL_ID]
    assert models[0].object == "model" and models[0].owned_by == "workbench" and models[0].created > 0
    assert client.models.retrieve(MODEL_ID).id == MODEL_ID
    with pytest.raises(openai.NotFoundError, match="does not exist here"):
        client.models.retrieve("gpt-4o")


def test_plain_answer_has_text_finish_reason_and_usage(plain_answer: Any) -> None:
    choice = plain_answer.choices[0]
    assert plain_answer.object == "chat.completion" and plain_answer.id.startswith("chatcmpl-")
    assert plain_answer.model == MODEL_ID and plain_answer.created > 0
    assert choice.message.role == "assistant" and choice.message.content.strip()
    assert choice.finish_reason in ("stop", "length")
    usage = plain_answer.usage
    assert usage.prompt_tokens > 5 and 0 < usage.completion_tokens <= 8
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_streamed_answer_equals_the_plain_one_and_ends_with_usage(
    client: openai.OpenAI, plain_answer: Any
) -> None:
    chunks = list(
        client.chat.completions.create(
            model=MODEL_ID, messages=MESSAGES, stream=True, stream_options={"include_usage": True}, **GREEDY
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain_answer.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-2].choices[0].finish_reason == plain_answer.choices[0].finish_reason
    assert chunks[-1].choices == [] and chunks[-1].usage == plain_answer.usage
    assert all(c.usage is None for c in chunks[:-1])
    assert len({c.id for c in chunks}) == 1


def test_stop_string_ends_the_answer_before_it(client: openai.OpenAI, plain_answer: Any) -> None:
    full = plain_answer.choices[0].message.content
    stop = full.split()[1]  # a word inside the greedy answer
    answer = client.chat.completions.create(model=MODEL_ID, messages=MESSAGES, stop=[stop], **GREEDY)
    content = answer.choices[0].message.content
    assert stop not in content and full.startswith(content.rstrip())
    assert answer.choices[0].finish_reason == "stop"


def test_streamed_required_call_is_assembled_by_the_client_helpers(client: openai.OpenAI) -> None:
    with client.chat.completions.stream(
        model=MODEL_ID,
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=[WEATHER_TOOL],
        tool_choice="required",
        temperature=0,
        max_tokens=40,
    ) as stream:
        events = [event.type for event in stream]
        final = stream.get_final_completion()
    choice: Any = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.id.startswith("call_") and call.type == "function"
    assert call.function.name == "get_weather"
    arguments = json.loads(call.function.arguments)
    jsonschema.validate(arguments, WEATHER_TOOL["function"]["parameters"])
    assert "tool_calls.function.arguments.done" in events


def test_streamed_call_follows_openai_shape(api_url: str) -> None:
    """Raw chunks: the first delta of a call carries id, type and name once; later ones only arguments."""
    client = openai.OpenAI(base_url=api_url, api_key="unused", max_retries=0)
    chunks = list(
        client.chat.completions.create(
            model=MODEL_ID,
            messages=[{"role": "user", "content": "What time is it in Tokyo?"}],
            tools=[WEATHER_TOOL, TIME_TOOL],
            tool_choice={"type": "function", "function": {"name": "get_time"}},
            temperature=0,
            max_tokens=40,
            stream=True,
        )
    )
    deltas: list[Any] = [d for c in chunks for d in (c.choices[0].delta.tool_calls or [])]
    assert [d.index for d in deltas] == [0] * len(deltas) and len(deltas) >= 2
    first, rest = deltas[0], deltas[1:]
    assert first.id and first.id.startswith("call_") and first.type == "function"
    assert first.function.name == "get_time" and first.function.arguments == ""
    assert all(d.id is None and d.type is None and d.function.name is None for d in rest)
    arguments = json.loads("".join(d.function.arguments for d in rest))
    assert isinstance(arguments["zone"], str)
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_response_format_json_schema_is_obeyed(client: openai.OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {"color": {"enum": ["red", "green", "blue"]}, "bright": {"type": "boolean"}},
        "required": ["color", "bright"],
        "additionalProperties": False,
    }
    answer: Any = client.chat.completions.create(
        model=MODEL_ID,
        messages=[{"role": "user", "content": "Pick a color for the sky."}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "pick", "schema": schema, "strict": True},
        },
        temperature=0,
        max_tokens=30,
    )
    jsonschema.validate(json.loads(answer.choices[0].message.content), schema)
    assert answer.usage.completion_tokens > 0


def test_text_completion_continues_a_raw_prompt(client: openai.OpenAI) -> None:
    answer: Any = client.completions.create(
        model=MODEL_ID, prompt="The capital of France is", max_tokens=4, temperature=0
    )
    assert answer.object == "text_completion" and answer.choices[0].text.strip()
    assert answer.usage.completion_tokens <= 4


def test_three_concurrent_streams_all_get_the_whole_answer(api_url: str, plain_answer: Any) -> None:
    results: list[str] = []
    errors: list[BaseException] = []

    def one() -> None:
        try:
            client = openai.OpenAI(base_url=api_url, api_key="unused", max_retries=0)
            stream = client.chat.completions.create(model=MODEL_ID, messages=MESSAGES, stream=True, **GREEDY)
            results.append("".join(c.choices[0].delta.content or "" for c in stream if c.choices))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert not errors
    assert results == [plain_answer.choices[0].message.content] * 3


def test_a_client_that_disconnects_cancels_its_generation(api_url: str, model_slot: SharedModel) -> None:
    client = openai.OpenAI(base_url=api_url, api_key="unused", max_retries=0)
    backend: Any = model_slot.get().backend  # a SerialBackend or the batched llama.cpp engine
    stream = client.chat.completions.create(
        model=MODEL_ID,
        messages=[{"role": "user", "content": "Write a long story about a dragon."}],
        stream=True,
        max_tokens=2000,
        temperature=0,
    )
    pieces = 0
    for chunk in stream:
        pieces += bool(chunk.choices and chunk.choices[0].delta.content)
        if pieces >= 2:
            break
    assert backend.generating  # still generating
    stream.close()
    deadline = time.monotonic() + 30
    while backend.generating and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not backend.generating, "the generation went on after the client left"
    # The next request is answered at once.
    answer = client.chat.completions.create(model=MODEL_ID, messages=MESSAGES, max_tokens=2, temperature=0)
    assert answer.choices[0].message.content


def test_api_key_is_required_except_for_health(keyed_api_url: str) -> None:
    good = openai.OpenAI(base_url=keyed_api_url, api_key=API_KEY, max_retries=0)
    assert [m.id for m in good.models.list().data] == [MODEL_ID]
    for key in ("wrong-key", API_KEY + "x", ""):
        bad = openai.OpenAI(base_url=keyed_api_url, api_key=key or "-", max_retries=0)
        with pytest.raises(openai.AuthenticationError) as caught:
            bad.chat.completions.create(model=MODEL_ID, messages=MESSAGES, max_tokens=1)
        assert caught.value.status_code == 401
    status, body = http_json("GET", keyed_api_url + "/models")
    assert status == 401 and body["error"]["type"] == "authentication_error"
    assert "Missing API key" in body["error"]["message"]
    assert http_json("GET", keyed_api_url.removesuffix("/v1") + "/health")[0] == 200


def test_a_non_streaming_client_that_disconnects_cancels_too(api_url: str, model_slot: SharedModel) -> None:
    backend: Any = model_slot.get().backend  # a SerialBackend or the batched llama.cpp engine
    parts = urlsplit(api_url)
    body = json.dumps(
        {
            "model": MODEL_ID,
            "messages": [{"role": "user", "content": "Write a long story."}],
            "max_tokens": 2000,
        }
    ).encode()
    with socket.create_connection((parts.hostname or "", parts.port or 80), timeout=10) as sock:
        head = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        sock.sendall(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
        deadline = time.monotonic() + 60
        while not backend.generating and time.monotonic() < deadline:
            time.sleep(0.05)
        assert backend.generating
    deadline = time.monotonic() + 30
    while backend.generating and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not backend.generating, "the generation went on after the client left"


def test_one_log_line_per_request(client: openai.OpenAI, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="workbench.server"):
        client.chat.completions.create(model=MODEL_ID, messages=MESSAGES, max_tokens=1, temperature=0)
        deadline = time.monotonic() + 10
        while not caplog.records and time.monotonic() < deadline:
            time.sleep(0.05)
    (record,) = [r for r in caplog.records if r.name == "workbench.server"]
    assert re.fullmatch(r"POST /v1/chat/completions 200 tokens=\d+\+1 \d+\.\d\ds", record.getMessage())


def test_tools_of_the_registry_are_listed(model_slot: SharedModel) -> None:
    from tools import default_registry

    with server_thread(create_app(model_slot, registry=default_registry())) as url:
        status, body = http_json("GET", url + "/tools")
    assert status == 200 and "calculator" in [tool["function"]["name"] for tool in body["data"]]
