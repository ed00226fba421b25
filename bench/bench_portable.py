"""Decode speed of the portable llama.cpp build against a ``-march=native`` build of the same version.

    python bench/bench_portable.py NATIVE_WHEEL [--runs 5] [--tokens 128]

``scripts/setup.sh`` builds llama-cpp-python portably (GGML_NATIVE=OFF, a CPU backend per x86-64 level,
the best one loaded at run time). ``NATIVE_WHEEL`` is the same version built with the CMake defaults
(``-march=native``, the CPU backend built in)::

    CMAKE_ARGS="-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF \\
      -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_CURL=OFF -DGGML_BLAS=OFF -DGGML_OPENMP=OFF -DLLAVA_BUILD=OFF" \\
      .venv/bin/python -m pip wheel --no-cache-dir --no-deps -w /tmp/native llama-cpp-python==VERSION

Each run is a fresh process (a process holds one llama.cpp library), greedy decoding of the embedded
model with end of sequence banned, so every run decodes the same number of tokens; the variants take
turns, so that they see the same load. Printed: tokens/s per variant (median of the runs) and each
variant's ratio to the native build. The target (issue 14) is portable >= 0.95x native.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROMPT = (
    "<|im_start|>user\nWrite a long, detailed essay about the history of the Roman Empire, from its "
    "founding to its fall.<|im_end|>\n<|im_start|>assistant\n"
)

CHILD = r"""
import json, sys, time
sys.path.insert(0, {root!r})
import llama_cpp
from workbench.models.llamacpp_cpu import load_cpu_backend
from workbench.models.loading import embedded_gguf_path
kernels = load_cpu_backend()
llm = llama_cpp.Llama(model_path=str(embedded_gguf_path()), n_ctx=2048, n_threads={threads},
                      n_threads_batch={threads}, verbose=False)
times = []
for chunk in llm.create_completion({prompt!r}, max_tokens={tokens}, temperature=0.0, stream=True,
                                   logit_bias={{llm.token_eos(): float("-inf")}}):
    if chunk["choices"][0]["text"]:
        times.append(time.perf_counter())
print(json.dumps({{"kernels": kernels, "lib": llama_cpp.__file__,
                  "tok_s": (len(times) - 1) / (times[-1] - times[0])}}))
"""


def run_child(env: dict[str, str], threads: int, tokens: int) -> dict[str, object]:
    code = CHILD.format(root=str(ROOT), threads=threads, tokens=tokens, prompt=PROMPT)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, timeout=600
    )
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("native_wheel", type=Path, help="llama-cpp-python built with -march=native")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    base = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "WORKBENCH_GGML_CPU")}
    with tempfile.TemporaryDirectory(prefix="native-llama-") as native_dir:
        with zipfile.ZipFile(args.native_wheel) as wheel:
            wheel.extractall(native_dir)
        for so in Path(native_dir, "llama_cpp", "lib").glob("*.so*"):
            so.chmod(0o755)
        variants = {
            "native (-march=native, built in)": {**base, "PYTHONPATH": native_dir},
            "portable, best variant for this CPU": dict(base),
            "portable, haswell (AVX2) variant": {**base, "WORKBENCH_GGML_CPU": "haswell"},
        }
        results: dict[str, list[float]] = {name: [] for name in variants}
        kernels: dict[str, str] = {}
        for _ in range(args.runs):
            for name, env in variants.items():
                out = run_child(env, args.threads, args.tokens)
                results[name].append(float(out["tok_s"]))  # type: ignore[arg-type]
                kernels[name] = str(out["kernels"])
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"decode tokens/s, {args.tokens} tokens, {args.threads} thread(s), {args.runs} runs; load {load}")
    native = statistics.median(next(iter(results.values())))
    for name, values in results.items():
        median = statistics.median(values)
        print(
            f"  {name:<38} [{kernels[name]:>9}] median {median:6.1f} tok/s  {median / native:5.2f}x native  "
            f"(runs: {', '.join(f'{v:.1f}' for v in values)})"
        )


if __name__ == "__main__":
    main()
