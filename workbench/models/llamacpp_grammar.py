r"""JSON schemas as llama.cpp grammars, for constrained tool calls and response formats on llama.cpp.

llama-cpp-python converts a JSON schema into a GBNF grammar that llama.cpp's sampler enforces token by
token. Three things are changed on its converter:

- the optional space after ``:`` and ``,`` is made impossible, as the transformers path does with
  xgrammar's compact separators (see :mod:`workbench.models.constrained`): with ``": "`` a small model
  picks a bare-space token after the colon and then writes an empty value;
- literals (``const``, ``enum`` values, property names) are escaped whole: the converter escapes ``"``
  but not ``\``, so a quote in a schema made a grammar llama.cpp could not parse;
- a string's characters are what JSON allows: no raw control characters (``\x00-\x1F``, ``\x7F``), as
  llama.cpp's own converter has it, so every answer parses with ``json.loads``.

The converter also ignores some keywords (``minimum``, ``not``, ...) and lets raw quotes through a
``pattern``; :func:`check_schema` refuses a schema using one where the answer must match it (a response
format), rather than decoding an answer that breaks it. Every grammar is parsed by llama.cpp itself
before it is used: llama-cpp-python does not parse it until it samples, and sampling with a grammar
llama.cpp rejected crashed the process.

xgrammar is not used here: importing it imports torch and transformers, which the llama.cpp path avoids
(bench/bench_model.py measures both on the embedded model).
"""

from __future__ import annotations

import json
import threading
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator

from workbench.errors import GenerationError

#: The converter's whitespace rule, replaced by the empty string (compact JSON, as json.dumps with
#: separators=(",", ":") writes it).
COMPACT_SPACE = '""'

#: A character of a JSON string: anything but ``"``, ``\\`` and control characters, or an escape.
JSON_CHAR = r'[^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F])'

#: Keywords that constrain a value but that the converter ignores (or, for ``pattern``, turns into a
#: string rule that lets raw quotes through): an answer decoded without them could break the schema.
UNSUPPORTED_KEYWORDS = frozenset(
    {
        "not", "allOf", "if", "then", "else", "pattern", "minimum", "maximum", "exclusiveMinimum",
        "exclusiveMaximum", "multipleOf", "uniqueItems", "contains", "minContains", "maxContains",
        "patternProperties", "propertyNames", "minProperties", "maxProperties", "dependentRequired",
        "dependentSchemas", "dependencies", "unevaluatedProperties", "unevaluatedItems", "additionalItems",
        "$dynamicRef", "$recursiveRef",
    }
)  # fmt: skip
#: Keywords that hold a value to something (as opposed to annotations such as ``title``).
_ASSERTIONS = frozenset(
    {
        "type", "properties", "required", "additionalProperties", "items", "prefixItems", "minItems",
        "maxItems", "enum", "const", "anyOf", "oneOf", "$ref", "minLength", "maxLength",
    }
)  # fmt: skip
_SUBSCHEMA_MAPS = ("properties", "$defs", "definitions")
_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "prefixItems")


