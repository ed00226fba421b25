"""The CMake options setup builds llama-cpp-python with: portable CPU variants, and CUDA with a GPU and nvcc.

``scripts/llama-cmake-args.sh`` only prints them (nothing is built here); setup.sh passes them as CMAKE_ARGS.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "llama-cmake-args.sh"
PORTABLE = ("-DGGML_NATIVE=OFF", "-DGGML_BACKEND_DL=ON", "-DGGML_CPU_ALL_VARIANTS=ON")


def cmake_args(tmp_path: Path, *, nvcc: bool, gpu: bool, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the script with only a fake nvcc (or none) on PATH and a fake driver node (or none)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    if nvcc:
        (bin_dir / "nvcc").write_text("#!/bin/sh\nexit 0\n")
        (bin_dir / "nvcc").chmod(0o755)
    ctl = tmp_path / "nvidiactl"
    if gpu:
        ctl.write_text("")
    base = {
        "PATH": str(bin_dir),
        "CUDA_HOME": str(tmp_path / "no-cuda"),
        "WORKBENCH_NVIDIA_CTL": str(ctl),
        "HOME": os.environ.get("HOME", "/root"),
    }
    bash = "/bin/bash"
    return subprocess.run(
        [bash, str(SCRIPT)], env={**base, **env}, capture_output=True, text=True, timeout=30, check=False
    )


@pytest.mark.parametrize(("nvcc", "gpu"), [(False, False), (True, False), (False, True)])
def test_without_both_a_gpu_and_nvcc_the_build_is_for_the_cpu(tmp_path, nvcc, gpu):
    result = cmake_args(tmp_path, nvcc=nvcc, gpu=gpu)
    assert result.returncode == 0, result.stderr
    assert all(option in result.stdout for option in PORTABLE)
    assert "GGML_CUDA" not in result.stdout


def test_a_gpu_and_nvcc_add_cuda_to_the_portable_cpu_build(tmp_path):
    result = cmake_args(tmp_path, nvcc=True, gpu=True)
    assert result.returncode == 0, result.stderr
    assert all(option in result.stdout for option in PORTABLE)
    assert "-DGGML_CUDA=on" in result.stdout
    assert f"-DCMAKE_CUDA_COMPILER={tmp_path / 'bin' / 'nvcc'}" in result.stdout


def test_nvcc_in_cuda_home_is_found(tmp_path):
    home = tmp_path / "cuda"
    (home / "bin").mkdir(parents=True)
    (home / "bin" / "nvcc").write_text("#!/bin/sh\n")
    (home / "bin" / "nvcc").chmod(0o755)
    result = cmake_args(tmp_path, nvcc=False, gpu=True, CUDA_HOME=str(home))
    assert f"-DGGML_CUDA=on -DCMAKE_CUDA_COMPILER={home / 'bin' / 'nvcc'}" in result.stdout


def test_the_choice_can_be_forced_either_way(tmp_path):
    assert "GGML_CUDA" not in cmake_args(tmp_path, nvcc=True, gpu=True, WORKBENCH_LLAMA_CUDA="0").stdout
    assert "-DGGML_CUDA=on" in cmake_args(tmp_path, nvcc=True, gpu=False, WORKBENCH_LLAMA_CUDA="1").stdout
    kept = cmake_args(tmp_path, nvcc=True, gpu=True, CMAKE_ARGS="-DGGML_CUDA=off")
    assert "-DGGML_CUDA=off" in kept.stdout and "-DGGML_CUDA=on" not in kept.stdout


def test_forcing_cuda_without_nvcc_fails_and_says_why(tmp_path):
    result = cmake_args(tmp_path, nvcc=False, gpu=True, WORKBENCH_LLAMA_CUDA="1")
    assert result.returncode == 1
    assert "no nvcc was found" in result.stderr


def test_without_cuda_the_options_are_those_of_the_wheels_already_built(tmp_path):
    # The wheel cache's key is made of these options: a CPU machine must keep finding its wheel. (LLAVA_BUILD
    # went ON for image input, issue 26: that changed the key once, so wheels without libmtmd are rebuilt.)
    result = cmake_args(tmp_path, nvcc=False, gpu=False)
    assert result.stdout == (
        " -DGGML_NATIVE=OFF -DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON "
        "-DGGML_BACKEND_DIR:STRING=llama_cpp/lib -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF "
        "-DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_CURL=OFF -DGGML_BLAS=OFF -DGGML_OPENMP=OFF "
        "-DLLAVA_BUILD=ON\n"
    )
