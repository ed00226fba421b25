"""Measure the llama.cpp engine's choices on this machine and print the figures.

    python bench/bench_llamacpp.py [threads] [cache] [lookup] [grammar] [path]

Each section decides a default in ``workbench/models/llamacpp_backend.py`` (see bench/RESULTS.md):

- ``threads``: decode speed with 1 and 2 threads (more when the machine has them), on the machine as it
  is and with one extra process spinning on a core (as when another app or agent is busy);
- ``cache``: time to first token at turns 1 and 10 of a conversation, one session and two sessions
  taking turns, with and without saving each conversation's KV cache (``ConversationStates``);
- ``lookup``: prompt-lookup (n-gram) speculative decoding on a reply that repeats its prompt (a code
  edit) and on one that does not, against plain decoding;
- ``grammar``: a constrained tool call with llama.cpp's grammar (how long it takes, is it valid), and
  what xgrammar would cost on this path (its import, which brings torch, and its per-token mask);
- ``path``: Workbench's decode through ``ChatModel.stream`` against raw llama-cpp-python, alternating.

Runs alternate between the variants so that both see the same load; the load average is printed.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ESSAY = "Write a long, detailed essay about the history of the Roman Empire, from its founding to its fall."
CODE = '''def moving_average(values, window):
    """Return the moving averages of values over window items."""
    result = []
    for index in range(len(values) - window + 1):
        chunk = values[index : index + window]
        result.append(sum(chunk) / window)
    return result


def describe(values):
    """Print the smallest, largest and mean value."""
    print("min", min(values))
    print("max", max(values))
    print("mean", sum(values) / len(values))
'''
EDIT = f"Rename the function moving_average to rolling_mean and write the whole file again:\n\n{CODE}"


def load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def spin() -> None:  # pragma: no cover - runs in a child process
    while True:
        pass


def raw_llama(threads: int, **kwargs: Any) -> Any:
    import llama_cpp

    from workbench.models.llamacpp_cpu import load_cpu_backend
    from workbench.models.loading import embedded_gguf_path

    load_cpu_backend()  # the portable build registers its CPU kernels when asked
    return llama_cpp.Llama(
        model_path=str(embedded_gguf_path()),
        n_ctx=4096,
        n_threads=threads,
        n_threads_batch=threads,
        verbose=False,
        **kwargs,
    )


def chat_prompt(text: str) -> str:
    return f"<|im_start|>user\n{text}<|im_end|>\n<|im_start|>assistant\n"


def decode_speed(llm: Any, prompt: str, tokens: int) -> float:
    """Tokens per second after the first, greedy, end of sequence banned so every run decodes ``tokens``."""
    llm.reset()
    times: list[float] = []
    for chunk in llm.create_completion(
        prompt, max_tokens=tokens, temperature=0.0, stream=True, logit_bias={llm.token_eos(): float("-inf")}
    ):
        if chunk["choices"][0]["text"]:
            times.append(time.perf_counter())
    return (len(times) - 1) / (times[-1] - times[0])


def alternate(variants: dict[str, Callable[[], float]], runs: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(runs):
        for name, run in variants.items():
            results[name].append(run())
    return results


def show(results: dict[str, list[float]], unit: str) -> None:
    for name, values in results.items():
        print(
            f"  {name:<44} median {statistics.median(values):7.1f} {unit}  (runs: {', '.join(f'{v:.1f}' for v in values)})"
        )


def bench_threads(runs: int = 3, tokens: int = 128) -> None:
    cores = os.cpu_count() or 1
    counts = sorted({1, 2, max(1, cores - 1), cores})
    models = {n: raw_llama(n) for n in counts}
    prompt = chat_prompt(ESSAY)
    print(f"threads: decode tokens/s, {tokens} tokens, {cores} cores; load average {load_average()}")
    show(
        alternate(
            {
                f"{n} threads, machine as it is": (lambda n=n: decode_speed(models[n], prompt, tokens))
                for n in counts
            },
            runs,
        ),
        "tok/s",
    )
    busy = multiprocessing.Process(target=spin, daemon=True)
    busy.start()
    try:
        time.sleep(1)
        print(f"  ...with one more process spinning on a core; load average {load_average()}")
        show(
            alternate(
                {
                    f"{n} threads, one core busy": (lambda n=n: decode_speed(models[n], prompt, tokens))
                    for n in counts
                },
                runs,
            ),
            "tok/s",
        )
    finally:
        busy.terminate()
        busy.join()


def conversation_ttft(model: Any, sessions: int, turns: int) -> list[list[float]]:
    """Time to first token per turn for ``sessions`` conversations taking turns; greedy, 24-token replies."""
    from workbench.messages import Message, Role
    from workbench.models.generation import SamplingSettings

    settings = SamplingSettings(temperature=0.0, max_new_tokens=24)
    histories: list[list[Message]] = [
        [Message(Role.SYSTEM, f"You are assistant number {s}.")] for s in range(sessions)
    ]
    ttft: list[list[float]] = [[] for _ in range(sessions)]
    for turn in range(turns):
        for s in range(sessions):
            histories[s].append(
                Message(Role.USER, f"Tell me one fact about the number {turn + 10 * s}. {ESSAY}")
            )
            stream = model.stream(histories[s], settings)
            text = stream.result()
            ttft[s].append(stream.stats.first_token_s or 0.0)
            histories[s].append(model.dialect.parse(text))
    return ttft


def bench_cache(turns: int = 10) -> None:
    from workbench.chat_model import ChatModel
    from workbench.models import llamacpp_state
    from workbench.models.spec import ModelSpec

    model = ChatModel.load(ModelSpec(device="cpu", backend="llama.cpp"))
    print(f"cache: time to first token (ms) at turns 1, 5 and {turns}; load average {load_average()}")
    for sessions in (1, 2):
        for saved in (True, False):
            model.backend.states.forget()  # type: ignore[attr-defined]
            budget = llamacpp_state.DEFAULT_BUDGET_BYTES if saved else 0
            model.backend.states.budget_bytes = budget  # type: ignore[attr-defined]
            ttft = conversation_ttft(model, sessions, turns)
            label = f"{sessions} session{'s' * (sessions > 1)}, KV states {'saved' if saved else 'not saved'}"
            first = ttft[-1]
            print(f"  {label:<44} {first[0] * 1000:6.0f} {first[4] * 1000:6.0f} {first[-1] * 1000:6.0f}")
    model.backend.states.budget_bytes = llamacpp_state.DEFAULT_BUDGET_BYTES  # type: ignore[attr-defined]


def bench_lookup(runs: int = 3, tokens: int = 160) -> None:
    from llama_cpp.llama_speculative import LlamaPromptLookupDecoding

    threads = 1
    plain = raw_llama(threads)
    lookup = raw_llama(threads, draft_model=LlamaPromptLookupDecoding(num_pred_tokens=10))
    print(f"lookup: decode tokens/s, {tokens} tokens; load average {load_average()}")
    for name, prompt in (("code edit (repeats the prompt)", EDIT), ("essay (does not)", ESSAY)):
        results = alternate(
            {
                f"{name}, plain": lambda p=prompt: decode_speed(plain, chat_prompt(p), tokens),
                f"{name}, prompt lookup": lambda p=prompt: decode_speed(lookup, chat_prompt(p), tokens),
            },
            runs,
        )
        show(results, "tok/s")
    import resource

    print(
        f"  peak RSS of this process with both models: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    )


def bench_grammar(runs: int = 3) -> None:
    from tools import default_registry
    from workbench.chat_model import ChatModel
    from workbench.messages import Message, Role
    from workbench.models.generation import SamplingSettings
    from workbench.models.spec import ModelSpec
    from workbench.modes.tool import call_schema

    model = ChatModel.load(ModelSpec(device="cpu", backend="llama.cpp"))
    tools = default_registry().schemas()
    schema = call_schema(tools)
    settings = SamplingSettings(temperature=0.0, max_new_tokens=60)
    messages = [Message(Role.USER, "What is the sum of 1234 and 4321?")]
    print(f"grammar: one constrained calculator call on llama.cpp; load average {load_average()}")
    for _ in range(runs):
        stream = model.stream(messages, settings, tools=tools, prefix="<tool_call>\n", json_schema=schema)
        text = stream.result()
        stats = stream.stats
        valid = "valid" if isinstance(json.loads(text), dict) else "INVALID"
        print(
            f"  llama.cpp grammar: {stats.new_tokens} tokens in {stats.seconds * 1000:.0f} ms ({valid} JSON): {text}"
        )
    constrained_ms = stats.seconds * 1000 / stats.new_tokens
    stream = model.stream(messages, settings, tools=tools, prefix="<tool_call>\n")
    stream.result()
    free = stream.stats
    free_ms = free.seconds * 1000 / free.new_tokens
    print(f"  unconstrained, same prompt: {free.new_tokens} tokens in {free.seconds * 1000:.0f} ms")
    print(
        f"  llama.cpp grammar cost: {constrained_ms - free_ms:.1f} ms per token ({constrained_ms:.1f} vs {free_ms:.1f})"
    )
    # xgrammar on the same call: its import (with torch), compile, and the mask of each token of the call.
    started = time.perf_counter()
    import xgrammar as xgr

    import_s = time.perf_counter() - started
    print(f"  xgrammar import: {import_s:.2f} s (torch imported with it: {'torch' in sys.modules})")
    from workbench.models.transformers_backend import TransformersBackend

    tokenizer = TransformersBackend.load(ModelSpec(device="cpu", backend="transformers")).tokenizer
    started = time.perf_counter()
    info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=len(tokenizer))
    compiled = xgr.GrammarCompiler(info).compile_json_schema(
        json.dumps(schema), any_whitespace=False, separators=(",", ":"), strict_mode=True
    )
    compile_s = time.perf_counter() - started
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    matcher = xgr.GrammarMatcher(compiled)
    bitmask = xgr.allocate_token_bitmask(1, info.vocab_size)
    started = time.perf_counter()
    for token in ids:
        matcher.fill_next_token_bitmask(bitmask)
        assert matcher.accept_token(token)
    mask_ms = (time.perf_counter() - started) * 1000 / len(ids)
    print(
        f"  xgrammar: tokenizer info + compile {compile_s:.2f} s, mask {mask_ms:.2f} ms per token ({len(ids)} tokens)"
    )


def bench_path(runs: int = 4, tokens: int = 200) -> None:
    """Workbench's full path (ChatModel.stream) against raw llama-cpp-python, runs alternating."""
    from workbench.chat_model import ChatModel
    from workbench.messages import Message, Role
    from workbench.models.generation import SamplingSettings
    from workbench.models.spec import ModelSpec

    model = ChatModel.load(ModelSpec(device="cpu", backend="llama.cpp"))
    threads = model.info.threads or 1
    raw = raw_llama(threads)
    essay = [Message(Role.USER, ESSAY)]
    prompt = model.dialect.render(essay)
    settings = SamplingSettings(temperature=0.0, max_new_tokens=tokens)

    def workbench() -> float:
        model.backend.states.forget()  # type: ignore[attr-defined]
        stream = model.stream(essay, settings)
        stream.result()
        stats = stream.stats
        return (stats.new_tokens - 1) / (stats.seconds - (stats.first_token_s or 0.0))

    def plain() -> float:
        raw.reset()
        times: list[float] = []
        for chunk in raw.create_completion(prompt, max_tokens=tokens, temperature=0.0, stream=True):
            if chunk["choices"][0]["text"]:
                times.append(time.perf_counter())
        return (len(times) - 1) / (times[-1] - times[0])

    print(f"path: decode tokens/s, {tokens} tokens, {threads} thread(s); load average {load_average()}")
    results = alternate({"Workbench (ChatModel.stream)": workbench, "raw llama-cpp-python": plain}, runs)
    show(results, "tok/s")
    ratio = statistics.median(results["Workbench (ChatModel.stream)"]) / statistics.median(
        results["raw llama-cpp-python"]
    )
    print(f"  Workbench / raw: {ratio:.2f}x; load average {load_average()}")


def main() -> int:
    sections = sys.argv[1:] or ["threads", "cache", "lookup", "grammar", "path"]
    print(f"llama.cpp engine benchmark, {time.strftime('%Y-%m-%d %H:%M %Z')}, {os.cpu_count()} cores")
    for section in sections:
        sections_by_name = {
            "threads": bench_threads,
            "cache": bench_cache,
            "lookup": bench_lookup,
            "grammar": bench_grammar,
            "path": bench_path,
        }
        sections_by_name[section]()
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