def gbnf_literal(text: str) -> str:
    """``text`` as a GBNF string literal: quotes, backslashes and control characters escaped."""
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif char < " " or char == "\x7f":
            out.append(f"\\x{ord(char):02X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def check_schema(schema: Any, path: str = "") -> None:
    """Refuse a schema the grammar cannot hold an answer to (``path`` says where, for the message).

    Raises:
        GenerationError: Naming the place and the keyword.
    """
    where = path or "the top"
    if not isinstance(schema, dict):
        raise GenerationError(
            f"At {where}: a schema must be an object here (true/false schemas are not supported)."
        )
    for keyword in sorted(UNSUPPORTED_KEYWORDS & schema.keys()):
        raise GenerationError(
            f"At {where}: the keyword {keyword!r} is not supported for constrained output on this engine; "
            "leave it out (and check the value yourself)."
        )
    assertions = _ASSERTIONS & schema.keys()
    for head in ("$ref", "anyOf", "oneOf"):
        if head in schema and assertions - {head}:
            others = ", ".join(sorted(assertions - {head}))
            raise GenerationError(
                f"At {where}: {head!r} cannot be combined with {others} here; move them inside it."
            )
    if isinstance(schema.get("type"), list) and assertions - {"type"}:
        raise GenerationError(f"At {where}: a list of types cannot be combined with other keywords here.")
    properties = schema.get("properties")
    if isinstance(properties, dict):
        if "" in properties:
            raise GenerationError(f"At {where}: an empty property name is not supported here.")
        missing = [name for name in schema.get("required", []) if name not in properties]
        if missing:
            raise GenerationError(
                f"At {where}: 'required' names {missing[0]!r}, which is not in 'properties'."
            )
        extra = schema.get("additionalProperties")
        if extra is not None and extra is not False:
            raise GenerationError(
                f"At {where}: 'additionalProperties' next to 'properties' must be false (or left out) here."
            )
    elif schema.get("required"):
        raise GenerationError(f"At {where}: 'required' needs the properties listed in 'properties'.")
    if ("minItems" in schema or "maxItems" in schema) and not isinstance(schema.get("items"), dict):
        raise GenerationError(f"At {where}: 'minItems' and 'maxItems' need an 'items' schema here.")
    if "prefixItems" in schema and "items" in schema:
        raise GenerationError(f"At {where}: 'prefixItems' cannot be combined with 'items' here.")
    if ("minLength" in schema or "maxLength" in schema) and schema.get("type") != "string":
        raise GenerationError(f"At {where}: 'minLength' and 'maxLength' need 'type': 'string' here.")
    values = [schema["const"]] if "const" in schema else schema.get("enum", [])
    if ("const" in schema or "enum" in schema) and assertions - {"const", "enum"}:
        rest = {key: value for key, value in schema.items() if key not in ("const", "enum")}
        for value in values:
            if not Draft202012Validator(rest).is_valid(value):
                raise GenerationError(
                    f"At {where}: the value {value!r} does not match the schema's other keywords."
                )
    for key in _SUBSCHEMA_MAPS:
        for name, sub in (schema.get(key) or {}).items():
            check_schema(sub, f"{path}/{key}/{name}")
    for key in _SUBSCHEMA_LISTS:
        for index, sub in enumerate(schema.get(key) or []):
            check_schema(sub, f"{path}/{key}/{index}")
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            check_schema(schema[key], f"{path}/{key}")


@lru_cache(maxsize=32)
def _gbnf(schema_json: str) -> str:
    from llama_cpp.llama_grammar import SchemaConverter

    class Converter(SchemaConverter):
        def _format_literal(self, literal: str) -> str:
            return gbnf_literal(literal)

    converter = Converter(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)
    schema = converter.resolve_refs(json.loads(schema_json), "schema")
    converter.visit(schema, "")
    converter._rules["space"] = COMPACT_SPACE
    if "char" in converter._rules:
        converter._rules["char"] = JSON_CHAR
    return str(converter.format_grammar())


def json_schema_gbnf(schema: dict[str, Any]) -> str:
    """Return the GBNF grammar of a JSON schema, without optional whitespace (cached by schema).

    Raises:
        GenerationError: If the schema cannot be converted.
    """
    try:
        return _gbnf(json.dumps(schema))
    except Exception as exc:  # the converter raises bare ValueErrors, KeyErrors, RecursionErrors, ...
        reason = str(exc) or type(exc).__name__
        raise GenerationError(f"Could not turn the JSON schema into a grammar: {reason}.") from exc


_parsed: set[str] = set()
_parsed_lock = threading.Lock()


def check_gbnf(gbnf: str, vocab: Any) -> None:
    """Have llama.cpp parse a grammar (as its sampler will), once per grammar text.

    Raises:
        GenerationError: If llama.cpp rejects it.
    """
    with _parsed_lock:
        if gbnf in _parsed:
            return
    import llama_cpp

    sampler = llama_cpp.llama_sampler_init_grammar(vocab, gbnf.encode("utf-8"), b"root")
    if not sampler:
        raise GenerationError("llama.cpp could not parse the grammar made from the JSON schema.")
    llama_cpp.llama_sampler_free(sampler)
    with _parsed_lock:
        if len(_parsed) >= 256:  # a server sees endless schemas: keep the memory bounded
            _parsed.clear()
        _parsed.add(gbnf)


def json_schema_grammar(schema: dict[str, Any], vocab: Any) -> Any:
    """Return a ``llama_cpp.LlamaGrammar`` holding output to ``schema`` as compact JSON.

    Args:
        schema: The JSON schema.
        vocab: The model's ``llama_vocab`` pointer, to parse the grammar with before it is used.

    Raises:
        GenerationError: If the schema cannot be held to, converted, or parsed by llama.cpp.
    """
    from llama_cpp.llama_grammar import LlamaGrammar

    gbnf = json_schema_gbnf(schema)
    check_gbnf(gbnf, vocab)
    return LlamaGrammar.from_string(gbnf, verbose=False)
