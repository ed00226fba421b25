"""The API's OpenAPI document (``GET /openapi.json``): the routes, what they accept and how they answer.

It describes what the server really does (checked in :mod:`workbench.server.requests`), not all of
OpenAI's API: fields the server refuses (``n`` above 1, ``logprobs``, ...) are listed with the only
values it accepts. ``tests/server/test_server_fuzz.py`` fuzzes the server from this document.
"""

from __future__ import annotations

from typing import Any

from workbench.server.requests import MAX_MESSAGES, MAX_STOP_CHARS, MAX_STOP_STRINGS, MAX_TOOLS

_ERROR = {"$ref": "#/components/schemas/Error"}
_NUMBER_OR_NULL: dict[str, Any] = {"type": ["number", "null"]}


def _errors(*statuses: int) -> dict[str, Any]:
    reasons = {
        400: "A client mistake, naming the field (`param`).",
        401: "A missing or wrong API key.",
        404: "An unknown model or route.",
        408: "The body did not arrive in time.",
        413: "The body is too large.",
        500: "A fault of the server itself.",
        503: (
            "The model is loading or could not be loaded, or every generation slot is busy and the "
            "queue is full (Retry-After says when to try again)."
        ),
    }
    return {
        str(status): {"description": reasons[status], "content": {"application/json": {"schema": _ERROR}}}
        for status in statuses
    }


_SAMPLING: dict[str, Any] = {
    "model": {"type": "string", "description": "The id from GET /v1/models."},
    "temperature": {"type": ["number", "null"], "minimum": 0, "maximum": 2},
    "top_p": {"type": ["number", "null"], "exclusiveMinimum": 0, "maximum": 1},
    "max_tokens": {"type": ["integer", "null"], "minimum": 1},
    "max_completion_tokens": {"type": ["integer", "null"], "minimum": 1},
    "seed": {"type": ["integer", "null"], "minimum": -(2**63), "maximum": 2**63 - 1},
    "repetition_penalty": {"type": ["number", "null"], "minimum": 0.1, "maximum": 2},
    "frequency_penalty": {
        **_NUMBER_OR_NULL,
        "minimum": -2,
        "maximum": 2,
        "description": "Checked, then ignored.",
    },
    "presence_penalty": {
        **_NUMBER_OR_NULL,
        "minimum": -2,
        "maximum": 2,
        "description": "Checked, then ignored.",
    },
    "n": {"type": ["integer", "null"], "enum": [1, None]},
    "stop": {
        "oneOf": [
            {"type": "string", "maxLength": MAX_STOP_CHARS},
            {
                "type": "array",
                "items": {"type": "string", "maxLength": MAX_STOP_CHARS},
                "maxItems": MAX_STOP_STRINGS,
            },
            {"type": "null"},
        ]
    },
    "stream": {"type": ["boolean", "null"]},
    "stream_options": {
        "type": ["object", "null"],
        "properties": {"include_usage": {"type": ["boolean", "null"]}},
    },
    "logprobs": {"type": ["boolean", "null"], "enum": [False, None]},
    "logit_bias": {"type": ["object", "null"], "maxProperties": 0},
}

_TEXT_PART: dict[str, Any] = {
    "type": "object",
    "properties": {"type": {"const": "text"}, "text": {"type": "string"}},
    "required": ["type", "text"],
}

# Read by workbench.openai_messages and workbench.images.image_from_url: data URLs only, never fetched.
_IMAGE_PART: dict[str, Any] = {
    "type": "object",
    "description": (
        "An image, in a user message only, for a served model with vision (that reads images); a "
        "text-only model answers 400 before generating."
    ),
    "properties": {
        "type": {"const": "image_url"},
        "image_url": {
            "type": "object",
            "properties": {
                "url": {
                    "type": "string",
                    "pattern": "^data:",
                    "description": (
                        "The image as a base64 data URL (data:image/png;base64,...; also jpeg, webp, gif). "
                        "Nothing is fetched: an http(s) URL answers 400."
                    ),
                },
                "detail": {"enum": ["auto", "low", "high"], "description": "Accepted, then ignored."},
            },
            "required": ["url"],
        },
    },
    "required": ["type", "image_url"],
}

_CONTENT: dict[str, Any] = {
    "oneOf": [
        {"type": "string"},
        {
            "type": "array",
            "description": "Text parts, joined; and image_url parts for a model with vision.",
            "items": {"oneOf": [_TEXT_PART, _IMAGE_PART]},
        },
        {"type": "null"},
    ]
}

_MESSAGE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "role": {"enum": ["system", "developer", "user", "assistant", "tool"]},
        "content": _CONTENT,
        "name": {"type": "string"},
        "tool_call_id": {"type": "string"},
        "tool_calls": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "type": {"const": "function"},
                    "function": {
                        "type": "object",
                        "properties": {"name": {"type": "string"}, "arguments": {"type": "string"}},
                        "required": ["name", "arguments"],
                    },
                },
                "required": ["function"],
            },
        },
    },
    "required": ["role"],
}

_TOOL: dict[str, Any] = {
    "type": "object",
    "properties": {
        "type": {"const": "function"},
        "function": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "pattern": "^[a-zA-Z0-9_-]{1,64}$"},
                "description": {"type": "string"},
                "parameters": {"type": "object", "description": "A JSON schema."},
            },
            "required": ["name"],
        },
    },
    "required": ["type", "function"],
}

