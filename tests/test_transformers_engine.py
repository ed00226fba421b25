"""The transformers engine's decode path: its own stop-string check, the static KV cache, cached grammars.

Every answer here is forced by a JSON schema (an enum of one string) or only its plumbing is asserted:
the 135M model's free text changes with the CPU.
"""

from __future__ import annotations

import json

import torch
from transformers.generation import stopping_criteria

from workbench.messages import Message, Role
from workbench.models.generation import GenerationRequest, SamplingSettings
from workbench.models.transformers_backend import _StopStringCriterion

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
    check = _StopStringCriterion(tokenizer, ("<tool_response>",), len(prompt))

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
