"""The GPU check of issue 19: one command, one JSON report, within 8 minutes on a GPU machine.

Usage::

    python bench/device_check.py [--out report.json]      # on a machine with a CUDA GPU
    python bench/device_check.py --cpu-smoke              # a tiny model on the CPU: proves the script runs

It builds its own model, nothing is downloaded: random weights in SmolLM2-1.7B's shape (bfloat16) with
SmolLM2's real tokenizer and chat template, taken from the embedded model (converted once through the
GGUF cache). Then, each section timed and its failure recorded rather than fatal:

- ``decode``: plain ``model.generate`` against Workbench's ``stream()`` (the real path: dialect, stop
  strings, worker thread), with the dynamic and the static KV cache, and Workbench's decode called
  directly (no thread) to tell the thread's cost from the rest; the target is stream >= 0.9x raw static;
- ``stop``: tokens generated after Stop;
- ``constrained``: the first token of a schema-constrained call, cold (first of the process) and warm
  (the same schema again; target <= 0.5 s), and a new schema with the compiler built;
- ``quantization``: weight memory and speed of int4/int8 through torchao and bitsandbytes (those
  installed) against the unquantized bfloat16 model (on a CPU: the refusal a user reads) (target for int4: <= 0.35x the memory at >= 0.8x the speed);
- ``llama_cpp``: the embedded GGUF model on llama.cpp with every layer on the GPU, against the same
  model on transformers, when the installed llama-cpp-python was built with CUDA.

The report says ``"gpu_run": false`` when no GPU took part: such figures say nothing about a GPU.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from workbench.api import load_model
from workbench.chat_model import ChatModel
from workbench.messages import Message, Role
from workbench.models.generation import FinishReason, GenerationRequest, GenerationStats, SamplingSettings

# SmolLM2-1.7B-Instruct's config.json (the shape measured in the issue).
SMOLLM2_1_7B = {
    "hidden_size": 2048,
    "intermediate_size": 8192,
    "num_hidden_layers": 24,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "max_position_embeddings": 8192,
    "rope_theta": 130000.0,
    "rms_norm_eps": 1e-5,
    "tie_word_embeddings": True,
}
TINY = {**SMOLLM2_1_7B, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 4, "max_position_embeddings": 2048}  # fmt: skip
SCHEMA = {
    "type": "object",
    "properties": {"answer": {"enum": ["three", "four", "five"]}},
    "required": ["answer"],
    "additionalProperties": False,
}
QUESTION = "Tell me about the sea."


def log(message: str) -> None:
    print(f"[device_check {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Report:
    """The JSON report, built section by section; a section that fails records its error and the rest go on."""

    def __init__(self, budget_s: float) -> None:
        self.data: dict[str, Any] = {}
        self.started = time.perf_counter()
        self.budget_s = budget_s

    def run(self, name: str, body: Callable[[dict[str, Any]], None]) -> bool:
        """Run one section into ``data[name]``, unless the time budget is spent; return whether it passed."""
        entry: dict[str, Any] = {}
        self.data[name] = entry
        elapsed = time.perf_counter() - self.started
        if elapsed > self.budget_s:
            entry["skipped"] = f"out of time ({elapsed:.0f} s of a {self.budget_s:.0f} s budget)"
            log(f"{name}: skipped, out of time")
            return False
        log(f"{name}...")
        began = time.perf_counter()
        try:
            body(entry)
            ok = True
        except Exception as exc:
            entry["error"] = f"{type(exc).__name__}: {exc}"
            entry["traceback"] = traceback.format_exc(limit=6)
            log(f"{name}: FAILED {exc}")
            ok = False
        entry["section_s"] = round(time.perf_counter() - began, 1)
        return ok


def best_of(runs: int, measure: Callable[[], float]) -> dict[str, Any]:
    """Run ``measure`` (tokens/s) ``runs`` times; the best, and all of them."""
    figures = [round(measure(), 2) for _ in range(runs)]
    return {"best_tok_s": max(figures), "runs_tok_s": figures}


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def free_memory(device: str) -> None:
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


# --- the model ----------------------------------------------------------------------------------
def build_model(folder: Path, shape: dict[str, Any], device: str, dtype: torch.dtype) -> dict[str, Any]:
    """Save a random-weight Llama of ``shape`` with SmolLM2's tokenizer to ``folder``; return what it is."""
    from transformers import AutoTokenizer, GenerationConfig, LlamaConfig, LlamaForCausalLM

    from workbench.models.loading import load_tokenizer_and_model
    from workbench.models.spec import ModelSpec

    # The embedded model's conversion cache holds SmolLM2's tokenizer and chat template (converted once).
    embedded = ModelSpec(source="embedded", backend="transformers", device="cpu")
    _tokenizer, small, tokenizer_folder = load_tokenizer_and_model(embedded, "cpu", torch.float32)
    del small
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_folder)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **shape,
    )
    torch.manual_seed(0)
    with torch.device(device):
        model: Any = LlamaForCausalLM(config)
    model = model.to(dtype)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, do_sample=False
    )
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    parameters = sum(p.numel() for p in model.parameters())
    del model
    free_memory(device)
    return {"parameters": parameters, "shape": shape, "dtype": str(dtype).removeprefix("torch.")}


