"""The serial and the batched llama.cpp engine side by side in one process, alternating (issue 18).

    python bench/bench_slots.py [--rounds 3] [--threads 1]

One process holds the embedded model twice: ``--parallel 1`` (one generation at a time) and ``--parallel 4``
(continuous batching). Alternating between them, so that a shared machine's load hits both alike, it
prints for one stream at a time: the first token of a cold prompt (caches emptied), the decode speed of
128 greedy tokens, and the first token at each turn of a 5-turn conversation (24-token answers), with the
prompt tokens the batched engine evaluated in all (what its kept caches did not hold).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ESSAY = "Write a long, detailed essay about the history of the Roman Empire, from its founding to its fall."
QUESTIONS = [
    "What is the capital of France?",
    "And of Italy?",
    "And of Spain?",
    "Name a river.",
    "How long is it?",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    from workbench.chat_model import ChatModel
    from workbench.messages import Message, Role
    from workbench.models.generation import SamplingSettings
    from workbench.models.spec import ModelSpec

    engines = {
        name: ChatModel.load(ModelSpec(device="cpu", backend="llama.cpp", threads=args.threads, parallel=p))
        for name, p in (("serial", 1), ("batched", 4))
    }
    print(f"# bench_slots: {args.threads} thread(s), load average {os.getloadavg()[0]:.1f} at start")
    essay = [Message(Role.USER, ESSAY)]
    cold: dict[str, list[float]] = {name: [] for name in engines}
    decode: dict[str, list[float]] = {name: [] for name in engines}
    for _ in range(args.rounds):
        for name, model in engines.items():
            model.backend.states.forget()  # type: ignore[attr-defined]
            stream = model.stream(essay, SamplingSettings(temperature=0.0, max_new_tokens=128))
            stream.result(timeout=600)
            stats = stream.stats
            cold[name].append(stats.first_token_s or 0.0)
            decode[name].append((stats.new_tokens - 1) / (stats.seconds - (stats.first_token_s or 0.0)))
    for name in engines:
        print(
            f"{name:8} cold first token median {statistics.median(cold[name]) * 1000:.0f} ms "
            f"(runs {', '.join(f'{v * 1000:.0f}' for v in cold[name])}); decode median "
            f"{statistics.median(decode[name]):.1f} tok/s (runs {', '.join(f'{v:.1f}' for v in decode[name])})"
        )
    for name, model in engines.items():
        model.backend.states.forget()  # type: ignore[attr-defined]
        history: list[Message] = []
        firsts = []
        for question in QUESTIONS:
            history.append(Message(Role.USER, question))
            stream = model.stream(history, SamplingSettings(temperature=0.0, max_new_tokens=24))
            text = stream.result(timeout=600)
            firsts.append(
                f"{(stream.stats.first_token_s or 0.0) * 1000:.0f} ms ({stream.stats.prompt_tokens} tok)"
            )
            history.append(model.dialect.parse(text))
        evaluated = getattr(model.backend.states, "prompt_tokens_evaluated", None)  # type: ignore[attr-defined]
        extra = f"; prompt tokens evaluated in all: {evaluated}" if evaluated is not None else ""
        print(f"{name:8} turns 1-{len(QUESTIONS)}: {', '.join(firsts)}{extra}")
    print(f"# load average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
