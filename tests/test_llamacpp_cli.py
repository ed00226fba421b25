"""``ask`` as a user runs it, on each engine: the answer, and ``--json`` naming the engine that gave it."""

from __future__ import annotations

import json

import pytest

from tests.cli_helpers import run_cli
from tests.engines import ENGINES

pytestmark = pytest.mark.model


@pytest.mark.parametrize("engine", ENGINES)
def test_ask_json_on_each_engine_names_it(engine):
    result = run_cli(
        "ask", "--json", "--backend", engine, "--temperature", "0", "--max-new-tokens", "24",
        "Which city is the capital of France?",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    transcript = json.loads(result.stdout)
    answer = transcript["messages"][-1]
    # The words are this 135M model's greedy pick, which changes with the CPU: assert the answer is there.
    assert answer["role"] == "assistant" and answer["content"].strip()
    assert answer["stats"]["finish_reason"] in ("eos", "length") and answer["stats"]["new_tokens"] > 0
    model = transcript["model"]
    assert (model["backend"], model["device"], model["context_length"]) == (engine, "cpu", 8192)
    if engine == "llama.cpp":
        assert (model["dtype"], model["quantization"]) == ("Q4_1", "GGUF") and model["threads"] >= 1
    else:
        assert (model["dtype"], model["quantization"], model["threads"]) == ("float32", None, None)


def test_ask_with_two_threads_on_llama_cpp():
    if "llama.cpp" not in ENGINES:
        pytest.skip("llama-cpp-python is not installed")
    result = run_cli(
        "ask", "--json", "--threads", "2", "--max-new-tokens", "4", "--temperature", "0", "Hello"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["model"]["threads"] == 2
