"""Benchmark the embedded model on each engine, and Workbench's llama.cpp path against raw llama-cpp-python.

    python bench/bench_model.py [--new-tokens 200] [--runs 3] [--turns 10]

Every engine runs in a fresh process of its own (so its imports, load and peak memory are its own), on
the embedded SmolLM2-135M-Instruct Q4_1 GGUF file, greedy, on the CPU. For each it prints:

- a new process to its first answer (imports, load, a one-line reply): what "the app is ready" costs;
- imports, and the load: first (transformers converts the GGUF file into an empty temporary cache) and
  later (transformers from that cache; llama.cpp with the file in the page cache);
- time to first token at turn 1 and at turn ``--turns`` of a fixed conversation (24-token replies);
- decode speed through the full path (``ChatModel.stream``), median of ``--runs``;
- peak RSS of the process.

"raw llama-cpp-python" is the same file and prompt through ``llama_cpp.Llama.create_completion``, with
the same context and threads: the target is Workbench's decode at 0.95x of it or better.
The user's own cache is not touched. The load average is printed: other work on the machine shows.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ESSAY = "Write a long, detailed essay about the history of the Roman Empire, from its founding to its fall."
QUESTIONS = [
    "Which city is the capital of France?",
    "Name three rivers in Europe.",
    "What is photosynthesis?",
    "Give me a tip for learning to cook.",
    "Why is the sky blue?",
    "What is a prime number?",
    "Name a famous painter.",
    "How do bees make honey?",
    "What is the largest ocean?",
    "Tell me a fact about the Moon.",
]
ENGINES = ("llama.cpp", "llama.cpp serial", "raw llama-cpp-python", "transformers")
#: The engines' specs: llama.cpp as it runs by default (continuous batching, 4 slots), and with
#: ``--parallel 1`` (one generation at a time, the engine before issue 18).
SPECS: dict[str, dict[str, Any]] = {
    "llama.cpp": {"backend": "llama.cpp"},
    "llama.cpp serial": {"backend": "llama.cpp", "parallel": 1},
    "transformers": {"backend": "transformers"},
}


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- workers: one engine per process -----------------------------------------------------------------
def workbench_worker(engine: str, new_tokens: int, runs: int, turns: int) -> dict[str, Any]:
    """Imports, loads, a conversation and decode runs through ChatModel on one engine."""
    started = time.perf_counter()
    from workbench.chat_model import ChatModel
    from workbench.messages import Message, Role
    from workbench.models.generation import SamplingSettings
    from workbench.models.spec import ModelSpec

    if engine == "transformers":
        import torch  # noqa: F401 - counted in the import time, as the engine needs it
        import transformers

        transformers.utils.logging.disable_progress_bar()
    out: dict[str, Any] = {"import_s": time.perf_counter() - started}
    spec = ModelSpec(device="cpu", **SPECS[engine])
    # The parent hands an empty conversion cache (WORKBENCH_CACHE_DIR): transformers' first load fills it.
    t0 = time.perf_counter()
    ChatModel.load(spec)
    out["load_first_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    model = ChatModel.load(spec)
    out["load_later_s"] = time.perf_counter() - t0
    out["info"] = model.info.to_dict()

    reply = SamplingSettings(temperature=0.0, max_new_tokens=24)
    history: list[Message] = []
    ttft: list[float] = []
    for question in QUESTIONS[:turns]:
        history.append(Message(Role.USER, question))
        stream = model.stream(history, reply)
        text = stream.result()
        ttft.append(stream.stats.first_token_s or 0.0)
        history.append(model.dialect.parse(text))
    out["ttft_turn1_s"], out["ttft_last_s"] = ttft[0], ttft[-1]
    out["prompt_tokens_last"] = stream.stats.prompt_tokens

    essay = [Message(Role.USER, ESSAY)]
    out["prompt"] = model.dialect.render(essay)
    settings = SamplingSettings(temperature=0.0, max_new_tokens=new_tokens)
    model.stream(essay, settings.with_(max_new_tokens=8)).result()  # warm-up
    states = getattr(model.backend, "states", None)
    speeds, firsts, counts = [], [], []
    for _ in range(runs):
        if states is not None:
            states.forget()  # the whole prompt evaluated each run, as raw llama-cpp-python does after reset()
        stream = model.stream(essay, settings)
        stream.result()
        stats = stream.stats
        speeds.append((stats.new_tokens - 1) / (stats.seconds - (stats.first_token_s or 0.0)))
        firsts.append(stats.first_token_s or 0.0)
        counts.append(stats.new_tokens)
    out.update(decode=speeds, first=firsts, tokens=counts, peak_rss_mb=peak_rss_mb())
    out["torch_imported"] = "torch" in sys.modules
    return out


def raw_worker(new_tokens: int, runs: int, prompt: str, threads: int) -> dict[str, Any]:
    """The same prompt through llama-cpp-python alone: what the engine itself can do."""
    started = time.perf_counter()
    import llama_cpp

    from workbench.models.llamacpp_cpu import load_cpu_backend
    from workbench.models.loading import embedded_gguf_path

    load_cpu_backend()  # the portable build registers its CPU kernels when asked
    out: dict[str, Any] = {"import_s": time.perf_counter() - started}
    kwargs = {"n_ctx": 8192, "n_threads": threads, "n_threads_batch": threads, "verbose": False}
    t0 = time.perf_counter()
    llm = llama_cpp.Llama(model_path=str(embedded_gguf_path()), **kwargs)
    out["load_first_s"] = time.perf_counter() - t0
    del llm
    t0 = time.perf_counter()
    llm = llama_cpp.Llama(model_path=str(embedded_gguf_path()), **kwargs)
    out["load_later_s"] = time.perf_counter() - t0

    def once(max_tokens: int) -> tuple[float, float, int]:
        llm.reset()
        begun = time.perf_counter()
        times: list[float] = []
        for chunk in llm.create_completion(prompt, max_tokens=max_tokens, temperature=0.0, stream=True):
            if chunk["choices"][0]["text"]:
                times.append(time.perf_counter())
        return times[0] - begun, (len(times) - 1) / (times[-1] - times[0]), len(times)

    once(8)
    results = [once(new_tokens) for _ in range(runs)]
    out.update(
        first=[r[0] for r in results],
        decode=[r[1] for r in results],
        tokens=[r[2] for r in results],
        peak_rss_mb=peak_rss_mb(),
    )
    return out


def ready_seconds(engine: str, env: dict[str, str]) -> float:
    """A new process, from its start to the first answer of the embedded model on ``engine``.

    transformers loads from the conversion cache its worker filled (a later start, not the first).
    """
    code = (
        "from workbench.chat_model import ChatModel\n"
        "from workbench.models.generation import SamplingSettings\n"
        "from workbench.models.spec import ModelSpec\n"
        f"m = ChatModel.load(ModelSpec(device='cpu', **{SPECS[engine]!r}))\n"
        "m.chat('Hi', settings=SamplingSettings(temperature=0.0, max_new_tokens=8))\n"
    )
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, env=env)
    return time.perf_counter() - started


def run_worker(args: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, *args], cwd=ROOT, check=True, capture_output=True, text=True, env=env
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


# --- report ------------------------------------------------------------------------------------------
def row(name: str, values: dict[str, str]) -> None:
    print(f"  {name:<46}" + "".join(f"{values.get(e, '-'):>22}" for e in ENGINES))


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new-tokens", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--turns", type=int, default=10, choices=range(2, len(QUESTIONS) + 1))
    parser.add_argument("--engines", nargs="+", default=list(SPECS), choices=list(SPECS))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--prompt", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "raw":
        print(json.dumps(raw_worker(args.new_tokens, args.runs, args.prompt, args.threads)))
        return 0
    if args.worker:
        print(json.dumps(workbench_worker(args.worker, args.new_tokens, args.runs, args.turns)))
        return 0

    import llama_cpp

    print(f"Workbench model benchmark, {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}")
    print(f"Machine: {cpu_name()}, {os.cpu_count()} cores; Python {platform.python_version()}")
    print(f"Model: the embedded SmolLM2-135M-Instruct Q4_1 GGUF; llama-cpp-python {llama_cpp.__version__}")
    print(
        f"Greedy; decode: up to {args.new_tokens} new tokens, {args.runs} runs (median); each engine in its own process"
    )
    print(f"Load average at start (other work on this machine): {load_average()}")
    common = ["--new-tokens", str(args.new_tokens), "--runs", str(args.runs), "--turns", str(args.turns)]
    results: dict[str, dict[str, Any]] = {}
    ready: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="workbench-bench-") as cache:
        env = {**os.environ, "WORKBENCH_CACHE_DIR": cache}  # the user's own cache is not touched
        for engine in args.engines:
            results[engine] = run_worker(["--worker", engine, *common], env)
            ready[engine] = f"{ready_seconds(engine, env):.2f} s"
    llama = results["llama.cpp"]
    raw = run_worker(
        ["--worker", "raw", *common, "--prompt", llama["prompt"], "--threads", str(llama["info"]["threads"])]
    )
    results["raw llama-cpp-python"] = raw
    print()
    row("", {e: e for e in ENGINES})
    row("new process to first answer", ready)
    row("imports", {e: f"{r['import_s']:.2f} s" for e, r in results.items()})
    row("load, first (transformers: converts)", {e: f"{r['load_first_s']:.2f} s" for e, r in results.items()})
    row(
        "load, later (transformers: from its cache)",
        {e: f"{r['load_later_s']:.2f} s" for e, r in results.items()},
    )
    turns = {e: r for e, r in results.items() if "ttft_turn1_s" in r}
    row("time to first token, turn 1", {e: f"{r['ttft_turn1_s'] * 1000:.0f} ms" for e, r in turns.items()})
    row(
        f"time to first token, turn {args.turns}",
        {e: f"{r['ttft_last_s'] * 1000:.0f} ms ({r['prompt_tokens_last']} tok)" for e, r in turns.items()},
    )
    row(
        "time to first token, essay prompt (cold)",
        {e: f"{median(r['first']) * 1000:.0f} ms" for e, r in results.items()},
    )
    row(
        "decode, tokens/s (median)",
        {e: f"{median(r['decode']):.1f} ({median(r['tokens']):.0f} tok)" for e, r in results.items()},
    )
    row("peak RSS", {e: f"{r['peak_rss_mb']:.0f} MB" for e, r in results.items()})
    row("torch imported", {e: str(r["torch_imported"]) for e, r in turns.items()})
    print()
    info = llama["info"]
    print(
        f"llama.cpp engine: {info['threads']} threads, context {info['context_length']}, {info['quantization']}"
    )
    print(
        f"Workbench llama.cpp decode / raw llama-cpp-python: {median(llama['decode']) / median(raw['decode']):.2f}x"
    )
    if "llama.cpp serial" in results:
        serial = results["llama.cpp serial"]
        print(
            f"Batched engine (4 slots) / serial engine, one stream's decode: "
            f"{median(llama['decode']) / median(serial['decode']):.2f}x"
        )
    if "transformers" in results:
        print(
            f"llama.cpp / transformers decode: "
            f"{median(llama['decode']) / median(results['transformers']['decode']):.1f}x"
        )
    print(
        f"Turn {args.turns} / turn 1 time to first token on llama.cpp: {llama['ttft_last_s'] / llama['ttft_turn1_s']:.2f}x"
    )
    print(f"Load average at the end: {load_average()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
