"""Choosing a model (spec, environment), a device and a dtype; the sampling and stats types."""

from __future__ import annotations

import re

import pytest
import torch

from workbench.errors import GenerationError, ModelLoadError, SettingsError
from workbench.models.devices import resolve_device, resolve_dtype
from workbench.models.generation import GenerationStats, GenerationStream, SamplingSettings
from workbench.models.spec import EMBEDDED, SPEC_OPTIONS, ModelSpec

ENV = [name for option in SPEC_OPTIONS for name in option.env]


@pytest.fixture
def clean_env(monkeypatch):
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_spec_defaults_to_the_embedded_model(clean_env):
    assert ModelSpec.from_env() == ModelSpec(source=EMBEDDED, device="auto", dtype="auto", trust_remote_code=False)


def test_workbench_model_wins_over_model_path(clean_env):
    clean_env.setenv("MODEL_PATH", "/models/chatglm3-6b")
    assert ModelSpec.from_env().source == "/models/chatglm3-6b"
    clean_env.setenv("WORKBENCH_MODEL", "/models/other.gguf")
    assert ModelSpec.from_env().source == "/models/other.gguf"
    assert ModelSpec.from_env("/explicit").source == "/explicit"


def test_environment_fills_device_dtype_and_trust_unless_overridden(clean_env):
    clean_env.setenv("WORKBENCH_DEVICE", "cpu")
    clean_env.setenv("WORKBENCH_DTYPE", "bfloat16")
    clean_env.setenv("WORKBENCH_TRUST_REMOTE_CODE", "1")
    assert ModelSpec.from_env() == ModelSpec(source=EMBEDDED, device="cpu", dtype="bfloat16", trust_remote_code=True)
    overridden = ModelSpec.from_env(device="auto", dtype=None, trust_remote_code=False)
    assert overridden == ModelSpec(source=EMBEDDED, device="auto", dtype="bfloat16", trust_remote_code=False)


@pytest.mark.parametrize(
    ("value", "trusted"), [("1", True), ("true", True), ("yes", True), ("0", False), ("", False)]
)
def test_trust_remote_code_from_environment(clean_env, value, trusted):
    clean_env.setenv("WORKBENCH_TRUST_REMOTE_CODE", value)
    assert ModelSpec.from_env().trust_remote_code is trusted


def test_specs_are_hashable_cache_keys():
    assert len({ModelSpec(), ModelSpec(), ModelSpec(device="cpu")}) == 2


@pytest.mark.parametrize(
    ("source", "label"),
    [
        (EMBEDDED, "SmolLM2-135M-Instruct (embedded)"),
        ("/m/chatglm3-6b/", "chatglm3-6b"),
        ("a/b.gguf", "b.gguf"),
    ],
)
def test_label_is_short(source, label):
    assert ModelSpec(source=source).label == label


def test_auto_device_is_cpu_without_a_gpu():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert resolve_device("auto") in ("cpu", "mps")
    assert resolve_device("cpu") == "cpu"


@pytest.mark.parametrize(
    ("device", "message"),
    [
        ("tpu", "Unknown device 'tpu'; choose one of auto, cpu, cuda, mps."),
        ("CUDA", "Unknown device 'CUDA'; choose one of auto, cpu, cuda, mps."),
        ("cuda", "Device 'cuda' was asked for but no CUDA GPU is available; use 'auto' or 'cpu'."),
        ("mps", "Device 'mps' was asked for but Apple MPS is not available; use 'auto' or 'cpu'."),
    ],
)
def test_bad_device_names_the_choices(device, message):
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    if device == "mps" and torch.backends.mps.is_available():
        pytest.skip("this machine has MPS")
    with pytest.raises(ModelLoadError) as info:
        resolve_device(device)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("dtype", "device", "expected"),
    [
        ("auto", "cpu", torch.float32),
        ("auto", "mps", torch.float16),
        ("float32", "cuda", torch.float32),
        ("bfloat16", "cpu", torch.bfloat16),
        ("float16", "cpu", torch.float16),
    ],
)
def test_dtype_names(dtype, device, expected):
    assert resolve_dtype(dtype, device) is expected


@pytest.mark.parametrize("dtype", ["fp16", "int8", "Float32", ""])
def test_bad_dtype_names_the_choices(dtype):
    with pytest.raises(ModelLoadError) as info:
        resolve_dtype(dtype, "cpu")
    assert str(info.value) == f"Unknown dtype {dtype!r}; choose one of auto, float32, bfloat16, float16."


