"""Check that Workbench uses the accelerator when there is one, and that generation works there.

Usage: ``python bench/device_check.py [MODEL]`` (default: the embedded model). Prints what it checked
and exits non-zero on the first failure. Run it on a machine with a GPU (cuda or mps).
"""

from __future__ import annotations

import sys
import threading
import time

import torch

from workbench.models.generation import GenerationRequest, SamplingSettings
from workbench.models.spec import ModelSpec
from workbench.shared import shared_model


def main() -> int:
    source = sys.argv[1] if len(sys.argv) > 1 else "embedded"
    print(f"torch {torch.__version__}, cuda available: {torch.cuda.is_available()}")
    started = time.perf_counter()
    model = shared_model(ModelSpec(source=source)).get(progress=lambda m: print("  load:", m))
    info = model.info
    print(f"loaded {info.label} on {info.device} in {info.dtype} in {time.perf_counter() - started:.1f} s")
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert info.device == expected, f"device auto chose {info.device}, expected {expected}"
    param = next(model.backend.model.parameters())
    print(f"weights live on {param.device} as {param.dtype}")
    assert param.device.type == expected

    greedy = SamplingSettings(temperature=0, max_new_tokens=64)
    reply, _ = model.chat("What is the capital of France?", settings=greedy)
    print(f"greedy reply: {reply!r}")

    # Stop: a long generation cancelled after a few chunks ends early.
    from workbench.messages import Message, Role

    stream = model.stream([Message(Role.USER, "Write a very long story.")], greedy.with_(max_new_tokens=400))
    for i, _chunk in enumerate(stream):
        if i == 5:
            stream.cancel()
            cancelled_at = time.perf_counter()
    stream.wait(10)
    print(
        f"stop: {stream.stats.new_tokens} tokens, reason {stream.stats.finish_reason}, "
        f"ended {time.perf_counter() - cancelled_at:.3f} s after cancel"
    )
    assert stream.stats.finish_reason == "cancelled" and stream.stats.new_tokens < 400

    # Two threads at once: both complete.
    results: dict[int, str] = {}

    def ask(n: int) -> None:
        results[n] = model.chat(f"Count from 1 to {n}.", settings=greedy.with_(max_new_tokens=32))[0]

    threads = [threading.Thread(target=ask, args=(n,)) for n in (3, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    print(f"two threads: {results}")
    assert len(results) == 2

    # Constrained decoding on the accelerator.
    schema = {
        "type": "object",
        "properties": {"answer": {"enum": ["three", "four", "five"]}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    request = GenerationRequest(
        prompt=model.dialect.render([Message(Role.USER, "What is 2+2? Reply in JSON.")]),
        settings=greedy,
        json_schema=schema,
    )
    text = model.backend.start(request).result(120)
    print(f"constrained JSON: {text!r}")
    import json

    assert json.loads(text)["answer"] in ("three", "four", "five")
    decode = model.backend.start(
        GenerationRequest(
            prompt=model.dialect.render([Message(Role.USER, "Tell me about the sea.")]),
            settings=SamplingSettings(temperature=0, max_new_tokens=200),
        )
    )
    decode.wait(300)
    print(f"decode: {decode.stats.summary()}")
    print("DEVICE CHECK PASSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