def prompt_of(model: ChatModel, text: str) -> str:
    return model.dialect.render([Message(Role.USER, text)])


# --- sections -----------------------------------------------------------------------------------
def raw_generate(model: ChatModel, tokens: int, cache: str, device: str) -> float:
    """Plain ``model.generate``, greedy, no streamer: tokens/s of one call."""
    from workbench.models.transformers_backend import static_cache_size

    backend: Any = model.backend
    inputs = backend.tokenizer(prompt_of(model, QUESTION), return_tensors="pt", add_special_tokens=False)
    inputs = {k: v.to(backend.model.device) for k, v in inputs.items()}
    kwargs: dict[str, Any] = {"max_new_tokens": tokens, "min_new_tokens": tokens, "do_sample": False}
    if cache == "static":
        # The cache size Workbench picks, so that both share one compiled graph and compare fairly.
        needed = int(inputs["input_ids"].shape[1]) + tokens
        kwargs.update(
            cache_implementation="static", max_cache_len=static_cache_size(needed, backend.context_length)
        )
        kwargs["disable_compile"] = device != "cuda"
    sync(device)
    started = time.perf_counter()
    with torch.inference_mode():
        out = backend.model.generate(**inputs, **kwargs, pad_token_id=backend.tokenizer.eos_token_id)
    sync(device)
    return (out.shape[1] - inputs["input_ids"].shape[1]) / (time.perf_counter() - started)


def workbench_stream(model: ChatModel, tokens: int) -> GenerationStats:
    """Workbench's real path: the dialect's stop strings, the worker thread, the stream read as it comes."""
    stream = model.stream(
        [Message(Role.USER, QUESTION)], SamplingSettings(temperature=0, max_new_tokens=tokens)
    )
    for _chunk in stream:
        pass
    return stream.stats


def workbench_direct(model: ChatModel, tokens: int) -> GenerationStats:
    """Workbench's decode called in this thread (no worker, no lock): what the thread costs, by difference."""
    from workbench.models.generation import GenerationStream

    backend: Any = model.backend
    request = GenerationRequest(
        prompt_of(model, QUESTION),
        SamplingSettings(temperature=0, max_new_tokens=tokens),
        stop_strings=model.dialect.stop_strings,
    )
    prepared = backend.prepare(request)
    stream = GenerationStream()
    stats = GenerationStats(prompt_tokens=prepared.prompt_tokens)
    backend._decode_locked(request, prepared, stream, stats)
    return stats


def decode_section(entry: dict[str, Any], model: ChatModel, tokens: int, runs: int, device: str) -> None:
    backend: Any = model.backend
    entry["tokens"] = tokens
    entry["default_kv_cache"] = backend.kv_cache
    entry["compile"] = backend.compile
    for cache in ("dynamic", "static"):
        backend.kv_cache = cache
        figures: dict[str, Any] = {}
        entry[cache] = figures
        began = time.perf_counter()
        # Warm-ups: the compile (static on CUDA), and CUDA graphs, recorded once per thread (worker, this one).
        raw_generate(model, min(tokens, 16), cache, device)
        workbench_stream(model, min(tokens, 16))
        workbench_direct(model, min(tokens, 16))
        figures["warmup_s"] = round(time.perf_counter() - began, 1)
        figures["raw_generate"] = best_of(runs, functools.partial(raw_generate, model, tokens, cache, device))
        stream_stats = [workbench_stream(model, tokens) for _ in range(runs)]
        figures["workbench_stream"] = {
            "best_tok_s": round(max(s.tokens_per_s for s in stream_stats), 2),
            "runs_tok_s": [round(s.tokens_per_s, 2) for s in stream_stats],
            "new_tokens": [s.new_tokens for s in stream_stats],
            "first_token_s": [s.first_token_s for s in stream_stats],
        }
        direct = [workbench_direct(model, tokens) for _ in range(runs)]
        figures["workbench_direct_decode"] = {
            "best_tok_s": round(max(s.tokens_per_s for s in direct), 2),
            "runs_tok_s": [round(s.tokens_per_s, 2) for s in direct],
        }
        raw = figures["raw_generate"]["best_tok_s"]
        figures["stream_over_raw"] = (
            round(figures["workbench_stream"]["best_tok_s"] / raw, 3) if raw else None
        )
    backend.kv_cache = entry["default_kv_cache"]
    raw_static = entry["static"]["raw_generate"]["best_tok_s"]
    best_stream = max(entry[c]["workbench_stream"]["best_tok_s"] for c in ("dynamic", "static"))
    entry["target_stream_over_raw_static"] = {
        "value": round(best_stream / raw_static, 3) if raw_static else None,
        "target": ">= 0.9",
    }