_CHAT_REQUEST: dict[str, Any] = {
    "type": "object",
    "properties": {
        **_SAMPLING,
        "messages": {"type": "array", "items": _MESSAGE, "minItems": 1, "maxItems": MAX_MESSAGES},
        "tools": {"type": ["array", "null"], "items": _TOOL, "maxItems": MAX_TOOLS},
        "tool_choice": {
            "oneOf": [
                {"enum": ["none", "auto", "required", None]},
                {
                    "type": "object",
                    "properties": {
                        "type": {"const": "function"},
                        "function": {
                            "type": "object",
                            "properties": {"name": {"type": "string"}},
                            "required": ["name"],
                        },
                    },
                    "required": ["function"],
                },
            ]
        },
        "response_format": {
            "oneOf": [
                {
                    "type": "object",
                    "properties": {"type": {"enum": ["text", "json_object"]}},
                    "required": ["type"],
                },
                {
                    "type": "object",
                    "properties": {
                        "type": {"const": "json_schema"},
                        "json_schema": {
                            "type": "object",
                            "properties": {
                                "name": {"type": "string"},
                                "schema": {"type": "object"},
                                "strict": {"type": ["boolean", "null"]},
                            },
                            "required": ["schema"],
                        },
                    },
                    "required": ["type", "json_schema"],
                },
                {"type": "null"},
            ]
        },
    },
    "required": ["model", "messages"],
}

_TEXT_REQUEST: dict[str, Any] = {
    "type": "object",
    "properties": {
        **_SAMPLING,
        "prompt": {
            "oneOf": [
                {"type": "string", "minLength": 1},
                {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1, "maxItems": 1},
            ]
        },
        "echo": {"type": ["boolean", "null"], "enum": [False, None]},
        "suffix": {"type": ["string", "null"], "maxLength": 0},
        "best_of": {"type": ["integer", "null"], "enum": [1, None]},
        "logprobs": {"type": "null"},
    },
    "required": ["model", "prompt"],
}

_COMPLETION = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "object": {"type": "string"},
        "created": {"type": "integer"},
        "model": {"type": "string"},
        "choices": {"type": "array"},
        "usage": {"type": "object"},
    },
    "required": ["id", "object", "created", "model", "choices"],
}


_EMBEDDINGS_REQUEST = {
    "type": "object",
    "properties": {
        "input": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
        "model": {"type": "string"},
        "encoding_format": {"enum": ["float", "base64"]},
        "dimensions": {"type": "integer"},
        "input_type": {"enum": ["query", "passage"]},
    },
    "required": ["input"],
}


def _completion_route(summary: str, request: dict[str, Any]) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "requestBody": {"required": True, "content": {"application/json": {"schema": request}}},
            "responses": {
                "200": {
                    "description": "The answer; server-sent events ending in `data: [DONE]` when streamed.",
                    "content": {
                        "application/json": {"schema": _COMPLETION},
                        "text/event-stream": {"schema": {"type": "string"}},
                    },
                },
                **_errors(400, 401, 404, 408, 413, 500, 503),
            },
        }
    }


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the API."""
    model = {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "object": {"const": "model"},
            "created": {"type": "integer"},
            "owned_by": {"type": "string"},
        },
        "required": ["id", "object", "created", "owned_by"],
    }
    listing = {"type": "object", "properties": {"object": {"const": "list"}, "data": {"type": "array"}}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Workbench OpenAI-compatible API",
            "version": "1",
            "description": "The model Workbench runs, behind OpenAI's Chat Completions API (see docs/serving.md).",
        },
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": {
                        "error": {
                            "type": "object",
                            "properties": {
                                "message": {"type": "string"},
                                "type": {"type": "string"},
                                "param": {"type": ["string", "null"]},
                                "code": {"type": ["string", "null"]},
                            },
                            "required": ["message", "type", "param", "code"],
                        }
                    },
                    "required": ["error"],
                }
            },
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}, {}],
        "paths": {
            "/health": {
                "get": {
                    "summary": "Whether the model is loaded (open without a key).",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "Loaded.",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        },
                        "503": {
                            "description": "Loading or failed.",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        },
                    },
                }
            },
            "/v1/models": {
                "get": {
                    "summary": "The served model.",
                    "responses": {
                        "200": {
                            "description": "A list of one model.",
                            "content": {"application/json": {"schema": listing}},
                        },
                        **_errors(401),
                    },
                }
            },
            "/v1/models/{model_id}": {
                "get": {
                    "summary": "One model by id.",
                    "parameters": [
                        {"name": "model_id", "in": "path", "required": True, "schema": {"type": "string"}}
                    ],
                    "responses": {
                        "200": {
                            "description": "The model.",
                            "content": {"application/json": {"schema": model}},
                        },
                        **_errors(401, 404),
                    },
                }
            },
            "/v1/chat/completions": _completion_route("A chat answer.", _CHAT_REQUEST),
            "/v1/completions": _completion_route("A raw prompt continued.", _TEXT_REQUEST),
            "/v1/embeddings": {
                "post": {
                    "summary": "Embeddings from the embedded multilingual e5 embedder.",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _EMBEDDINGS_REQUEST}},
                    },
                    "responses": {
                        "200": {
                            "description": "One embedding per input, in order.",
                            "content": {"application/json": {"schema": listing}},
                        },
                        **_errors(400, 401, 404, 408, 413, 500),
                    },
                }
            },
            "/v1/tools": {
                "get": {
                    "summary": "The schemas of the tools of --tools-path, ready to send as `tools`.",
                    "responses": {
                        "200": {
                            "description": "A list of tools.",
                            "content": {"application/json": {"schema": listing}},
                        },
                        **_errors(401),
                    },
                }
            },
        },
    }
