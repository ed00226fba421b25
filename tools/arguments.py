"""Checking a model's arguments against a tool's schema, after forgiving the usual small-model slips.

Models often send ``"7"`` for 7 or ``"true"`` for true; those are coerced first, where the schema
wants a number or a boolean. What is still wrong becomes one message naming each bad field.
"""

from __future__ import annotations

import json
import math
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError

from tools.errors import InvalidArgumentsError

_JSON_TYPES = {
    type(None): "null",
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    list: "array",
    dict: "object",
}
_EXPECTED = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "boolean": "true or false",
    "array": "an array",
    "object": "an object",
    "null": "null",
}
_EXAMPLES: dict[str, Any] = {
    "integer": 1,
    "number": 1.5,
    "string": "text",
    "boolean": True,
    "array": [],
    "object": {},
}


def check_parameters_schema(parameters: Any) -> str | None:
    """Return what is wrong with a tool's parameters schema, or None if it can validate arguments."""
    if not isinstance(parameters, dict) or parameters.get("type") != "object":
        return 'its parameters must be a JSON schema of type "object" with "properties".'
    try:
        Draft202012Validator.check_schema(validation_schema(parameters))
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.path)
        return f"its parameters are not a valid JSON schema (at {where or 'the top'}): {exc.message}."
    return None


def validation_schema(parameters: dict[str, Any]) -> dict[str, Any]:
    """Return the schema used to validate: extra arguments refused, ``nullable`` spelled as JSON Schema.

    transformers writes ``Optional[X]`` as ``"nullable": true`` (OpenAPI style), which JSON Schema
    validators ignore, so it becomes ``anyOf: [X, null]`` here.
    """
    schema = spell_nullable(parameters)
    schema.setdefault("additionalProperties", False)
    return schema


def spell_nullable(schema: Any) -> Any:
    """Return ``schema`` with transformers' ``"nullable": true`` spelled as ``anyOf: [X, null]``, at every depth."""
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    if isinstance(out.get("properties"), dict):
        out["properties"] = {k: spell_nullable(v) for k, v in out["properties"].items()}
    for key in ("items", "additionalProperties"):
        if isinstance(out.get(key), dict):
            out[key] = spell_nullable(out[key])
    for key in ("prefixItems", "anyOf", "oneOf", "allOf"):
        if isinstance(out.get(key), list):
            out[key] = [spell_nullable(s) for s in out[key]]
    if out.pop("nullable", False):
        description = out.pop("description", None)
        out = {"anyOf": [out, {"type": "null"}]}
        if description is not None:
            out["description"] = description
    return out


