"""Typed results for ``workbench mcp``: a return annotation as ``outputSchema``, the value as ``structuredContent``.

The registry's schema of a tool's return value (:attr:`tools.ToolSpec.returns`, from the annotation, as
transformers' ``get_json_schema`` reads it) becomes the ``outputSchema``. MCP wants an object there, so
any other type is wrapped as ``{"result": <value>}``, as the SDK's own servers do. Tools run through the
registry, which returns text (tool files run in the tool host); the value is read back from that text
(the text itself, or the JSON it holds) and checked against the schema. A tool whose value does not fit
its own annotation gets an error result saying so, never a ``structuredContent`` that breaks its schema.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from tools.arguments import spell_nullable
from tools.calling import NO_RESULT

WRAPPED = "result"
"""The property that holds a value that is not an object."""


class OutputType:
    """A tool's ``outputSchema`` and the check of its values.

    Args:
        returns: The JSON schema of the return value (``ToolSpec.returns``).

    Raises:
        ValueError: If ``returns`` is not a schema a validator can hold (``-> Any``, odd types).
    """

    def __init__(self, returns: dict[str, Any]) -> None:
        inner = spell_nullable(returns)
        if not isinstance(inner, dict) or not ({"type", "anyOf"} & set(inner)):
            raise ValueError(f"no usable return type: {returns!r}")
        self.wrapped = inner.get("type") != "object"
        self.schema: dict[str, Any] = (
            {"type": "object", "properties": {WRAPPED: inner}, "required": [WRAPPED]}
            if self.wrapped
            else inner
        )
        try:
            Draft202012Validator.check_schema(self.schema)
        except SchemaError as exc:
            raise ValueError(f"not a JSON schema: {exc.message}") from None
        self._value = Draft202012Validator(inner)

    def structured(self, text: str) -> dict[str, Any]:
        """The ``structuredContent`` for a result given as ``text``.

        Raises:
            ValueError: If no reading of the text fits the return type.
        """
        for value in _readings(text):
            if self._value.is_valid(value):
                return {WRAPPED: value} if self.wrapped else value
        raise ValueError(f"the value does not fit the declared return type {json.dumps(self.schema)}")


def output_type(returns: dict[str, Any] | None) -> OutputType | None:
    """The output type of a tool with this return schema, or None (no annotation, or one no schema holds).

    Kept per schema: checking a schema takes about a millisecond, longer than the rest of a call.
    """
    if returns is None:
        return None
    key = json.dumps(returns, sort_keys=True, default=str)
    if key not in _TYPES:
        try:
            _TYPES[key] = OutputType(returns)
        except ValueError:
            _TYPES[key] = None
    return _TYPES[key]


_TYPES: dict[str, OutputType | None] = {}


def _readings(text: str) -> list[Any]:
    """What a tool's value may have been, given its text (``tools.calling.result_to_text``), likeliest first."""
    readings: list[Any] = [None] if text == NO_RESULT else []
    readings.append(text)  # a str
    with contextlib.suppress(ValueError):
        readings.append(json.loads(text))  # numbers, lists and dicts are written as JSON
    if text in ("True", "False"):  # a bool is written by str()
        readings.append(text == "True")
    return readings
