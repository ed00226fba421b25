"""The transformers engine's decode path: its own stop-string check, the static KV cache, cached grammars.

Every answer here is forced by a JSON schema (an enum of one string) or only its plumbing is asserted:
the 135M model's free text changes with the CPU.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from transformers import cache_utils
from transformers.generation import stopping_criteria

from workbench.errors import ModelLoadError
from workbench.messages import Message, Role
from workbench.models.generation import GenerationRequest, SamplingSettings
from workbench.models.transformers_backend import (
    _StopStringCriterion,
    compile_choice,
    kv_cache_choice,
    static_cache_size,
)

GREEDY = SamplingSettings(temperature=0, max_new_tokens=24)
PHRASE = "alpha beta gamma delta epsilon"
FORCED = {"enum": [PHRASE]}  # the answer is exactly '"alpha beta gamma delta epsilon"'


def forced_request(model, *, stop_strings=(), max_new_tokens=24):
    prompt = model.dialect.render([Message(Role.USER, "Say the Greek letters. Answer in JSON.")])
    return GenerationRequest(
        prompt, GREEDY.with_(max_new_tokens=max_new_tokens), stop_strings=stop_strings, json_schema=FORCED
    )


def test_the_stop_check_finds_a_string_split_over_tokens_and_ignores_the_prompt(transformers_model):
    tokenizer = transformers_model.backend.tokenizer
    prompt = tokenizer("<tool_response> is in the prompt.", add_special_tokens=False)["input_ids"]
    reply = tokenizer(" so<tool_re", add_special_tokens=False)["input_ids"]
    rest = tokenizer("sponse>", add_special_tokens=False)["input_ids"]
    check: Any = _StopStringCriterion(tokenizer, ("<tool_response>",), len(prompt))

    assert len(tokenizer("<tool_response>", add_special_tokens=False)["input_ids"]) > 1
    assert not check(torch.tensor([prompt + reply]), None)
    assert check(torch.tensor([prompt + reply + rest]), None)


def test_stop_strings_stop_without_transformers_vocabulary_tables(transformers_model, monkeypatch):
    # transformers' StopStringCriteria scans the whole vocabulary per call (0.92 s of 3.2 s on a GPU).
    def refuse(*args, **kwargs):
        raise AssertionError("StopStringCriteria was built")

    monkeypatch.setattr(stopping_criteria.StopStringCriteria, "__init__", refuse)
    backend = transformers_model.backend
    stream = backend.start(forced_request(transformers_model, stop_strings=("gamma",)))
    text = stream.result(timeout=300)
    assert stream.stats.finish_reason == "stop_string"
    assert text.startswith('"alpha beta gamma') and "delta" not in text

    whole = backend.start(forced_request(transformers_model, stop_strings=("omega",)))
    assert json.loads(whole.result(timeout=300)) == PHRASE
    assert whole.stats.finish_reason == "eos"


@pytest.fixture
def static_cache(transformers_model, monkeypatch):
    """The shared transformers model with the static KV cache forced on (the default only on CUDA).

    Yields the sizes of the static caches transformers builds meanwhile.
    """
    sizes: list[int | None] = []
    original = cache_utils.StaticCache.__init__

    def spy(self, *args, **kwargs):
        sizes.append(kwargs.get("max_cache_len", args[1] if len(args) > 1 else None))
        original(self, *args, **kwargs)

    monkeypatch.setattr(cache_utils.StaticCache, "__init__", spy)
    monkeypatch.setattr(transformers_model.backend, "kv_cache", "static")
    return sizes


def test_the_static_cache_streams_a_constrained_answer_and_stops_on_a_stop_string(
    transformers_model, static_cache
):
    backend = transformers_model.backend
    stream = backend.start(forced_request(transformers_model))
    chunks = list(stream)
    assert json.loads("".join(chunks)) == PHRASE and len(chunks) > 1
    assert stream.stats.finish_reason == "eos"
    assert static_cache and all(size >= 512 for size in static_cache)

    stopped = backend.start(forced_request(transformers_model, stop_strings=("gamma",)))
    assert stopped.result(timeout=300).startswith('"alpha beta gamma')
    assert stopped.stats.finish_reason == "stop_string"


def test_stop_ends_a_static_cache_generation(transformers_model, static_cache):
    prompt = transformers_model.dialect.render([Message(Role.USER, "Write a very long story.")])
    stream = transformers_model.backend.start(GenerationRequest(prompt, GREEDY.with_(max_new_tokens=200)))
    for _chunk in stream:
        stream.cancel()
    assert stream.wait(60)
    assert stream.stats.finish_reason == "cancelled" and stream.stats.new_tokens < 200
    assert static_cache


def test_the_default_cache_on_a_cpu_is_dynamic(transformers_model):
    assert transformers_model.backend.kv_cache == "dynamic"
    assert transformers_model.backend.compile is False


@pytest.mark.parametrize(
    ("device", "env", "cache", "compiled"),
    [
        ("cuda", {}, "static", True),
        ("cpu", {}, "dynamic", False),
        ("mps", {}, "dynamic", False),
        ("cpu", {"WORKBENCH_KV_CACHE": "static"}, "static", False),
        ("cuda", {"WORKBENCH_KV_CACHE": "dynamic", "WORKBENCH_COMPILE": "0"}, "dynamic", False),
        ("cuda", {"WORKBENCH_COMPILE": "0"}, "static", False),
    ],
)
def test_which_cache_and_whether_to_compile(device, env, cache, compiled):
    assert kv_cache_choice(device, env) == cache
    assert compile_choice(device, env) is compiled


def test_a_model_transformers_cannot_compile_keeps_the_dynamic_cache_unless_asked():
    assert kv_cache_choice("cuda", {}, static_ok=False) == "dynamic"
    assert kv_cache_choice("cuda", {"WORKBENCH_KV_CACHE": "static"}, static_ok=False) == "static"


def test_an_unknown_cache_choice_says_what_to_use():
    with pytest.raises(ModelLoadError, match="choose auto, static or dynamic"):
        kv_cache_choice("cuda", {"WORKBENCH_KV_CACHE": "paged"})


def test_static_cache_sizes_are_few_buckets_within_the_context():
    assert static_cache_size(10, 8192) == 512
    assert static_cache_size(513, 8192) == 1024
    assert static_cache_size(3000, 8192) == 4096
    assert static_cache_size(3000, 3500) == 3500
    assert static_cache_size(600, 600) == 600


def test_a_repeated_schema_reuses_its_compiled_grammar(transformers_model, monkeypatch):
    grammar = transformers_model.backend._grammar
    schema = {"type": "object", "properties": {"pick": {"enum": ["left", "right"]}}, "required": ["pick"]}
    grammar.logits_processor(schema)  # the compiler exists from here on
    compiles: list[str] = []
    original = grammar._compiler.compile_json_schema

    def spy(text, **kwargs):
        compiles.append(text)
        return original(text, **kwargs)

    monkeypatch.setattr(grammar, "_compiler", SimpleNamespace(compile_json_schema=spy))
    other = {**schema, "properties": {"pick": {"enum": ["up", "down"]}}}
    first = grammar.logits_processor(other)
    second = grammar.logits_processor(dict(other))
    assert len(compiles) == 1 and first is not second  # one compile; a fresh matcher per generation
    grammar.logits_processor(schema)
    assert len(compiles) == 1

    stream = transformers_model.backend.start(forced_request(transformers_model))
    assert json.loads(stream.result(timeout=300)) == PHRASE
    stream = transformers_model.backend.start(forced_request(transformers_model))
    assert json.loads(stream.result(timeout=300)) == PHRASE
    assert compiles.count(json.dumps(FORCED)) <= 1
