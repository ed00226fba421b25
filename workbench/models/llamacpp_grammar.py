"""JSON schemas as llama.cpp grammars, for constrained tool calls and response formats on llama.cpp.

llama-cpp-python converts a JSON schema into a GBNF grammar that llama.cpp's sampler enforces token by
token. Its converter allows one optional space after ``:`` and ``,``; we make that space impossible,
as the transformers path does with xgrammar's compact separators (see :mod:`workbench.models.constrained`):
with ``": "`` a small model picks a bare-space token after the colon and then writes an empty value.

xgrammar is not used here: importing it imports torch and transformers, which the llama.cpp path avoids
(bench/bench_model.py measures both on the embedded model).
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from workbench.errors import GenerationError

#: The converter's whitespace rule, replaced by the empty string (compact JSON, as json.dumps with
#: separators=(",", ":") writes it).
COMPACT_SPACE = '""'


@lru_cache(maxsize=32)
def _gbnf(schema_json: str) -> str:
    from llama_cpp.llama_grammar import SchemaConverter

    converter = SchemaConverter(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)
    schema = converter.resolve_refs(json.loads(schema_json), "schema")
    converter.visit(schema, "")
    converter._rules["space"] = COMPACT_SPACE
    return str(converter.format_grammar())


def json_schema_gbnf(schema: dict[str, Any]) -> str:
    """Return the GBNF grammar of a JSON schema, without optional whitespace (cached by schema).

    Raises:
        GenerationError: If the schema cannot be converted.
    """
    try:
        return _gbnf(json.dumps(schema))
    except Exception as exc:  # the converter raises bare ValueErrors, KeyErrors, ... on schemas it rejects
        raise GenerationError(f"Could not turn the JSON schema into a grammar: {exc}.") from exc


def json_schema_grammar(schema: dict[str, Any]) -> Any:
    """Return a ``llama_cpp.LlamaGrammar`` holding output to ``schema`` as compact JSON.

    Raises:
        GenerationError: If the schema cannot be converted.
    """
    from llama_cpp.llama_grammar import LlamaGrammar

    return LlamaGrammar.from_string(json_schema_gbnf(schema), verbose=False)