def prepare_arguments(tool_name: str, parameters: dict[str, Any], raw: Any) -> dict[str, Any]:
    """Return the arguments to call the tool with: parsed, coerced and validated.

    Args:
        tool_name: For the messages.
        parameters: The tool's parameters schema.
        raw: What the model sent: a dict, a JSON string, or None for no arguments.

    Raises:
        InvalidArgumentsError: Naming each missing, unexpected or wrongly typed argument.
    """
    example = _example(parameters)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raw = {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InvalidArgumentsError(
                f"The arguments for tool {tool_name!r} are not valid JSON ({exc.msg} at character "
                f"{exc.pos}). Send a JSON object, for example {example}."
            ) from None
    if not isinstance(raw, dict):
        raise InvalidArgumentsError(
            f"The arguments for tool {tool_name!r} must be a JSON object, for example {example}, "
            f"not {_json_type(raw)} {_show(raw)}."
        )
    arguments = coerce(raw, parameters)
    properties = parameters.get("properties", {})
    problems = [
        f"missing required argument {name!r}"
        for name in parameters.get("required", [])
        if name not in arguments
    ]
    if parameters.get("additionalProperties", False) is False:
        problems += [f"unexpected argument {name!r}" for name in arguments if name not in properties]
    validator = Draft202012Validator(validation_schema(parameters))
    for error in sorted(validator.iter_errors(arguments), key=lambda e: list(map(str, e.absolute_path))):
        if error.absolute_path or error.validator not in ("required", "additionalProperties"):
            problems.append(_describe(error))
    if problems:
        raise InvalidArgumentsError(
            f"Invalid arguments for tool {tool_name!r}: {'; '.join(problems)}. "
            f"It takes {_signature(parameters)}. Call it again with corrected arguments, "
            f"for example {example}."
        )
    return arguments


def coerce(value: Any, schema: Any) -> Any:
    """Return ``value`` with strings turned into the number, boolean or JSON the schema asks for."""
    if not isinstance(schema, dict):
        return value
    types = _types(schema)
    if isinstance(value, str) and "string" not in types:
        value = _from_string(value.strip(), types)
    if isinstance(value, str) and isinstance(schema.get("enum"), list) and value not in schema["enum"]:
        # "Celsius" for the enum value "celsius": take it when exactly one value matches.
        same = [v for v in schema["enum"] if isinstance(v, str) and v.lower() == value.lower()]
        value = same[0] if len(same) == 1 else value
    if isinstance(value, float) and "integer" in types and "number" not in types and value.is_integer():
        value = int(value)
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        value = [coerce(v, schema["items"]) for v in value]
    if isinstance(value, dict) and isinstance(schema.get("properties"), dict):
        props = schema["properties"]
        value = {k: coerce(v, props.get(k)) for k, v in value.items()}
    return value


def _from_string(text: str, types: set[str]) -> Any:
    if "integer" in types or "number" in types:
        try:
            return int(text)
        except ValueError:
            pass
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if math.isfinite(number):
            if "number" in types:
                return number
            if number.is_integer():
                return int(number)
    if "boolean" in types and text.lower() in ("true", "false"):
        return text.lower() == "true"
    if "null" in types and text.lower() in ("null", "none"):
        return None
    if types & {"array", "object"} and text[:1] in ("[", "{"):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError:
            return text
        return parsed if _json_type(parsed) in types else text
    return text


def _types(schema: dict[str, Any]) -> set[str]:
    declared = schema.get("type")
    types = {declared} if isinstance(declared, str) else set(declared or [])
    for sub in schema.get("anyOf", []):
        if isinstance(sub, dict):
            types |= _types(sub)
    if schema.get("nullable"):
        types.add("null")
    return types


def _describe(error: ValidationError) -> str:
    if error.validator == "anyOf" and error.context:
        # For X | None, explain the X part rather than "not valid under any of the given schemas".
        inner = [e for e in error.context if not (e.validator == "type" and e.validator_value == "null")]
        if len(inner) < len(error.context) and inner:
            return _describe_one(_field(inner[0]), inner[0], or_null=not inner[0].relative_path)
    return _describe_one(_field(error), error)


def _field(error: ValidationError) -> str:
    path = ".".join(str(p) for p in error.absolute_path)
    return f"argument {path!r}" if path else "the arguments"


def _describe_one(field: str, error: ValidationError, *, or_null: bool = False) -> str:
    also = " or null" if or_null else ""
    if error.validator == "type":
        wanted = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        expected = " or ".join(_EXPECTED.get(str(t), str(t)) for t in wanted)
        return f"{field} must be {expected}{also}, not {_json_type(error.instance)} {_show(error.instance)}"
    if error.validator == "enum":
        allowed = ", ".join(json.dumps(v) for v in error.validator_value)
        return f"{field} must be one of {allowed}{also}, not {_show(error.instance)}"
    return f"{field}: {error.message}"


def _signature(parameters: dict[str, Any]) -> str:
    required = set(parameters.get("required", []))
    parts = []
    for name, schema in parameters.get("properties", {}).items():
        kind = " or ".join(sorted(_types(schema))) or "any"
        if isinstance(schema, dict) and isinstance(schema.get("enum"), list):
            kind = "one of " + ", ".join(json.dumps(v) for v in schema["enum"])
        parts.append(f"{name} ({kind}{', required' if name in required else ''})")
    return ", ".join(parts) if parts else "no arguments"


def _example(parameters: dict[str, Any]) -> str:
    example = {}
    properties = parameters.get("properties", {})
    for name in parameters.get("required", []):
        schema = properties.get(name, {})
        if isinstance(schema, dict) and schema.get("enum"):
            example[name] = schema["enum"][0]
        else:
            example[name] = next((_EXAMPLES[t] for t in sorted(_types(schema)) if t in _EXAMPLES), "value")
    return json.dumps(example)


def _json_type(value: Any) -> str:
    return next((name for kind, name in _JSON_TYPES.items() if type(value) is kind), type(value).__name__)


def _show(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False, default=repr)
    return text if len(text) <= limit else text[: limit - 3] + "..."