def test_settings_with_ignores_none():
    settings = SamplingSettings().with_(temperature=0.0, top_p=None, max_new_tokens=8)
    assert (settings.temperature, settings.top_p, settings.max_new_tokens) == (0.0, 0.9, 8)


def test_stats_summary_and_round_trip():
    stats = GenerationStats(
        prompt_tokens=3, new_tokens=20, seconds=2.0, first_token_s=0.25, finish_reason="cancelled"
    )
    assert stats.summary() == "20 tokens · 10.0 tok/s · first token 0.25 s · stopped"
    assert (
        GenerationStats(new_tokens=5, seconds=1.0, finish_reason="length")
        .summary()
        .endswith("hit max new tokens")
    )
    assert GenerationStats.from_dict({**stats.to_dict(), "unknown": 1}) == stats
    assert GenerationStats().tokens_per_s == 0.0


def test_stream_iterates_chunks_then_raises_the_producer_error():
    stream = GenerationStream(poll_s=0.01)
    stream.put("Hello")
    stream.put("")
    stream.put(" world")
    stream.finish(GenerationStats(new_tokens=2), RuntimeError("out of memory"))
    chunks = []
    with pytest.raises(GenerationError) as info:
        for chunk in stream:
            chunks.append(chunk)
    assert chunks == ["Hello", " world"]
    assert stream.text == "Hello world"
    assert str(info.value) == "Generation failed: out of memory. Try again, or lower max new tokens."


def test_stream_result_times_out_with_a_message():
    with pytest.raises(GenerationError, match=r"Generation did not finish within 0.05 s"):
        GenerationStream().result(timeout=0.05)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"temperature": -1}, "temperature must be between 0 (greedy) and 2, not -1."),
        ({"temperature": float("nan")}, "temperature must be a finite number between 0 (greedy) and 2, not nan."),
        ({"temperature": float("inf")}, "temperature must be a finite number"),
        ({"temperature": 2.5}, "temperature must be between 0 (greedy) and 2, not 2.5."),
        ({"temperature": "hot"}, "temperature must be a finite number between 0 (greedy) and 2, not 'hot'."),
        ({"top_p": 5}, "top_p must be above 0 and at most 1, not 5."),
        ({"top_p": 0}, "top_p must be above 0 and at most 1, not 0."),
        ({"max_new_tokens": 0}, "max_new_tokens must be at least 1, not 0."),
        ({"max_new_tokens": 2.5}, "max_new_tokens must be a whole number, not 2.5."),
        ({"max_new_tokens": True}, "max_new_tokens must be a whole number, not True."),
        ({"repetition_penalty": 0}, "repetition_penalty must be above 0 (1.0 means none), not 0."),
        ({"repetition_penalty": -1.5}, "repetition_penalty must be above 0"),
        ({"seed": 1.5}, "seed must be a whole number (or unset), not 1.5."),
    ],
)
def test_bad_sampling_settings_are_refused_with_the_range(changes, message):
    with pytest.raises(SettingsError) as info:
        SamplingSettings().with_(**changes)
    assert str(info.value).startswith(message)
    with pytest.raises(SettingsError):
        SamplingSettings(**changes)


@pytest.mark.parametrize(
    "changes",
    [{"temperature": 0}, {"temperature": 2}, {"top_p": 1}, {"max_new_tokens": 1}, {"seed": 0}, {"seed": None}],
)
def test_sampling_settings_at_the_edges_are_accepted(changes):
    SamplingSettings(**changes)


def test_spec_options_cover_every_field_once():
    from dataclasses import fields

    assert sorted(option.field for option in SPEC_OPTIONS) == sorted(f.name for f in fields(ModelSpec))
    flags = [option.flag for option in SPEC_OPTIONS]
    assert len(flags) == len(set(flags))


def test_spec_from_env_reads_the_backend_and_refuses_unknown_fields(clean_env):
    clean_env.setenv("WORKBENCH_BACKEND", "transformers")
    assert ModelSpec.from_env().backend == "transformers"
    assert ModelSpec.from_env(backend="auto").backend == "auto"
    with pytest.raises(TypeError, match="no field 'colour'"):
        ModelSpec.from_env(colour="red")


def test_unknown_backend_is_refused_with_the_choices():
    from workbench.models.backends import load_backend
    from workbench.models.spec import BACKENDS

    choices = re.escape(", ".join(BACKENDS))
    with pytest.raises(ModelLoadError, match=rf"Unknown backend 'vllm'; choose one of {choices}\."):
        load_backend(ModelSpec(backend="vllm"))
