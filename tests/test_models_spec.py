"""Choosing a model (spec, environment), a device and a dtype; the sampling and stats types."""

from __future__ import annotations

import pytest
import torch

from workbench.errors import GenerationError, ModelLoadError
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
