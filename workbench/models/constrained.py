"""Schema-constrained decoding with xgrammar, for engines that expose their logits (transformers).

xgrammar compiles a JSON schema into a grammar over the tokenizer's vocabulary and masks every token
that would break it, so the output is valid JSON matching the schema. It was chosen because it is
maintained, runs on the CPU, ships wheels and has a ready transformers logits processor.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Any

from workbench.errors import GenerationError


class JsonGrammar:
    """Compiles JSON schemas for one tokenizer; the compiler is built on first use and reused.

    Compiled grammars are kept by schema (the last :attr:`CACHE_SIZE`), so a repeated constrained call
    (the same tools, the same response format) starts decoding without compiling again.

    Args:
        tokenizer: A Hugging Face tokenizer.
        vocab_size: The model's vocabulary size (its logits' width, which may exceed the tokenizer's).
    """

    CACHE_SIZE = 64

    def __init__(self, tokenizer: Any, vocab_size: int) -> None:
        self._tokenizer = tokenizer
        self._vocab_size = vocab_size
        self._compiler: Any = None
        self._lock = threading.Lock()
        self._compiled: OrderedDict[str, Any] = OrderedDict()

    def logits_processor(self, schema: dict[str, Any]) -> Any:
        """Return a fresh transformers logits processor holding output to ``schema``.

        Raises:
            GenerationError: If xgrammar is missing or the schema cannot be compiled.
        """
        compiled = self.compiled(schema)
        import xgrammar as xgr

        # A processor holds its matcher's state: one per generation, over a grammar compiled once.
        return xgr.contrib.hf.LogitsProcessor(compiled)

    def compiled(self, schema: dict[str, Any]) -> Any:
        """Return the compiled grammar of ``schema``, compiling it only the first time it is seen.

        Raises:
            GenerationError: If xgrammar is missing or the schema cannot be compiled.
        """
        key = json.dumps(schema)  # not sorted: the properties' order is the output's order
        with self._lock:
            if key in self._compiled:
                self._compiled.move_to_end(key)
                return self._compiled[key]
        try:
            import xgrammar as xgr
        except ImportError as exc:  # pragma: no cover - a requirement
            raise GenerationError("Constrained decoding needs xgrammar: pip install xgrammar.") from exc
        with self._lock:
            if self._compiler is None:
                info = xgr.TokenizerInfo.from_huggingface(self._tokenizer, vocab_size=self._vocab_size)
                self._compiler = xgr.GrammarCompiler(info)
            compiler = self._compiler
        try:
            # Compact separators: with ": " a small model picks a bare-space token after the colon (a token
            # split it never saw) and then writes an empty or garbled value; measured on SmolLM2-135M.
            compiled = compiler.compile_json_schema(
                key, any_whitespace=False, separators=(",", ":"), strict_mode=True
            )
        except Exception as exc:
            raise GenerationError(f"Could not compile the JSON schema into a grammar: {exc}.") from exc
        with self._lock:
            self._compiled[key] = compiled
            while len(self._compiled) > self.CACHE_SIZE:
                self._compiled.popitem(last=False)
        return compiled
