"""Answers under a JSON schema on llama.cpp: hostile schemas neither crash the server nor give broken JSON.

Every answer that is not cut by length must parse with ``json.loads`` and validate against its schema;
a schema the grammar cannot hold to is a 400 naming the field, before anything is generated.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from tests.server.helpers import MODEL_ID, http_json, server_thread
from workbench.errors import GenerationError
from workbench.models.backends import llama_cpp_installed
from workbench.models.llamacpp_grammar import check_schema, gbnf_literal
from workbench.models.spec import ModelSpec
from workbench.server.app import create_app
from workbench.shared import shared_model


# --- the converter's pieces, without a model ----------------------------------------------------
@pytest.mark.parametrize(
    ("text", "literal"),
    [
        ('say "hi"', r'"say \"hi\""'),
        ("back\\slash", r'"back\\slash"'),
        ('\\"', r'"\\\""'),
        ("new\nline\x00\x7f", r'"new\x0Aline\x00\x7F"'),
        ("é☃🎉", '"é☃🎉"'),
    ],
)
def test_literals_are_escaped_whole(text: str, literal: str) -> None:
    assert gbnf_literal(text) == literal


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"not": {"type": "string"}}, "'not' is not supported"),
        ({"type": "integer", "minimum": 3}, "'minimum' is not supported"),
        ({"type": "string", "pattern": "^a+$"}, "'pattern' is not supported"),
        ({"type": "object", "required": ["x"]}, "'required' needs the properties"),
        ({"type": "object", "properties": {"a": {}}, "required": ["b"]}, "'b', which is not in 'properties'"),
        ({"type": "object", "properties": {"a": {}}, "additionalProperties": True}, "must be false"),
        ({"anyOf": [{"type": "string"}], "type": "string"}, "'anyOf' cannot be combined"),
        ({"type": "string", "enum": ["a", 1]}, "the value 1 does not match"),
        ({"type": "array", "minItems": 2}, "need an 'items' schema"),
        ({"properties": {"a": True}}, "true/false schemas"),
        ({"type": "object", "properties": {"": {}}}, "empty property name"),
        (
            {"type": "object", "properties": {"deep": {"type": "array", "items": {"not": {}}}}},
            "/properties/deep/items",
        ),
    ],
)
def test_schemas_the_grammar_cannot_hold_are_refused(schema: dict[str, Any], message: str) -> None:
    with pytest.raises(GenerationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_schema(schema)


# --- on the embedded model ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def llama_url() -> Iterator[str]:
    """The API on the embedded model on llama.cpp (the engine whose grammar converter is under test)."""
    if not llama_cpp_installed():
        pytest.skip("llama-cpp-python is not installed")
    slot = shared_model(ModelSpec(device="cpu", backend="llama.cpp"))
    slot.get()
    with server_thread(create_app(slot)) as url:
        yield url


def _obj(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


HOSTILE: dict[str, dict[str, Any]] = {
    "free string": _obj({"s": {"type": "string"}}),
    "quote in a const": {"const": 'say "hi"'},
    "backslashes and quotes in an enum": {"enum": ["a\\b", 'c"d', 'e\\"', "\\"]},
    "control characters and unicode in an enum": {"enum": ["tab\there\n", "\x00\x7f", "日本語\u2028🎉"]},
    "hostile property names": _obj(
        {'k"ey': {"const": 1}, "b\\s": {"type": "boolean"}, "ünï\ncode": {"type": "integer"}}
    ),
    "nested arrays of objects": _obj(
        {
            "list": {
                "type": "array",
                "items": _obj({'"q"': {"type": "string", "maxLength": 8}, "n": {"type": "number"}}),
                "minItems": 1,
                "maxItems": 2,
            }
        }
    ),
    "anyOf with escapes": {"anyOf": [{"type": "null"}, _obj({"a\\": {"enum": ['x"y', "z\\"]}})]},
    "$ref with a quote in its name": {
        "$defs": {'q"def': {"enum": ["\\", '"']}},
        **_obj({"x": {"$ref": '#/$defs/q"def'}}),
    },
    "strings everywhere": _obj(
        {"a": {"type": "string"}, "b": {"type": "array", "items": {"type": "string"}}}
    ),
}


@pytest.mark.model
@pytest.mark.parametrize("schema", list(HOSTILE.values()), ids=list(HOSTILE))
def test_every_answer_under_a_hostile_schema_is_valid_json(llama_url: str, schema: dict[str, Any]) -> None:
    for seed in (1, 2, 3):
        body = {
            "model": MODEL_ID,
            "messages": [{"role": "user", "content": 'Write JSON with "quotes", \\ and a new\nline.'}],
            "max_tokens": 80,
            "temperature": 1.0,
            "seed": seed,
            "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
        }
        status, answer = http_json("POST", llama_url + "/chat/completions", body)
        assert status == 200, answer
        choice = answer["choices"][0]
        if choice["finish_reason"] == "length":
            continue
        value = json.loads(choice["message"]["content"])
        errors = [e.message for e in Draft202012Validator(schema).iter_errors(value)]
        assert not errors, (choice["message"]["content"], errors)
    assert http_json("GET", llama_url.removesuffix("/v1") + "/health")[0] == 200


@pytest.mark.model
def test_a_forced_call_to_a_tool_whose_schema_has_quotes_is_valid(llama_url: str) -> None:
    parameters = _obj({'ci"ty': {"enum": ['Pa"ris', "Ro\\me"]}})
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": parameters}}
    body = {
        "model": MODEL_ID,
        "messages": [{"role": "user", "content": "Weather?"}],
        "tools": [tool],
        "tool_choice": "required",
        "max_tokens": 60,
    }
    status, answer = http_json("POST", llama_url + "/chat/completions", body)
    assert status == 200, answer
    call = answer["choices"][0]["message"]["tool_calls"][0]["function"]
    assert call["name"] == "get_weather"
    assert json.loads(call["arguments"])['ci"ty'] in ('Pa"ris', "Ro\\me")


REFUSED: dict[str, tuple[str, dict[str, Any]]] = {
    "not": ("response_format", {"not": {"type": "string"}}),
    "a $ref cycle": (
        "response_format",
        {"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"},
    ),
    "a $ref to the root": ("response_format", {"type": "object", "properties": {"me": {"$ref": "#"}}}),
    "a remote $ref": ("response_format", {"$ref": "https://example.com/schema.json"}),
    "an empty enum in a tool": ("tools", {"type": "object", "properties": {"a": {"enum": []}}}),
}


@pytest.mark.model
@pytest.mark.parametrize(("param", "schema"), list(REFUSED.values()), ids=list(REFUSED))
def test_schemas_the_grammar_cannot_hold_are_400s_before_generating(
    llama_url: str, param: str, schema: dict[str, Any]
) -> None:
    body: dict[str, Any] = {
        "model": MODEL_ID,
        "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": 5,
    }
    if param == "tools":
        body["tools"] = [{"type": "function", "function": {"name": "f", "parameters": schema}}]
        body["tool_choice"] = "required"
    else:
        body["response_format"] = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    status, answer = http_json("POST", llama_url + "/chat/completions", body)
    assert status == 400, answer
    message = answer["error"]["message"]
    assert answer["error"]["param"] == param and "cannot be used" in message
    assert "Generation failed" not in message
