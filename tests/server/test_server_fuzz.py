"""Schemathesis fuzzes the API from its own OpenAPI document: no request may get a 5xx or take it down.

The server runs as ``serve`` runs it (uvicorn, its deadlines) on a scripted model, so the run is fast and
exercises the whole request path (reading, checking, prompt rendering, stop strings, tool calls,
streaming) except the engine's sampling. Fixed seed (``derandomize``), a few hundred cases per route.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from jsonschema import Draft202012Validator
from schemathesis.checks import not_a_server_error

from tests.scripted import ScriptedBackend, call, hermes
from tests.server.helpers import http_json, server_thread
from tests.vision_fixture import sample_image
from workbench.chat_model import ChatModel
from workbench.images import data_url, prepare_image
from workbench.models.generation import GenerationRequest, GenerationStream
from workbench.server.app import create_app
from workbench.server.openapi import openapi_document
from workbench.shared import SharedModel

SCHEMA = schemathesis.openapi.from_dict(openapi_document())
MODEL = "scripted"


class EndlessScript(ScriptedBackend):
    """Answers every request, alternating words and a tool call (with a stop string inside)."""

    def start(self, request: GenerationRequest) -> GenerationStream:
        self.replies.append(call("f", x=1) if len(self.requests) % 2 else "Hello <tool_call> there. END")
        self.requests.clear()  # the fuzz sends thousands: keep no history
        return super().start(request)


@pytest.fixture(scope="module")
def fuzz_url() -> Iterator[str]:
    """The API on the scripted model, served as ``serve`` serves it."""
    slot = SharedModel(EndlessScript().spec)
    slot._model = ChatModel(EndlessScript(chunk_chars=2), hermes())
    with server_thread(create_app(slot, model_id=MODEL)) as url:
        yield url.removesuffix("/v1")


@SCHEMA.parametrize()
@settings(
    max_examples=250,
    derandomize=True,  # a fixed seed: the same cases on every run
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
@pytest.mark.timeout(600)
def test_no_request_gets_a_server_error(case: schemathesis.Case, fuzz_url: str) -> None:
    embeddings = case.path == "/v1/embeddings"
    if (
        isinstance(case.body, dict)
        and "model" in case.body
        and case.body.get("model") != MODEL
        and not embeddings
    ):
        case.body["model"] = MODEL  # otherwise almost every case stops at "unknown model"
    if embeddings and isinstance(case.body, dict) and "model" in case.body:
        case.body["model"] = "e5"
    case.call_and_validate(base_url=fuzz_url, checks=[not_a_server_error], timeout=30)


def test_the_document_is_served(fuzz_url: str) -> None:
    status, document = http_json("GET", fuzz_url + "/openapi.json")
    assert status == 200 and document == openapi_document()
    assert set(document["paths"]) == {
        "/health",
        "/v1/models",
        "/v1/models/{model_id}",
        "/v1/chat/completions",
        "/v1/completions",
        "/v1/embeddings",
        "/v1/tools",
    }


def test_the_document_lists_image_url_content_parts(fuzz_url: str) -> None:
    """``serve`` reads OpenAI image_url parts (base64 data URLs, for a vision model): its document says so."""
    status, document = http_json("GET", fuzz_url + "/openapi.json")
    assert status == 200
    request = document["paths"]["/v1/chat/completions"]["post"]["requestBody"]["content"]["application/json"]
    content = Draft202012Validator(
        request["schema"]["properties"]["messages"]["items"]["properties"]["content"]
    )
    text = {"type": "text", "text": "What is this?"}
    picture = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    assert content.is_valid([text, picture])
    assert content.is_valid(
        [{"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/", "detail": "low"}}]
    )
    for refused in (
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},  # nothing is fetched
        {"type": "image_url", "image_url": {"detail": "low"}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "huge"}},
        {"type": "input_audio", "input_audio": {"data": "", "format": "wav"}},
    ):
        assert not content.is_valid([text, refused]), refused
    [part] = [p for p in content.schema["oneOf"] if p.get("type") == "array"]
    assert "vision" in json.dumps(part)  # it says which models take images
    # What is refused at run time stays refused (this scripted model reads text only).
    photo = data_url(prepare_image(sample_image((48, 32))))
    for url, expected in ((photo, "reads text only"), ("https://example.com/cat.png", "not fetched")):
        body = {
            "model": MODEL,
            "messages": [{"role": "user", "content": [text, {**picture, "image_url": {"url": url}}]}],
        }
        status, answer = http_json("POST", fuzz_url + "/v1/chat/completions", body)
        assert status == 400 and expected in answer["error"]["message"], answer
