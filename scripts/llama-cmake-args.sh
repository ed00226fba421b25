#!/usr/bin/env bash
# Print the CMake options scripts/setup.sh builds llama-cpp-python with (one line, for CMAKE_ARGS).
# Portable CPU build, as llama.cpp's own releases: no -march=native (GGML_NATIVE=OFF), the CPU backend
# compiled once per x86-64 level (GGML_CPU_ALL_VARIANTS) and loaded at run time (GGML_BACKEND_DL).
# With an NVIDIA GPU (its driver's /dev/nvidiactl, or nvidia-smi) and CUDA's compiler (nvcc on PATH, in
# $CUDA_HOME/bin, else $CUDA_PATH/bin, else /usr/local/cuda/bin), the CUDA backend is added as one more module
# (-DGGML_CUDA=on; its GPU architectures are llama.cpp's portable default list, since GGML_NATIVE is off),
# so --n-gpu-layers -1 puts a GGUF model on the GPU. nvcc alone is not enough: our CPU machines carry one
# without a GPU, where a CUDA build would cost an hour for nothing. WORKBENCH_LLAMA_CUDA=0 builds for the
# CPU only, =1 builds with CUDA wherever nvcc is (fails without it); a GGML_CUDA option already in
# CMAKE_ARGS is left as it is. LLAVA_BUILD=ON builds libmtmd, llama.cpp's multimodal library: a GGUF with
# its --mmproj file reads images through it (workbench/models/llamacpp_vision.py).
set -euo pipefail

args="${CMAKE_ARGS:-} -DGGML_NATIVE=OFF -DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON \
-DGGML_BACKEND_DIR:STRING=llama_cpp/lib -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF \
-DLLAMA_BUILD_TOOLS=OFF -DLLAMA_CURL=OFF -DGGML_BLAS=OFF -DGGML_OPENMP=OFF -DLLAVA_BUILD=ON"

find_nvcc() {
  local candidate
  if candidate=$(command -v nvcc 2>/dev/null); then echo "$candidate"; return 0; fi
  # CUDA_HOME (or CUDA_PATH) names the toolkit; /usr/local/cuda is where it lives when neither is set.
  candidate="${CUDA_HOME:-${CUDA_PATH:-/usr/local/cuda}}/bin/nvcc"
  [ -x "$candidate" ] && { echo "$candidate"; return 0; }
  return 1
}

gpu_present() {
  [ -e "${WORKBENCH_NVIDIA_CTL:-/dev/nvidiactl}" ] || command -v nvidia-smi >/dev/null 2>&1
}

want=${WORKBENCH_LLAMA_CUDA:-auto}
case "$args" in *GGML_CUDA=*) want=0 ;; esac  # the caller chose already
if [ "$want" = 1 ] || { [ "$want" = auto ] && gpu_present; }; then
  if nvcc=$(find_nvcc); then
    args="$args -DGGML_CUDA=on -DCMAKE_CUDA_COMPILER=$nvcc"
  elif [ "$want" = 1 ]; then
    echo "WORKBENCH_LLAMA_CUDA=1 but no nvcc was found (PATH, \$CUDA_HOME/bin or /usr/local/cuda/bin);" \
      "install CUDA's toolkit or set CUDA_HOME." >&2
    exit 1
  fi
fi
echo "$args"