def stop_section(entry: dict[str, Any], model: ChatModel) -> None:
    stream = model.stream([Message(Role.USER, "Write a very long story.")],
                          SamplingSettings(temperature=0, max_new_tokens=400))  # fmt: skip
    cancelled_at = 0.0
    chunks_at_cancel = 0
    for i, _chunk in enumerate(stream):
        if i == 5:
            stream.cancel()
            cancelled_at = time.perf_counter()
            chunks_at_cancel = i + 1
    stream.wait(60)
    entry["finish_reason"] = FinishReason(stream.stats.finish_reason).value
    entry["new_tokens"] = stream.stats.new_tokens
    entry["chunks_before_cancel"] = chunks_at_cancel
    entry["ended_after_cancel_s"] = round(time.perf_counter() - cancelled_at, 3) if cancelled_at else None


def constrained_call(model: ChatModel, schema: dict[str, Any]) -> dict[str, Any]:
    request = GenerationRequest(
        prompt_of(model, "What is 2+2? Reply in JSON."),
        SamplingSettings(temperature=0, max_new_tokens=32),
        json_schema=schema,
    )
    began = time.perf_counter()
    stream = model.backend.start(request)
    text = stream.result(300)
    return {
        "first_token_s": stream.stats.first_token_s,
        "call_s": round(time.perf_counter() - began, 3),
        "text": text,
        "valid": _valid(text, schema),
    }


def _valid(text: str, schema: dict[str, Any]) -> bool:
    import jsonschema

    try:
        jsonschema.validate(json.loads(text), schema)
    except (ValueError, jsonschema.ValidationError):
        return False
    return True


def constrained_section(entry: dict[str, Any], model: ChatModel) -> None:
    entry["cold"] = constrained_call(model, SCHEMA)
    entry["warm_same_schema"] = constrained_call(model, SCHEMA)
    other = {**SCHEMA, "properties": {"answer": {"enum": ["six", "seven", "eight"]}}}
    entry["warm_compiler_new_schema"] = constrained_call(model, other)
    warm = entry["warm_same_schema"]["first_token_s"]
    entry["target_warm_first_token_s"] = {"value": warm, "target": "<= 0.5"}


def weight_bytes(model: Any) -> int:
    return int(model.get_memory_footprint())


def quantization_section(
    entry: dict[str, Any], folder: Path, device: str, dtype: str, tokens: int, bf16: dict[str, Any]
) -> None:
    import importlib.util

    entry["unquantized"] = bf16
    libraries = [name for name in ("torchao", "bitsandbytes") if importlib.util.find_spec(name)]
    entry["installed"] = libraries
    if device != "cuda":
        try:
            load_model(str(folder), backend="transformers", device=device, quantize="int4")
        except Exception as exc:  # the refusal a CPU user reads
            entry["cpu_refusal"] = str(exc)
        return
    for library in libraries:
        for bits in ("int4", "int8"):  # int4 first: the target
            key = f"{library}_{bits}"
            os.environ["WORKBENCH_QUANTIZE_WITH"] = library
            try:
                free_memory(device)
                began = time.perf_counter()
                model = load_model(
                    str(folder), backend="transformers", device=device, dtype=dtype, quantize=bits
                )
                load_s = time.perf_counter() - began
                backend: Any = model.backend
                workbench_stream(model, 16)  # warm-up (compiles where the library allows it)
                stats = max((workbench_stream(model, tokens) for _ in range(2)), key=lambda s: s.tokens_per_s)
                figures = {
                    "load_s": round(load_s, 1),
                    "weight_gib": round(weight_bytes(backend.model) / 2**30, 3),
                    "tok_s": round(stats.tokens_per_s, 2),
                    "new_tokens": stats.new_tokens,
                    "kv_cache": backend.kv_cache,
                    "quantization": model.info.quantization,
                }
                figures["memory_over_bf16"] = round(figures["weight_gib"] / bf16["weight_gib"], 3)
                figures["speed_over_bf16"] = (
                    round(figures["tok_s"] / bf16["tok_s"], 3) if bf16["tok_s"] else None
                )
                entry[key] = figures
                del model
            except Exception as exc:
                entry[key] = {"error": f"{type(exc).__name__}: {exc}"}
            finally:
                os.environ.pop("WORKBENCH_QUANTIZE_WITH", None)
                free_memory(device)
    int4 = [v for k, v in entry.items() if k.endswith("_int4") and isinstance(v, dict) and "tok_s" in v]
    if int4:
        fastest = max(int4, key=lambda v: v["tok_s"])
        entry["faster_int4"] = fastest["quantization"]
    entry["target_int4"] = "memory_over_bf16 <= 0.35 and speed_over_bf16 >= 0.8"


