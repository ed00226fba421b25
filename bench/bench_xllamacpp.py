"""Measure xllamacpp (llama.cpp's C++ server loop in process) on the embedded model: the issue 18 choice.

    python -m venv /tmp/xll-venv && /tmp/xll-venv/bin/pip install xllamacpp
    /tmp/xll-venv/bin/python bench/bench_xllamacpp.py GGUF [--threads 1] [--parallel 4]

Not a dependency of Workbench: run it with an interpreter that has xllamacpp installed (a venv of its
own; its wheel needs nothing else). Loads GGUF with ``--parallel`` slots, then streams 128 tokens
(greedy, end of turn ignored) for 1 client twice (the first warms up) and for 4 clients at once, and
prints the aggregate tokens/s and each client's time to first token. Compare with
``bench/bench_server.py --throughput`` run in the same minutes (the machine is shared).
"""

from __future__ import annotations

import argparse
import threading
import time

PROMPT = "Write a long, detailed essay about the history of the Roman Empire."


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("gguf")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--new-tokens", type=int, default=128)
    args = parser.parse_args()
    import xllamacpp as xlc  # type: ignore[import-not-found]

    params = xlc.CommonParams()
    params.model.path = args.gguf
    params.n_ctx = 8192 * args.parallel  # 8192 per slot, as workbench serve gives each request
    params.n_parallel = args.parallel
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    started = time.perf_counter()
    server = xlc.Server(params)
    print(f"load {time.perf_counter() - started:.2f} s")

    def one(index: int, out: list[tuple[int, float, float]]) -> None:
        count, first, begun = [0], [0.0], time.perf_counter()

        def on_chunk(_chunk: object) -> bool:
            if not first[0]:
                first[0] = time.perf_counter() - begun
            count[0] += 1
            return False  # True would stop the stream

        request = {
            "messages": [{"role": "user", "content": f"{PROMPT} (Reader {index}.)"}],
            "max_tokens": args.new_tokens,
            "temperature": 0,
            "stream": True,
            "ignore_eos": True,
        }
        server.handle_chat_completions(request, on_chunk)
        out.append((count[0], first[0], time.perf_counter() - begun))

    for clients in (1, 1, args.parallel):
        out: list[tuple[int, float, float]] = []
        threads = [threading.Thread(target=one, args=(i, out)) for i in range(clients)]
        begun = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - begun
        firsts = ", ".join(f"{o[1]:.3f}" for o in out)
        print(f"{clients} client(s): {sum(o[0] for o in out) / wall:.1f} chunks/s, first chunk s: {firsts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
