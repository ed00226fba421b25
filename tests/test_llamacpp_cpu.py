"""The portable llama.cpp build: its CPU variants, the best one loaded, or the one WORKBENCH_GGML_CPU names.

Each case runs in a fresh interpreter: a process loads llama.cpp's CPU kernels once.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.models.backends import llama_cpp_installed

pytestmark = [
    pytest.mark.skipif(not llama_cpp_installed(), reason="llama-cpp-python is not installed"),
    pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="the x86-64 variants"),
]

ROOT = Path(__file__).resolve().parent.parent
LOAD = """
import json
from workbench.errors import ModelLoadError
from workbench.models.llamacpp_cpu import cpu_variants, load_cpu_backend, variant_score
try:
    kernels = load_cpu_backend()
except ModelLoadError as exc:
    print(json.dumps({"error": str(exc)}))
else:
    scores = {name: variant_score(path) for name, path in cpu_variants().items()}
    print(json.dumps({"kernels": kernels, "scores": scores}))
"""


def load(variant: str | None) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k != "WORKBENCH_GGML_CPU"}
    if variant is not None:
        env["WORKBENCH_GGML_CPU"] = variant
    out = subprocess.run(
        [sys.executable, "-c", LOAD], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True
    )
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


@pytest.fixture(scope="module")
def best() -> dict[str, object]:
    result = load(None)
    if result.get("kernels") == "built-in":
        pytest.skip("this llama-cpp-python has its CPU backend built in (not the portable build)")
    return result


def test_the_best_variant_this_cpu_runs_is_loaded(best):
    scores = best["scores"]
    assert isinstance(scores, dict) and len(scores) > 1
    assert "haswell" in scores and "x64" in scores  # the AVX2 level and the baseline are always built
    assert best["kernels"] == max(scores, key=lambda name: scores[name])
    assert scores[best["kernels"]] > 0


def test_a_named_variant_is_loaded_instead(best):
    runnable = [name for name, score in best["scores"].items() if score > 0]
    other = "x64" if best["kernels"] != "x64" else runnable[0]
    assert load(other)["kernels"] == other


def test_an_unknown_variant_names_those_built():
    result = load("pentium")
    if "error" not in result and result.get("kernels") == "built-in":
        pytest.skip("this llama-cpp-python has its CPU backend built in")
    error = str(result["error"])
    assert "WORKBENCH_GGML_CPU=pentium" in error and "haswell" in error


def test_a_variant_this_cpu_cannot_run_is_refused(best):
    scores = best["scores"]
    unrunnable = [name for name, score in scores.items() if score == 0]
    if not unrunnable:
        pytest.skip("this CPU runs every variant built")
    error = str(load(unrunnable[0])["error"])
    assert "lacks the instructions" in error