def llama_cpp_section(entry: dict[str, Any], device: str, tokens: int) -> None:
    from workbench.models.backends import llama_cpp_gpu_offload, llama_cpp_installed

    entry["installed"] = llama_cpp_installed()
    if not entry["installed"]:
        return
    entry["gpu_offload"] = llama_cpp_gpu_offload()
    if device == "cuda" and not entry["gpu_offload"]:
        entry["note"] = (
            "this llama-cpp-python has no CUDA: scripts/setup.sh builds it with CUDA where nvcc is"
        )
        return
    settings = SamplingSettings(temperature=0, max_new_tokens=tokens)
    for backend in ("llama.cpp", "transformers"):
        model = load_model("embedded", backend=backend, device=device)
        model.chat("Hello", settings=settings.with_(max_new_tokens=8))  # warm-up
        stats = max((workbench_stream(model, tokens) for _ in range(2)), key=lambda s: s.tokens_per_s)
        entry[backend] = {
            "device": model.info.device,
            "dtype": model.info.dtype,
            "tok_s": round(stats.tokens_per_s, 2),
            "new_tokens": stats.new_tokens,
        }
        del model
        free_memory(device)


def environment(device: str) -> dict[str, Any]:
    import importlib.metadata

    def version(name: str) -> str | None:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return None

    return {
        "device": device,
        "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None,
        "gpu_run": device == "cuda",
        "python": platform.python_version(),
        **{
            name: version(name)
            for name in ("torch", "transformers", "xgrammar", "torchao", "bitsandbytes", "llama_cpp_python")
        },
        "cpu_count": os.cpu_count(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-smoke", action="store_true", help="a tiny random model on the CPU, few tokens")
    parser.add_argument("--out", type=Path, help="also write the report to this file")
    parser.add_argument("--tokens", type=int, help="new tokens per decode (default 256; 8 with --cpu-smoke)")
    parser.add_argument(
        "--budget", type=float, default=420.0, help="seconds after which sections are skipped"
    )
    args = parser.parse_args(argv)

    if args.cpu_smoke:
        device, dtype_name, shape, tokens, runs = "cpu", "float32", TINY, args.tokens or 8, 1
    else:
        if not torch.cuda.is_available():
            print("No CUDA GPU here: run with --cpu-smoke to check the script on a CPU.", file=sys.stderr)
            return 2
        device, dtype_name, shape, tokens, runs = "cuda", "bfloat16", SMOLLM2_1_7B, args.tokens or 256, 3
    dtype = getattr(torch, dtype_name)
    report = Report(args.budget)
    report.data["environment"] = environment(device)
    bf16: dict[str, Any] = {"weight_gib": 0.0, "tok_s": 0.0}
    loaded: list[ChatModel] = []

    def load(entry: dict[str, Any]) -> None:
        began = time.perf_counter()
        model = load_model(str(folder), backend="transformers", device=device, dtype=dtype_name)
        backend: Any = model.backend
        if args.cpu_smoke:
            backend.kv_cache = "static"  # the static cache runs on a CPU too: exercise it
        entry.update(seconds=round(time.perf_counter() - began, 1), info=model.info.to_dict())
        entry["weight_gib"] = bf16["weight_gib"] = round(weight_bytes(backend.model) / 2**30, 3)
        loaded.append(model)

    def decode(entry: dict[str, Any]) -> None:
        decode_section(entry, loaded[0], tokens, runs, device)
        bf16["tok_s"] = max(entry[c]["workbench_stream"]["best_tok_s"] for c in ("dynamic", "static"))

    with tempfile.TemporaryDirectory(prefix="workbench-device-check-") as tmp:
        folder = Path(tmp) / "random-smollm2-1.7b-shape"
        if report.run("model", lambda entry: entry.update(build_model(folder, shape, device, dtype))):
            if report.run("load", load):
                report.run("decode", decode)
                report.run("stop", lambda entry: stop_section(entry, loaded[0]))
                report.run("constrained", lambda entry: constrained_section(entry, loaded[0]))
                loaded.clear()
                free_memory(device)
            report.run(
                "quantization",
                lambda entry: quantization_section(entry, folder, device, dtype_name, min(tokens, 128), bf16),
            )
    report.run("llama_cpp", lambda entry: llama_cpp_section(entry, device, min(tokens, 128)))
    report.data["total_s"] = round(time.perf_counter() - report.started, 1)
    text = json.dumps(report.data, indent=2, default=str)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
